"""The run engine's records: pools, flavors, worker nodes, GPU leases, runs and their metrics."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from apps.core.scoping import WorkspaceQuerySet

from .choices import ACTIVE_STATUSES, TERMINAL_STATUSES, HangAction, JobType, NodeStatus, PoolStatus, RunStatus


class Pool(models.Model):
    """A group of workers consuming one Celery queue, `pool.<name>`.

    Pools are platform objects (staff manage them); every workspace can submit to an
    enabled pool whose `job_types` include the run's job type.
    """

    name = models.SlugField(max_length=40, unique=True)
    description = models.CharField(max_length=500, blank=True)
    job_types = models.JSONField(default=list)  # subset of JobType values
    status = models.CharField(max_length=16, choices=PoolStatus.choices, default=PoolStatus.ENABLED)
    # A dedicated pool (ModelArts "专属资源池") serves one team: its custom-command training jobs may run
    # as any uid 0–65535; on shared pools the uid is 1000–65535.
    dedicated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return f"pool.{self.name}"

    def job_type_labels(self) -> list[str]:
        return [JobType(value).label for value in self.job_types if value in JobType.values]


class Flavor(models.Model):
    """A resource spec a run asks for: CPU cores, memory and GPUs, offered by some pools.

    CPU and memory are checked against a worker's capacity (a worker smaller than the
    flavor cannot serve it); GPUs are leased per run and never shared (`GpuLease`).
    """

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=500, blank=True)
    cpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    gpus = models.PositiveIntegerField(default=0)
    gpu_type = models.CharField(max_length=64, blank=True)  # "" = any; else must appear in the GPU name
    pools = models.ManyToManyField(Pool, related_name="flavors", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["gpus", "cpus", "memory_mb", "name"]
        constraints = [models.CheckConstraint(condition=Q(cpus__gte=1), name="flavor_cpus_positive")]

    def __str__(self) -> str:
        return self.name

    @property
    def summary(self) -> str:
        memory = f"{self.memory_mb / 1024:g} GiB"
        gpus = f", {self.gpus} × {self.gpu_type or 'GPU'}" if self.gpus else ""
        return f"{self.cpus} CPU, {memory}{gpus}"


class WorkerNode(models.Model):
    """A Celery worker process that registered itself (on `worker_ready`) and heartbeats.

    `hostname` is the Celery node name ("w1@host"); `host` is the address other nodes and
    the console use to reach runs on it. `status` is online while heartbeats arrive; the
    sweep marks it offline once `last_heartbeat` is older than ATELIER_WORKER_OFFLINE_SECONDS.
    """

    hostname = models.CharField(max_length=255, unique=True)
    host = models.CharField(max_length=255)
    pools = models.ManyToManyField(Pool, related_name="workers", blank=True)
    cpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    gpus = models.JSONField(default=list)  # [{"index": 0, "name": "NVIDIA A100", "memory_mb": 81920}]
    slots = models.PositiveIntegerField(default=1)  # runs it can supervise at once (worker concurrency)
    pid = models.PositiveIntegerField(null=True, blank=True)
    version = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.ONLINE)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def gpu_indices(self) -> list[int]:
        return [int(gpu["index"]) for gpu in self.gpus]

    @property
    def queue(self) -> str:
        """The worker's own queue, used when the console places a run on this node itself."""
        return f"worker.{self.hostname}"


