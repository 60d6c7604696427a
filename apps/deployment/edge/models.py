"""Edge records: nodes (with their enrolment token and samples), pools, services and their
instances, load balancers and access ports. Imported by `apps.deployment.models`, so they
belong to the deployment app and its migrations."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.scoping import WorkspaceQuerySet

from .choices import Accelerator, ActivationStatus, EdgeNodeStatus, EdgeServiceStatus, LogLevel


class EdgeNode(models.Model):
    """A workspace-owned machine running the edge agent.

    Enrolment: creating a node stores the hash of a one-time token valid 24 h; the agent
    presents it once (`token_used_at` set, the token is spent) and from then on authenticates
    with `agent_key_hash`. `status` is derived (see `current_status`): UNCONNECTED until the
    first heartbeat, RUNNING while heartbeats arrive, FAULTY once they stop for
    ATELIER_EDGE_FAULTY_SECONDS, UPGRADING while the agent says so, FREEZE while frozen.
    Runs reach the node through its own run-engine pool `edge-node-<id>`.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="edge_nodes")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True)
    accelerator = models.CharField(max_length=8, choices=Accelerator.choices, default=Accelerator.NONE)
    token_hash = models.CharField(max_length=64, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_used_at = models.DateTimeField(null=True, blank=True)
    agent_key_hash = models.CharField(max_length=64, blank=True)
    frozen = models.BooleanField(default=False)
    upgrading = models.BooleanField(default=False)
    # An admin asked the agent to fetch the console's agent code and re-exec itself; cleared when a
    # heartbeat reports the console's version.
    upgrade_requested = models.BooleanField(default=False)
    host = models.CharField(max_length=255, blank=True)
    os = models.CharField(max_length=100, blank=True)
    arch = models.CharField(max_length=32, blank=True)
    agent_version = models.CharField(max_length=32, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    activation = models.CharField(max_length=10, choices=ActivationStatus.choices, default=ActivationStatus.INACTIVE)
    activated_until = models.DateTimeField(null=True, blank=True)
    # Log settings (seed-06 §7.4): retention 1–30 days, levels, 50 MB total in 10 MB files, rolled every 5 days.
    log_retention_days = models.PositiveSmallIntegerField(default=7)
    system_log_level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.DEBUG)
    app_log_level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.DEBUG)
    log_size_mb = models.PositiveSmallIntegerField(default=50, editable=False)
    log_file_mb = models.PositiveSmallIntegerField(default=10, editable=False)
    log_rotate_days = models.PositiveSmallIntegerField(default=5)
    pool = models.OneToOneField("runtime.Pool", null=True, blank=True, on_delete=models.SET_NULL, related_name="edge_node")
    edge_pool = models.ForeignKey("EdgePool", null=True, blank=True, on_delete=models.PROTECT, related_name="nodes")
    is_master = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="edgenode_unique_name_in_workspace"),
            models.CheckConstraint(condition=Q(log_retention_days__gte=1, log_retention_days__lte=30),
                                   name="edgenode_log_retention_1_30"),
        ]

    def __str__(self) -> str:
        return self.name

    def current_status(self, now=None) -> str:
        """The node status at `now`, from the freeze flag, the agent's flags and the last heartbeat."""
        now = now or timezone.now()
        if self.frozen:
            return EdgeNodeStatus.FREEZE
        if self.last_heartbeat is None:
            return EdgeNodeStatus.UNCONNECTED
        if now - self.last_heartbeat > timedelta(seconds=settings.ATELIER_EDGE_FAULTY_SECONDS):
            return EdgeNodeStatus.FAULTY
        if self.upgrading:
            return EdgeNodeStatus.UPGRADING
        return EdgeNodeStatus.RUNNING

    @property
    def status(self) -> str:
        return self.current_status()

    @property
    def is_activated(self) -> bool:
        return (self.activation == ActivationStatus.ACTIVATED and self.activated_until is not None
                and self.activated_until > timezone.now())

    @property
    def schedulable(self) -> bool:
        """Edge services may be placed here: running, activated and not expired."""
        return self.status == EdgeNodeStatus.RUNNING and self.is_activated


