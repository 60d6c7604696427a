"""Choices of the edge module: node and activation states, accelerators, log levels, volumes, rules."""
from django.db import models


class EdgeNodeStatus(models.TextChoices):
    """Derived from heartbeats (see `EdgeNode.status`); FREEZE is set by an admin."""

    UNCONNECTED = "UNCONNECTED", "Unconnected"
    RUNNING = "RUNNING", "Running"
    FAULTY = "FAULTY", "Faulty"
    UPGRADING = "UPGRADING", "Upgrading"
    FREEZE = "FREEZE", "Frozen"


class ActivationStatus(models.TextChoices):
    INACTIVE = "INACTIVE", "Inactive"
    ACTIVATED = "ACTIVATED", "Activated"


class Accelerator(models.TextChoices):
    NONE = "none", "None"
    GPU = "gpu", "GPU"
    ASCEND = "ascend", "Ascend"


class LogLevel(models.TextChoices):
    ERROR = "ERROR", "Error"
    WARNING = "WARNING", "Warning"
    INFO = "INFO", "Info"
    DEBUG = "DEBUG", "Debug"


class EdgeServiceStatus(models.TextChoices):
    DEPLOYING = "deploying", "Deploying"
    RUNNING = "running", "Running"
    ABNORMAL = "abnormal", "Abnormal"


class VolumeType(models.TextChoices):
    HOST_PATH = "host_path", "Host path"
    TEMP_PATH = "temp_path", "Temp path"
    NFS = "nfs", "NFS"


class MatchType(models.TextChoices):
    PREFIX = "prefix", "Prefix"
    EXACT = "exact", "Exact"
    REGEX = "regex", "Regex"