class NodeSample(models.Model):
    """One heartbeat's resource use of a worker's machine, for the monitoring charts."""

    node = models.ForeignKey(WorkerNode, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField(db_index=True)
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    gpu_percent = models.FloatField(null=True, blank=True)  # mean utilisation over the node's GPUs
    gpu_memory_percent = models.FloatField(null=True, blank=True)
    running_runs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["node", "at"]
        indexes = [models.Index(fields=["node", "at"])]

    def __str__(self) -> str:
        return f"{self.node} at {self.at:%H:%M:%S}: cpu {self.cpu_percent:.0f}%"


class RunQuerySet(WorkspaceQuerySet):
    def active(self) -> "RunQuerySet":
        return self.filter(status__in=ACTIVE_STATUSES)

    def for_owner(self, owner_type: str, owner_id) -> "RunQuerySet":
        return self.filter(owner_type=owner_type, owner_id=str(owner_id))


class Run(models.Model):
    """One process on one worker: a training node, a notebook server, a batch job, …

    States and transitions (every change goes through `services.run_transition`, a
    compare-and-set on (status, attempt), so two actors can never both win one step):

        queued   → starting   a worker claimed it (`run_claim`); nobody else can now
        queued   → stopped    stopped before any worker claimed it
        starting → running    the process started (pid recorded)
        starting → failed     staging inputs, rendezvous or the start itself failed
        running  → succeeded  exit code 0
        running  → failed     non-zero exit code, max runtime exceeded, or a peer node failed
        starting/running → stopping   stop requested; the supervisor sends SIGTERM to the
                                      process group, then SIGKILL after the grace period
        stopping → stopped    the process group is gone
        starting/running/stopping → lost   no heartbeat for ATELIER_RUNTIME_LOST_SECONDS
                                           (worker killed or machine gone)
        failed/lost → queued  auto-restart (`auto_restarts` < `max_restarts`); `attempt` + 1
        succeeded/failed/stopped/lost → queued   manual restart by a user; `attempt` + 1

    `attempt` numbers the executions of this row: a Celery message carries the attempt it
    was sent for, and a worker only executes it while the row is still queued at that
    attempt, so a redelivered or duplicated message never starts a second process.
    Multi-node runs are `node_count` rows sharing `group`, one per `node_rank`.
    The owner (a training job, notebook, service …) is `owner_type`/`owner_id` and hears
    about status changes through `apps.runtime.callbacks`.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    owner_type = models.CharField(max_length=64, blank=True)  # "<app>.<model>" of the owning object
    owner_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=200)
    job_type = models.CharField(max_length=16, choices=JobType.choices, default=JobType.TRAINING)

    command = models.JSONField()  # argv list; never passed through a shell
    env = models.JSONField(default=dict, blank=True)
    working_dir = models.CharField(max_length=255, blank=True)  # relative to the run directory
    inputs = models.JSONField(default=list, blank=True)  # [{"name", "uri"}] staged to inputs/<name>
    outputs = models.JSONField(default=list, blank=True)  # [{"name", "uri", "preload"}] from outputs/<name>
    flavor = models.ForeignKey(Flavor, on_delete=models.PROTECT, related_name="runs")
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="runs")

    group = models.UUIDField(default=uuid.uuid4, db_index=True)
    node_rank = models.PositiveIntegerField(default=0)
    node_count = models.PositiveIntegerField(default=1)

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    status_reason = models.CharField(max_length=500, blank=True)  # why it waits, why it failed
    exit_code = models.IntegerField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    auto_restarts = models.PositiveIntegerField(default=0)
    max_restarts = models.PositiveIntegerField(default=0)

    worker = models.ForeignKey(WorkerNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    host = models.CharField(max_length=255, blank=True)  # the worker's address, kept after the worker is gone
    pid = models.PositiveIntegerField(null=True, blank=True)
    work_path = models.CharField(max_length=1024, blank=True)  # run directory on the worker
    gpu_indices = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    max_runtime_seconds = models.PositiveIntegerField(null=True, blank=True)
    stop_grace_seconds = models.PositiveIntegerField(null=True, blank=True)  # None: ATELIER_RUNTIME_STOP_GRACE_SECONDS
    hang_seconds = models.PositiveIntegerField(null=True, blank=True)  # None: ATELIER_RUNTIME_HANG_SECONDS
    hang_action = models.CharField(max_length=16, choices=HangAction.choices, default=HangAction.EVENT)
    hang_detected_at = models.DateTimeField(null=True, blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)

    log_uri = models.CharField(max_length=1024, blank=True)
    log_lines = models.PositiveBigIntegerField(default=0)
    log_bytes = models.PositiveBigIntegerField(default=0)
    log_truncated = models.BooleanField(default=False)

    long_lived = models.BooleanField(default=False)
    health_path = models.CharField(max_length=255, blank=True)  # e.g. "/health"; "" = ready when the port answers
    # The health path is asked over TLS (an HTTPS server; its certificate is not verified).
    health_tls = models.BooleanField(default=False)
    port = models.PositiveIntegerField(null=True, blank=True)
    endpoint = models.CharField(max_length=300, blank=True)  # "host:port" once healthy
    ready_at = models.DateTimeField(null=True, blank=True)

    master_addr = models.CharField(max_length=255, blank=True)  # published by rank 0 of a group
    master_port = models.PositiveIntegerField(null=True, blank=True)
    # Worker ids this run must not be placed on again (a node that failed its environment checks);
    # kept across attempts. See services.run_group_exclude_worker.
    excluded_workers = models.JSONField(default=list, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["owner_type", "owner_id"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(node_count__gte=1), name="run_node_count_positive"),
            models.CheckConstraint(condition=Q(node_rank__lt=F("node_count")), name="run_rank_below_count"),
            models.CheckConstraint(condition=Q(max_restarts__lte=3), name="run_max_restarts_at_most_3"),
            models.UniqueConstraint(fields=["group", "node_rank"], name="run_unique_rank_in_group"),
        ]

    def __str__(self) -> str:
        if self.node_count > 1:
            return f"{self.name} (node {self.node_rank}/{self.node_count})"
        return self.name

    @property
    def group_channel(self) -> str:
        return f"runtime.run.{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def restart_count(self) -> int:
        """Executions after the first, automatic or manual (ATELIER_RESTART_COUNT in the run)."""
        return self.attempt - 1

    @property
    def duration(self):
        """Time the process has run (so far), or None before it started."""
        if self.started_at is None:
            return None
        from django.utils import timezone

        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def task_name(self) -> str:
        """ModelArts-style node name: worker-0 … worker-{n-1}."""
        return f"worker-{self.node_rank}"


class GpuLease(models.Model):
    """GPU `index` of `node` is held by `run`; the unique constraint makes double-booking impossible."""

    node = models.ForeignKey(WorkerNode, on_delete=models.CASCADE, related_name="gpu_leases")
    index = models.PositiveIntegerField()
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="gpu_leases")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["node", "index"]
        constraints = [models.UniqueConstraint(fields=["node", "index"], name="gpulease_unique_node_index")]

    def __str__(self) -> str:
        return f"GPU {self.index} of {self.node} for run {self.run_id}"


class Metric(models.Model):
    """One value a run reported (a metric line or `atelier.log_metric`), per name and step."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100)
    step = models.BigIntegerField()
    value = models.FloatField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "name", "step", "id"]
        indexes = [models.Index(fields=["run", "name", "step"])]

    def __str__(self) -> str:
        return f"{self.name}[{self.step}] = {self.value:g}"