class EdgeNodeSample(models.Model):
    """A monitoring sample the agent sent (kept at most one per ATELIER_EDGE_SAMPLE_SECONDS)."""

    node = models.ForeignKey(EdgeNode, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    disk_percent = models.FloatField()
    gpus = models.JSONField(default=list, blank=True)  # [{"index", "util", "memory"}]

    class Meta:
        ordering = ["node", "-at"]

    def __str__(self) -> str:
        return f"{self.node_id} @ {self.at:%Y-%m-%d %H:%M}"


class EdgePool(models.Model):
    """A group of edge nodes: ≤ 3 masters and up to `max_workers` workers, never overlapping
    (a node belongs to one pool, as master or worker). Runs reach it through `edge-pool-<id>`."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="edge_pools")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True)
    max_workers = models.PositiveSmallIntegerField(default=8)
    pool = models.OneToOneField("runtime.Pool", null=True, blank=True, on_delete=models.SET_NULL, related_name="edge_pool")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="edgepool_unique_name_in_workspace"),
            models.CheckConstraint(condition=Q(max_workers__gte=1, max_workers__lte=64), name="edgepool_max_workers_1_64"),
        ]

    def __str__(self) -> str:
        return self.name


class EdgeService(models.Model):
    """An AI-application version deployed on an edge node or an edge pool (exactly one).

    Instances are long-lived runs on the target's pool; with a port mapping each instance
    listens on its host port. Start/stop/restart do not exist for node/pool deployments
    (seed-06 §5): a service is deployed, then deleted.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="edge_services")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True)
    node = models.ForeignKey(EdgeNode, null=True, blank=True, on_delete=models.PROTECT, related_name="services")
    edge_pool = models.ForeignKey(EdgePool, null=True, blank=True, on_delete=models.PROTECT, related_name="services")
    model_version = models.ForeignKey("deployment.AiAppVersion", on_delete=models.PROTECT, related_name="edge_services")
    flavor = models.ForeignKey("runtime.Flavor", on_delete=models.PROTECT, related_name="+")
    instance_count = models.PositiveSmallIntegerField(default=1)
    port_mappings = models.JSONField(default=list, blank=True)  # [{"container_port", "host_ip", "host_port"}]
    volumes = models.JSONField(default=list, blank=True)  # [{"name", "type", "host_path", "mount_path", "read_only"}]
    start_params = models.JSONField(default=dict, blank=True)  # environment of every instance
    # Asynchronous applications: video streams each instance processes concurrently (seed-06 §7.1,
    # Table 8-23); None for synchronous ones. Instances get it as EDGE_STREAM_COUNT.
    stream_count = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=EdgeServiceStatus.choices, default=EdgeServiceStatus.DEPLOYING)
    status_reason = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="edgeservice_unique_name_in_workspace"),
            models.CheckConstraint(condition=Q(node__isnull=True) ^ Q(edge_pool__isnull=True),
                                   name="edgeservice_one_target"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def target(self):
        return self.node or self.edge_pool


class EdgeInstance(models.Model):
    """One run of an edge service; `host_port` is the mapped port it listens on (None: any free port)."""

    service = models.ForeignKey(EdgeService, on_delete=models.CASCADE, related_name="instances")
    run = models.OneToOneField("runtime.Run", on_delete=models.CASCADE, related_name="edge_instance")
    host_port = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["service", "id"]

    def __str__(self) -> str:
        return f"{self.service.name} instance {self.pk}"


class LoadBalancer(models.Model):
    """An HTTP listener on a node (or a pool's masters) run by the agent: requests matching a rule
    go round-robin (or by client IP, with stickiness) to the instances of the rule's edge service.

    rules: [{"match": "prefix"|"exact"|"regex", "path": "/…", "service": <edge service id>, "container_port": int}]
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="edge_load_balancers")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True)
    node = models.ForeignKey(EdgeNode, null=True, blank=True, on_delete=models.PROTECT, related_name="load_balancers")
    edge_pool = models.ForeignKey(EdgePool, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="load_balancers")
    listen_port = models.PositiveIntegerField()
    protocol = models.CharField(max_length=8, default="HTTP", editable=False)  # only HTTP is supported
    policy = models.CharField(max_length=16, default="round_robin", editable=False)
    sticky = models.BooleanField(default=False)  # session persistence by client IP
    rules = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="loadbalancer_unique_name_in_workspace"),
            models.CheckConstraint(condition=Q(listen_port__gte=1, listen_port__lte=65535),
                                   name="loadbalancer_listen_port_range"),
        ]

    def __str__(self) -> str:
        return self.name


class AccessPort(models.Model):
    """A ClusterIP access port of an edge service: TCP port → container port pairs (records)."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="edge_access_ports")
    name = models.CharField(max_length=64)
    service = models.ForeignKey(EdgeService, on_delete=models.PROTECT, related_name="access_ports")
    type = models.CharField(max_length=16, default="ClusterIP", editable=False)  # the only type offered
    ports = models.JSONField(default=list)  # [{"protocol": "TCP", "port": int, "container_port": int}]
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="accessport_unique_name_in_workspace")]

    def __str__(self) -> str:
        return self.name
