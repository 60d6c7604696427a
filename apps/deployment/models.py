"""Deployment records: AI applications and their versions, services, instances, keys, call
statistics and alarm rules.

An AI application ("model" in the sidebar) is a named, versioned model package; a version is
immutable once imported. A service runs versions: each `ServiceVersion` (the "model workload"
of ModelArts monitoring) has a traffic weight, a flavor and a number of instances, and each
`ServiceInstance` is one long-lived model-server run of the run engine.
"""
from __future__ import annotations

import json

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.scoping import WorkspaceQuerySet

from .choices import (
    AlarmMetric,
    AlarmState,
    AsyncRequestStatus,
    Comparison,
    DeployType,
    ModelSource,
    ModelStatus,
    RequestMode,
    ServiceKind,
    ServiceStatus,
)



class OrderedJSONField(models.JSONField):
    """JSON that keeps the key order it was written with.

    PostgreSQL's jsonb sorts object keys; a model's config.json lists its request fields in the
    order their CSV columns follow, so on PostgreSQL this field uses the plain `json` type.
    """

    def db_type(self, connection):
        return "json" if connection.vendor == "postgresql" else super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor == "postgresql" and value is not None:
            # Django sends JSON as a jsonb parameter, whose cast would sort the keys again.
            from psycopg.types.json import Json

            return Json(value, dumps=lambda obj: json.dumps(obj, cls=self.encoder))
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value, expression, connection):
        if value is not None and not isinstance(value, str):  # psycopg already parsed `json`
            return value
        return super().from_db_value(value, expression, connection)


class AiApp(models.Model):
    """A named AI application in a workspace; its versions hold the files and the recipe."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="ai_apps")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=500, blank=True)
    request_mode = models.CharField(max_length=8, choices=RequestMode.choices, default=RequestMode.SYNC)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="aiapp_unique_name_in_workspace")]

    def __str__(self) -> str:
        return self.name


class AiAppVersion(models.Model):
    """One imported version of an AI application: a snapshot of its package plus how to run it.

    Storage and training sources are copied to `package_uri` at import, so later edits to the
    source never change a deployed version. Image and command sources have no package (the
    container or command serves the API itself on `port`).
    """

    app = models.ForeignKey(AiApp, on_delete=models.CASCADE, related_name="versions")
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    version = models.CharField(max_length=32)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.IMPORTING)
    status_reason = models.CharField(max_length=1000, blank=True)

    source_type = models.CharField(max_length=16, choices=ModelSource.choices)
    source_uri = models.CharField(max_length=1024, blank=True)  # storage://… of the meta-model
    training_job_id = models.CharField(max_length=64, blank=True)
    training_job_name = models.CharField(max_length=200, blank=True)
    image = models.CharField(max_length=500, blank=True)
    command = models.JSONField(default=list, blank=True)  # argv of a custom command / container start command
    protocol = models.CharField(max_length=8, default="http")
    port = models.PositiveIntegerField(default=8080)
    image_copy = models.BooleanField(default=False)

    package_uri = models.CharField(max_length=1024, blank=True)
    config = OrderedJSONField(default=dict, blank=True)  # normalised config.json, key order kept
    model_type = models.CharField(max_length=32, blank=True)
    runtime = models.CharField(max_length=64, blank=True)
    model_algorithm = models.CharField(max_length=36, blank=True)
    deploy_types = models.JSONField(default=list)
    docs = models.JSONField(default=list, blank=True)  # [{"name", "url"}], at most 3
    health = models.JSONField(default=dict, blank=True)
    env_hash = models.CharField(max_length=32, blank=True)  # dependency environment, "" = none needed
    size_bytes = models.BigIntegerField(default=0)
    warnings = models.JSONField(default=list, blank=True)
    # Service start parameters of an asynchronous application (usage constraints, seed-06 §2.7):
    # [{"name", "default", "required", "description"}]; edge deployments fill them in (§7.1).
    start_params = models.JSONField(default=list, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["app", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["app", "version"], name="aiappversion_unique_version")]

    def __str__(self) -> str:
        return f"{self.app.name} {self.version}"

    @property
    def label(self) -> str:
        return f"{self.app.name} {self.version}"

    @property
    def is_normal(self) -> bool:
        return self.status == ModelStatus.NORMAL

    @property
    def serves_package(self) -> bool:
        """True when Atelier's model server serves it (not a custom image or command)."""
        return self.source_type in (ModelSource.STORAGE, ModelSource.TRAINING)

    @property
    def api(self) -> dict:
        apis = self.config.get("apis") or []
        return apis[0] if apis else {"url": "/", "method": "POST", "request": {"Content-type": "application/json"},
                                     "response": {"Content-type": "application/json"}}

    @property
    def input_is_file(self) -> bool:
        """True when the API takes a file upload (the test page then shows an upload button)."""
        props = ((self.api.get("request") or {}).get("data") or {}).get("properties") or {}
        return any(isinstance(v, dict) and v.get("type") == "file" for v in props.values())

    def deploy_type_labels(self) -> list[str]:
        return [DeployType(value).label for value in self.deploy_types if value in DeployType.values]


