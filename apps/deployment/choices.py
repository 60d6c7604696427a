"""Choices of the deployment section: model (AI application) and service states, kinds and sources."""
from django.db import models


class ModelSource(models.TextChoices):
    """Where a model version's files come from (seed-06 §2.4)."""

    TRAINING = "training", "Training job"
    STORAGE = "storage", "Storage path"
    IMAGE = "image", "Container image"
    COMMAND = "command", "Custom command"


class ModelStatus(models.TextChoices):
    """Importing → Building (pip dependencies) → Normal | Build failed | Import failed."""

    IMPORTING = "importing", "Importing"
    BUILDING = "building", "Building"
    NORMAL = "normal", "Normal"
    BUILD_FAILED = "build_failed", "Build failed"
    FAILED = "failed", "Import failed"


class DeployType(models.TextChoices):
    ONLINE = "online", "Online service"
    BATCH = "batch", "Batch service"
    EDGE = "edge", "Edge service"


class RequestMode(models.TextChoices):
    SYNC = "sync", "Synchronous"
    ASYNC = "async", "Asynchronous"


class ServiceKind(models.TextChoices):
    ONLINE = "online", "Online"
    BATCH = "batch", "Batch"


class ServiceStatus(models.TextChoices):
    """See `InferenceService` for the transitions (seed-06 §4.2)."""

    DEPLOYING = "deploying", "Deploying"
    WAITING = "waiting", "Waiting"  # deploying, but no worker has room for an instance yet
    RUNNING = "running", "Running"
    ALARM = "alarm", "Alarm"
    ABNORMAL = "abnormal", "Abnormal"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    COMPLETED = "completed", "Completed"


# Start is allowed from these (never while deploying, seed-06 §3.7).
STARTABLE = frozenset({ServiceStatus.COMPLETED, ServiceStatus.ABNORMAL, ServiceStatus.STOPPED})
# Stop applies to these.
STOPPABLE = frozenset({ServiceStatus.DEPLOYING, ServiceStatus.WAITING, ServiceStatus.RUNNING, ServiceStatus.ALARM})
# Instances are being brought up for the first time.
DEPLOYING = frozenset({ServiceStatus.DEPLOYING, ServiceStatus.WAITING})
# Restart: online services that run.
RESTARTABLE = frozenset({ServiceStatus.RUNNING, ServiceStatus.ALARM})
# Instances take traffic in these.
SERVING = frozenset({ServiceStatus.RUNNING, ServiceStatus.ALARM})


class AlarmMetric(models.TextChoices):
    """Metrics an alarm rule can watch (seed-06 §10.1), all per minute."""

    TOTAL = "total_called_times", "Total calls"
    SUCCESS = "successfully_called_times", "Successful calls"
    FAILED = "failed_called_times", "Failed calls"
    LATENCY = "latency_ms", "Mean latency (ms)"
    CPU = "cpu_usage", "CPU usage (%)"
    MEMORY = "mem_usage", "Memory usage (%)"
    GPU = "gpu_util", "GPU usage (%)"
    GPU_MEMORY = "gpu_mem_usage", "GPU memory usage (%)"


class Comparison(models.TextChoices):
    GT = ">", ">"
    GE = ">=", "≥"
    LT = "<", "<"
    LE = "<=", "≤"


class AlarmState(models.TextChoices):
    OK = "ok", "OK"
    ALARM = "alarm", "Alarm"


class AsyncRequestStatus(models.TextChoices):
    """An asynchronous call: queued (accepted, 202) → running → succeeded | failed."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
