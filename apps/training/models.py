"""Training records: algorithms (reusable recipes), experiments (groups of jobs) and training jobs.

A training job executes as one run-engine group (`apps.runtime.models.Run`, one row per node,
owner "training.trainingjob"); the job copies everything it needs from its algorithm at creation,
so editing or deleting the algorithm later never changes a job that already exists.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.scoping import WorkspaceQuerySet

from .choices import (
    STATUS_ZH,
    TERMINAL_JOB_STATUSES,
    BootMode,
    LaunchMode,
    TrainingStatus,
)


class Algorithm(models.Model):
    """A training recipe: how to start the code, its channels and typed hyperparameters.

    `inputs`: [{"name", "description", "acquisition", "constraint": {"source", "label_type",
    "data_format": [...], "split"} | null}]; `outputs`: [{"name", "description", "acquisition"}];
    `hyperparameters`: [{"name", "type", "default", "constraint": {"kind": "range", "min", "max"} |
    {"kind": "enum", "values": [...]} | null, "required", "description"}] (see hyperparameters.py).
    Name and id never change after creation.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="algorithms")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    boot_mode = models.CharField(max_length=16, choices=BootMode.choices, default=BootMode.PRESET)
    engine = models.CharField(max_length=32, blank=True)  # key of engines.ENGINES
    engine_version = models.CharField(max_length=128, blank=True)
    image = models.CharField(max_length=255, blank=True)  # recorded for custom-command algorithms
    builtin = models.CharField(max_length=32, blank=True)  # Builtin value when boot_mode is builtin
    code_dir = models.CharField(max_length=1100, blank=True)  # storage://bucket/folder
    boot_file = models.CharField(max_length=1023, blank=True)  # relative to code_dir, ends in .py
    boot_command = models.CharField(max_length=4096, blank=True)
    inputs = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(default=list, blank=True)
    hyperparameters = models.JSONField(default=list, blank=True)
    policies = models.JSONField(default=dict, blank=True)  # supported auto-search policies; {} = none
    resource_types = models.JSONField(default=list, blank=True)  # ResourceType values; [] = no constraint
    multi_card = models.BooleanField(default=False)
    distributed = models.BooleanField(default=False)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="algorithm_unique_name")]

    def __str__(self) -> str:
        return self.name


