"""Choices of the run engine: job types, pool and node states, run states and kinds."""
from django.db import models


class JobType(models.TextChoices):
    """What a pool accepts; owners pass theirs when they submit a run."""

    TRAINING = "training", "Training"
    NOTEBOOK = "notebook", "Notebook"
    INFERENCE = "inference", "Inference"


class PoolStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class NodeStatus(models.TextChoices):
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"


class RunStatus(models.TextChoices):
    """See `Run` for the transitions between these states."""

    QUEUED = "queued", "Queued"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"
    LOST = "lost", "Lost"


# A worker is responsible for the run: its heartbeat must keep coming.
ACTIVE_STATUSES = frozenset({RunStatus.STARTING, RunStatus.RUNNING, RunStatus.STOPPING})
# Nothing happens to the run any more unless someone restarts it.
TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.LOST})
# Not yet terminal: a stop request applies.
LIVE_STATUSES = frozenset({RunStatus.QUEUED}) | ACTIVE_STATUSES


class HangAction(models.TextChoices):
    """What the supervisor does once a run looks hung (no output and no CPU for a while)."""

    EVENT = "event", "Record an event"
    STOP = "stop", "Record an event and stop the run"