class InferenceService(models.Model):
    """An online or batch service: versions with weights and instances behind the gateway.

    Online statuses (every change goes through `services.service_status_set`):

        deploying → running      every instance of every version answered its health URL
        deploying → abnormal     an instance failed for good, or the deploy timeout passed
        running  ↔ alarm         some instances are down (crashed, restarting) / all back
        running/alarm/deploying → stopping → stopped    stop (user, auto-stop, timeout)
        stopped/abnormal → deploying                    start

    Batch services go deploying → running (inference over the input) → completed | abnormal.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="inference_services")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=8, choices=ServiceKind.choices, default=ServiceKind.ONLINE)
    status = models.CharField(max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.DEPLOYING)
    status_reason = models.CharField(max_length=1000, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    auto_stop_hours = models.PositiveSmallIntegerField(null=True, blank=True)  # None: auto-stop off
    auto_stop_at = models.DateTimeField(null=True, blank=True)
    deploy_timeout_minutes = models.PositiveSmallIntegerField(default=20)
    traffic_limit = models.PositiveIntegerField(null=True, blank=True)  # requests per second, None: no limit
    websocket = models.BooleanField(default=False)
    rules = models.JSONField(default=list, blank=True)  # [{"condition", "version", "header_name", "header_value"}]
    mounts = models.JSONField(default=list, blank=True)  # [{"source": "storage://…", "mount_path": "/…"}], fixed
    max_unavailable = models.PositiveSmallIntegerField(default=1)
    generation = models.PositiveIntegerField(default=0)  # instances of older generations drain
    pending_config = models.JSONField(default=list, blank=True)  # versions of a rollout not yet promoted
    # Versions whose dependency environment the instances are building: {version pk: env hash}.
    image_builds = models.JSONField(default=dict, blank=True)
    deploying_since = models.DateTimeField(null=True, blank=True)
    stop_due_at = models.DateTimeField(null=True, blank=True)  # Stopping: instances stop then (health-check delay)
    started_at = models.DateTimeField(null=True, blank=True)

    input_uri = models.CharField(max_length=1024, blank=True)  # batch: folder or .manifest
    input_kind = models.CharField(max_length=16, blank=True)  # "folder" or "manifest"
    output_uri = models.CharField(max_length=1024, blank=True)
    request_path = models.CharField(max_length=255, blank=True)
    mapping = models.JSONField(default=dict, blank=True)  # CSV column → request field (batch, JSON apps)
    task_id = models.CharField(max_length=64, blank=True)
    progress = models.JSONField(default=dict, blank=True)  # batch: {"total", "done", "failed"}

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="service_unique_name_in_workspace")]
        indexes = [models.Index(fields=["workspace", "kind", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        return self.kind == ServiceKind.ONLINE


class ServiceVersion(models.Model):
    """One AI-application version inside a service: its share of traffic and its instances."""

    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="versions")
    model_version = models.ForeignKey(AiAppVersion, on_delete=models.PROTECT, related_name="service_versions")
    weight = models.PositiveSmallIntegerField(default=100)
    pool = models.ForeignKey("runtime.Pool", on_delete=models.PROTECT, related_name="+")
    flavor = models.ForeignKey("runtime.Flavor", on_delete=models.PROTECT, related_name="+")
    instance_count = models.PositiveSmallIntegerField(default=1)
    env = models.JSONField(default=dict, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["service", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "model_version"], name="serviceversion_unique_version"),
            models.CheckConstraint(condition=Q(weight__lte=100), name="serviceversion_weight_at_most_100"),
            models.CheckConstraint(condition=Q(instance_count__gte=1), name="serviceversion_one_instance_or_more"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name}: {self.model_version.label} ({self.weight}%)"


class ServiceInstance(models.Model):
    """One model-server run of a service version. A draining instance takes no new requests and
    is stopped once the requests it holds have finished (scale-down, upgrade)."""

    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="instances")
    service_version = models.ForeignKey(ServiceVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="instances")
    model_version = models.ForeignKey(AiAppVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.OneToOneField("runtime.Run", on_delete=models.CASCADE, related_name="service_instance")
    generation = models.PositiveIntegerField(default=0)
    draining_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.service.name} instance {self.pk}"


class ServiceConfigRecord(models.Model):
    """A service's configuration after a deploy or update ("Config update records")."""

    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="config_records")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=200)
    config = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.service.name}: {self.note}"