class Experiment(models.Model):
    """A named group of training jobs; created only from the job form. Deleting it deletes its jobs."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="experiments")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Changes with the name or description, and when a job joins or leaves (services set it).
    modified_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-modified_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="experiment_unique_name")]

    def __str__(self) -> str:
        return self.name


class TrainingJob(models.Model):
    """One training execution on `node_count` nodes of `flavor` in `pool`.

    Channels as submitted: `inputs` [{"name", "acquisition", "uri", "local"}], `outputs`
    [{"name", "acquisition", "uri", "local", "predownload"}] where `local` is the folder under the
    run directory the channel is staged to (`inputs/<name>_0`, `outputs/<name>_0`).
    `hyperparameters` [{"name", "type", "value"}] are already validated against
    `hyperparameter_specs` (the algorithm's definitions at creation). `failure` holds the
    diagnosis of a failed run: {"cause", "suggestion", "retryable", "lines": [[seq, text]], "node"}.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="training_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    algorithm = models.ForeignKey(Algorithm, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")

    boot_mode = models.CharField(max_length=16, choices=BootMode.choices, default=BootMode.PRESET)
    engine = models.CharField(max_length=32, blank=True)
    engine_version = models.CharField(max_length=128, blank=True)
    image = models.CharField(max_length=255, blank=True)
    builtin = models.CharField(max_length=32, blank=True)
    code_dir = models.CharField(max_length=1100, blank=True)
    boot_file = models.CharField(max_length=1023, blank=True)
    boot_command = models.CharField(max_length=4096, blank=True)
    local_code_dir = models.CharField(max_length=255, default="user-job-dir")  # relative to the run directory
    working_dir = models.CharField(max_length=255, blank=True)  # relative to the run directory; "" = code folder
    inputs = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(default=list, blank=True)
    hyperparameters = models.JSONField(default=list, blank=True)
    hyperparameter_specs = models.JSONField(default=list, blank=True)
    env = models.JSONField(default=dict, blank=True)
    launch_mode = models.CharField(max_length=16, choices=LaunchMode.choices, default=LaunchMode.MODELARTS)

    pool = models.ForeignKey("runtime.Pool", on_delete=models.PROTECT, related_name="training_jobs")
    flavor = models.ForeignKey("runtime.Flavor", on_delete=models.PROTECT, related_name="training_jobs")
    node_count = models.PositiveIntegerField(default=1)
    priority = models.PositiveSmallIntegerField(default=1)
    auto_restart = models.PositiveSmallIntegerField(default=0)  # 0 = off, else 1–3 restarts; fixed at creation
    max_runtime_hours = models.PositiveIntegerField(null=True, blank=True)  # None = no auto-stop
    tags = models.JSONField(default=dict, blank=True)
    # Custom-command jobs: the uid the process runs as where the worker can switch users (None = default).
    run_as_uid = models.PositiveIntegerField(null=True, blank=True)
    # {"cpus", "memory_mb", "gpus"} used instead of `flavor`'s figures; {} = the flavor as it is.
    custom_flavor = models.JSONField(default=dict, blank=True)
    # Host paths linked into the run directory: [{"source": "/data/x", "path": "mnt/x", "read_only": bool}].
    mounts = models.JSONField(default=list, blank=True)
    persist_logs = models.BooleanField(default=False)  # copy the node logs to `log_path` when the job ends
    log_path = models.CharField(max_length=1100, blank=True)  # storage://bucket/folder
    notify_channel = models.CharField(max_length=16, blank=True)  # "" (off), "email" or "webhook"
    notify_target = models.CharField(max_length=1000, blank=True)  # addresses (comma-separated) or an URL
    notify_events = models.JSONField(default=list, blank=True)  # subset of notifications.EVENTS
    logs_persisted_at = models.DateTimeField(null=True, blank=True)
    logs_purged_at = models.DateTimeField(null=True, blank=True)  # the retention purge removed the node logs

    status = models.CharField(max_length=16, choices=TrainingStatus.choices, default=TrainingStatus.CREATING,
                              db_index=True)
    status_reason = models.CharField(max_length=500, blank=True)
    failure = models.JSONField(default=dict, blank=True)
    run_group = models.UUIDField(null=True, blank=True, db_index=True)  # the run engine group, once submitted
    restart_count = models.PositiveIntegerField(default=0)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)  # runs handed to the engine
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"]), models.Index(fields=["status", "pool"])]
        constraints = [
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=3), name="trainingjob_priority_1_3"),
            models.CheckConstraint(condition=Q(auto_restart__lte=3), name="trainingjob_auto_restart_0_3"),
            models.CheckConstraint(condition=Q(node_count__gte=1), name="trainingjob_node_count_positive"),
            models.CheckConstraint(condition=Q(max_runtime_hours__isnull=True)
                                   | Q(max_runtime_hours__gte=1, max_runtime_hours__lte=720),
                                   name="trainingjob_max_runtime_1_720"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def status_zh(self) -> str:
        return STATUS_ZH.get(self.status, "")

    @property
    def group_channel(self) -> str:
        return f"training.trainingjob.{self.pk}"

    def algorithm_label(self) -> str:
        if self.builtin:
            from .choices import Builtin

            return Builtin(self.builtin).label
        return self.algorithm.name if self.algorithm_id and self.algorithm else "Custom"

    @property
    def duration_seconds(self) -> int | None:
        if self.started_at is None:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return max(0, int((end - self.started_at).total_seconds()))
