"""Deployment API shapes: AI applications and versions, services, keys, alarm rules, metrics."""
from __future__ import annotations

from rest_framework import serializers

from ..choices import AlarmMetric, Comparison, DeployType, ModelSource, RequestMode
from ..models import AiApp, AiAppVersion, AlarmRule, InferenceService, ServiceApiKey, ServiceVersion


class AiAppVersionSerializer(serializers.ModelSerializer):
    app = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    apis = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()
    dependencies = serializers.SerializerMethodField()

    class Meta:
        model = AiAppVersion
        fields = ["id", "app", "version", "description", "status", "status_reason", "source_type", "source_uri",
                  "training_job_id", "image", "command", "protocol", "port", "package_uri", "model_type", "runtime",
                  "model_algorithm", "deploy_types", "docs", "health", "size_bytes", "warnings", "apis", "metrics",
                  "dependencies", "start_params", "created_by", "created_at"]

    def get_app(self, version) -> dict:
        return {"id": version.app_id, "name": version.app.name}

    def get_apis(self, version) -> list:
        return version.config.get("apis", [])

    def get_metrics(self, version) -> dict:
        return version.config.get("metrics", {})

    def get_dependencies(self, version) -> list:
        return version.config.get("dependencies", [])


class AiAppSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    version_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.CharField(read_only=True, allow_null=True)
    latest_status = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = AiApp
        fields = ["id", "name", "description", "request_mode", "version_count", "latest_version", "latest_status",
                  "created_by", "created_at"]


class VersionInputSerializer(serializers.Serializer):
    """Fields of a new version (the first one when creating an AI application)."""

    version = serializers.CharField(required=False, allow_blank=True, help_text="e.g. 0.0.1; default: next patch")
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    source_type = serializers.ChoiceField(choices=ModelSource.choices, default=ModelSource.STORAGE)
    source_uri = serializers.CharField(required=False, allow_blank=True,
                                       help_text="storage:// folder holding model/ (optional for source_type image: "
                                                 "its model/ is mounted read-only at /home/mind/model)")
    training_job = serializers.IntegerField(required=False)
    image = serializers.CharField(required=False, allow_blank=True)
    image_copy = serializers.BooleanField(required=False, default=False)
    command = serializers.JSONField(required=False, help_text="argv list or a command line")
    protocol = serializers.ChoiceField(choices=["http", "https"], default="http")
    port = serializers.IntegerField(required=False, default=8080)
    apis = serializers.JSONField(required=False, help_text="config.json apis, for image and command sources")
    health = serializers.JSONField(required=False, help_text="config.json health, for image and command sources")
    deploy_types = serializers.MultipleChoiceField(choices=DeployType.choices, default=[DeployType.ONLINE])
    docs = serializers.JSONField(required=False, help_text='[{"name", "url"}], at most 3')
    start_params = serializers.JSONField(required=False, help_text='async apps: [{"name", "default", "required", '
                                         '"description"}] service start parameters')

    def service_kwargs(self) -> dict:
        data = dict(self.validated_data)
        data["deploy_types"] = sorted(data.get("deploy_types") or [DeployType.ONLINE])
        return data


class AiAppCreateSerializer(VersionInputSerializer):
    name = serializers.CharField(max_length=64)
    request_mode = serializers.ChoiceField(choices=RequestMode.choices, default=RequestMode.SYNC)
    workspace = serializers.IntegerField(required=False, help_text="Workspace id; default: the current one.")


class ServiceVersionSerializer(serializers.ModelSerializer):
    model_version = serializers.PrimaryKeyRelatedField(read_only=True)
    label = serializers.CharField(source="model_version.label", read_only=True)
    flavor = serializers.SlugRelatedField(slug_field="name", read_only=True)
    pool = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ServiceVersion
        fields = ["model_version", "label", "weight", "pool", "flavor", "instance_count", "env"]