class ServiceApiKey(models.Model):
    """A credential that may call one service (and no other).

    kind "token": a key sent as X-Auth-Token; only its digest and first characters are stored.
    kind "app": an app key (public, kept whole in `prefix`) whose secret signs requests
    (`signing.py`); the secret is derived, never stored.
    """

    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="api_keys")
    kind = models.CharField(max_length=8, choices=[("token", "Token"), ("app", "App key + secret")], default="token")
    name = models.CharField(max_length=64)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    rate_limit = models.PositiveIntegerField(null=True, blank=True)  # requests per minute, None: no limit
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CallStat(models.Model):
    """Calls of one service version in one minute, as the gateway counted them.

    `latency_buckets[i]` counts calls at or below LATENCY_BUCKETS_MS[i] (the last bucket holds
    the rest), so percentiles can be read back over any time range.
    """

    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="call_stats")
    model_version = models.ForeignKey(AiAppVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    version_label = models.CharField(max_length=100)
    minute = models.DateTimeField()
    total = models.PositiveIntegerField(default=0)
    success = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_max_ms = models.FloatField(default=0)
    latency_buckets = models.JSONField(default=list)

    class Meta:
        ordering = ["service", "minute", "version_label"]
        constraints = [models.UniqueConstraint(fields=["service", "version_label", "minute"],
                                               name="callstat_unique_minute")]
        indexes = [models.Index(fields=["service", "minute"])]

    def __str__(self) -> str:
        return f"{self.version_label} {self.minute:%H:%M}: {self.success}/{self.total}"


class AlarmRule(models.Model):
    """Raise an alarm when a service's (or one version's) metric crosses a threshold."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="alarm_rules")
    model_version = models.ForeignKey(AiAppVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    metric = models.CharField(max_length=32, choices=AlarmMetric.choices)
    comparison = models.CharField(max_length=2, choices=Comparison.choices)
    threshold = models.FloatField()
    period_minutes = models.PositiveSmallIntegerField(default=1)
    notify = models.BooleanField(default=False)
    notify_target = models.CharField(max_length=500, blank=True)  # e-mail addresses or a webhook URL
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=8, choices=AlarmState.choices, default=AlarmState.OK)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["service", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} {self.comparison} {self.threshold:g}"


class Alarm(models.Model):
    """One episode of a rule in alarm: raised when the threshold is crossed, cleared when back."""

    rule = models.ForeignKey(AlarmRule, on_delete=models.CASCADE, related_name="alarms")
    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="alarms")
    raised_at = models.DateTimeField()
    value = models.FloatField()
    message = models.CharField(max_length=500)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]

    def __str__(self) -> str:
        return self.message


class AsyncRequest(models.Model):
    """One call to an AI application in async request mode: the gateway answers 202 with this
    row's id, forwards the stored request to an instance, and keeps the answer for
    ATELIER_GATEWAY_ASYNC_RESULT_DAYS (`GET /infer/<service>/tasks/<id>`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(InferenceService, on_delete=models.CASCADE, related_name="async_requests")
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(AiAppVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    version_label = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=AsyncRequestStatus.choices, default=AsyncRequestStatus.QUEUED)
    method = models.CharField(max_length=8, default="POST")
    target = models.CharField(max_length=2048)  # path and query as sent to the instance
    content_type = models.CharField(max_length=255, blank=True)
    body = models.BinaryField(blank=True)  # the request, ≤ ATELIER_GATEWAY_MAX_BODY_BYTES
    caller = models.CharField(max_length=160, blank=True)  # "key <prefix>…" or "user <name>"
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content_type = models.CharField(max_length=255, blank=True)
    response_body = models.BinaryField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_msg = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["service", "-created_at"]), models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.service_id}/{self.pk} ({self.status})"


# The edge module's records live in apps/deployment/edge/models.py and belong to this app.
from .edge.models import (  # noqa: E402,F401
    AccessPort,
    EdgeInstance,
    EdgeNode,
    EdgeNodeSample,
    EdgePool,
    EdgeService,
    LoadBalancer,
)