class RunSample(models.Model):
    """Resource use of one run's own process tree at one moment, sampled by its supervisor.

    Percentages are of what the run's flavor grants (cores, memory), not of the whole machine,
    so two runs sharing a worker each show their own share; GPU values cover the run's leased
    GPUs and are None on CPU runs. Kept ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS (the sweep prunes).
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="samples")
    attempt = models.PositiveIntegerField(default=1)
    at = models.DateTimeField(db_index=True)
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    memory_mb = models.FloatField(default=0)
    gpu_percent = models.FloatField(null=True, blank=True)
    gpu_memory_percent = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "at"]
        indexes = [models.Index(fields=["run", "at"])]

    def __str__(self) -> str:
        return f"run {self.run_id} at {self.at:%H:%M:%S}: cpu {self.cpu_percent:.0f}%"


class RunAttempt(models.Model):
    """How one execution (attempt) of a run ended: the history behind restarts and fault recovery.

    Written by `services.run_transition` whenever a run reaches a terminal status, one row per
    (run, attempt); the run row itself is reused by the next attempt and keeps only the latest.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    host = models.CharField(max_length=255, blank=True)
    worker_name = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "attempt"]
        constraints = [models.UniqueConstraint(fields=["run", "attempt"], name="runattempt_unique_run_attempt")]

    def __str__(self) -> str:
        return f"run {self.run_id} attempt {self.attempt}: {self.status}"