class ServiceSerializer(serializers.ModelSerializer):
    versions = ServiceVersionSerializer(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    access_address = serializers.SerializerMethodField()

    class Meta:
        model = InferenceService
        fields = ["id", "name", "description", "kind", "status", "status_reason", "access_address", "versions",
                  "auto_stop_hours", "auto_stop_at", "deploy_timeout_minutes", "traffic_limit", "websocket", "rules",
                  "mounts", "max_unavailable", "input_uri", "input_kind", "output_uri", "request_path", "mapping", "task_id",
                  "progress", "created_by", "created_at", "updated_at"]

    def get_access_address(self, service) -> str:
        request = self.context.get("request")
        path = f"/infer/{service.pk}"
        return request.build_absolute_uri(path) if request is not None else path


class ServiceVersionInputSerializer(serializers.Serializer):
    model_version = serializers.IntegerField()
    weight = serializers.IntegerField(required=False)
    pool = serializers.IntegerField()
    flavor = serializers.IntegerField()
    instance_count = serializers.IntegerField(required=False, default=1)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)


class ServiceCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    versions = ServiceVersionInputSerializer(many=True)
    auto_stop_hours = serializers.IntegerField(required=False, allow_null=True, default=1)
    deploy_timeout_minutes = serializers.IntegerField(required=False, default=20)
    traffic_limit = serializers.IntegerField(required=False, allow_null=True, default=None)
    websocket = serializers.BooleanField(required=False, default=False)
    rules = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    max_unavailable = serializers.IntegerField(required=False, default=1)
    mounts = serializers.ListField(child=serializers.DictField(child=serializers.CharField(allow_blank=True)),
                                   required=False, default=list,
                                   help_text='Storage mounts: [{"source": "storage://bucket/folder", '
                                             '"mount_path": "/home/mind/data"}], at most 8; fixed once deployed.')
    workspace = serializers.IntegerField(required=False)


class ServiceUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    versions = ServiceVersionInputSerializer(many=True, required=False)
    auto_stop_hours = serializers.IntegerField(required=False, allow_null=True)
    deploy_timeout_minutes = serializers.IntegerField(required=False)
    traffic_limit = serializers.IntegerField(required=False, allow_null=True)
    rules = serializers.ListField(child=serializers.DictField(), required=False)
    max_unavailable = serializers.IntegerField(required=False)
    websocket = serializers.BooleanField(required=False,
                                         help_text="Fixed once deployed: only the current value is accepted.")


class BatchServiceCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    model_version = serializers.IntegerField()
    input_uri = serializers.CharField(help_text="storage:// folder or .manifest file")
    output_uri = serializers.CharField(help_text="storage:// folder")
    pool = serializers.IntegerField()
    flavor = serializers.IntegerField()
    instance_count = serializers.IntegerField(required=False, default=1)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    deploy_timeout_minutes = serializers.IntegerField(required=False, default=20)
    mapping = serializers.JSONField(required=False)
    workspace = serializers.IntegerField(required=False)


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = ServiceApiKey
        fields = ["id", "kind", "name", "prefix", "rate_limit", "state", "created_by", "created_at", "last_used_at",
                  "revoked_at"]

    def get_state(self, key) -> str:
        return "active" if key.is_active else "revoked"


class ApiKeyCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["token", "app"], default="token",
                                   help_text="token: a key sent as X-Auth-Token (answered as `key`); app: an app key "
                                             "(`prefix`) and secret (`app_secret`) for SDK-HMAC-SHA256 signing")
    name = serializers.CharField(max_length=64)
    rate_limit = serializers.IntegerField(required=False, allow_null=True, help_text="requests per minute")


class AlarmRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlarmRule
        fields = ["id", "name", "model_version", "metric", "comparison", "threshold", "period_minutes", "notify",
                  "notify_target", "enabled", "state", "last_value", "last_evaluated_at", "created_at"]


class AlarmRuleCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    model_version = serializers.IntegerField(required=False, allow_null=True)
    metric = serializers.ChoiceField(choices=AlarmMetric.choices)
    comparison = serializers.ChoiceField(choices=Comparison.choices)
    threshold = serializers.FloatField()
    period_minutes = serializers.IntegerField(default=1)
    notify = serializers.BooleanField(default=False)
    notify_target = serializers.CharField(required=False, allow_blank=True, default="")


class DeploymentEventSerializer(serializers.Serializer):
    """One event of a version or a service, as the events list answers it."""

    level = serializers.CharField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
