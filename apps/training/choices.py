"""Choices of the training section: boot modes, channel and hyperparameter kinds, job states."""
from django.db import models


class BootMode(models.TextChoices):
    """How a job's process starts (spec seed-05 §1.1)."""

    PRESET = "preset", "Preset framework"  # engine + code dir + boot file run with the engine's python
    # The engine's conventions (boot file, requirements install, PYTHONPATH) with the user's own image.
    PRESET_IMAGE = "preset_image", "Preset framework (custom image)"
    CUSTOM = "custom", "Custom command"  # optional code dir + a boot command run by /bin/sh
    BUILTIN = "builtin", "Built-in algorithm"  # an algorithm shipped with Atelier (no code dir)


# Modes that run a boot file with a preset engine's conventions.
PRESET_MODES = (BootMode.PRESET, BootMode.PRESET_IMAGE)


class Acquisition(models.TextChoices):
    """How a channel's local path reaches the code: `--name=path` or an environment variable `name`."""

    HYPERPARAMETER = "hyperparameter", "Argument"
    ENV = "env", "Environment variable"


class InputSource(models.TextChoices):
    STORAGE = "storage", "Storage path"
    DATASET = "dataset", "Dataset version"


class DataSplit(models.TextChoices):
    ANY = "any", "No limit"
    SPLIT_ONLY = "split_only", "Only split datasets"
    UNSPLIT_ONLY = "unsplit_only", "Only unsplit datasets"


class HyperparameterType(models.TextChoices):
    STRING = "String", "String"
    INTEGER = "Integer", "Integer"
    FLOAT = "Float", "Float"
    BOOLEAN = "Boolean", "Boolean"


class ResourceType(models.TextChoices):
    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


class Builtin(models.TextChoices):
    """Algorithms Atelier ships; their code lives in apps/training/builtin/ and runs on any worker."""

    IMAGE_CLASSIFICATION = "image_classification", "Image classification (PyTorch)"
    OBJECT_DETECTION = "object_detection", "Object detection (PyTorch)"
    TABULAR = "tabular", "Tabular classification / regression (FLAML)"


class LaunchMode(models.TextChoices):
    """How multi-node jobs start: ModelArts-style arguments, or torchrun (one process per node here)."""

    MODELARTS = "modelarts", "Arguments --init_method/--rank/--world_size"
    TORCHRUN = "torchrun", "torchrun"


class TrainingStatus(models.TextChoices):
    """The seven statuses of a training job (spec seed-05 §2.9), with the console's Chinese labels."""

    CREATING = "creating", "Creating"
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    TERMINATED = "terminated", "Terminated"
    ABNORMAL = "abnormal", "Abnormal"


STATUS_ZH = {
    TrainingStatus.CREATING: "创建中",
    TrainingStatus.PENDING: "等待中",
    TrainingStatus.RUNNING: "运行中",
    TrainingStatus.COMPLETED: "已完成",
    TrainingStatus.FAILED: "运行失败",
    TrainingStatus.TERMINATED: "已终止",
    TrainingStatus.ABNORMAL: "异常",
}

# A stop request applies; the job is not over yet.
LIVE_JOB_STATUSES = frozenset({TrainingStatus.CREATING, TrainingStatus.PENDING, TrainingStatus.RUNNING})
TERMINAL_JOB_STATUSES = frozenset({TrainingStatus.COMPLETED, TrainingStatus.FAILED, TrainingStatus.TERMINATED,
                                   TrainingStatus.ABNORMAL})


class ExperimentChoice(models.TextChoices):
    """The experiment radio of the job form (default: a new experiment)."""

    NEW = "new", "New experiment"
    EXISTING = "existing", "Existing experiment"
    NONE = "none", "No experiment"
