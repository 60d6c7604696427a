"""Serializers of the runtime API: pools, flavors, workers, runs and the submit request."""
from __future__ import annotations

import shlex

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..choices import HangAction, JobType, PoolStatus
from ..exitcodes import exit_code_label
from ..models import Flavor, Pool, Run, WorkerNode
from ..scheduling import flavor_availability, online_nodes_by_pool
from ..selectors import worker_is_online


class PoolSerializer(serializers.ModelSerializer):
    queue = serializers.CharField(read_only=True)

    class Meta:
        model = Pool
        fields = ["id", "name", "description", "job_types", "status", "dedicated", "queue", "created_at"]


class PoolWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=40, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    job_types = serializers.ListField(child=serializers.ChoiceField(choices=JobType.choices), required=False)
    status = serializers.ChoiceField(choices=PoolStatus.choices, required=False)
    dedicated = serializers.BooleanField(required=False)  # one team's pool: training uid 0–65535


class FlavorSerializer(serializers.ModelSerializer):
    pools = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    summary = serializers.CharField(read_only=True)
    available = serializers.SerializerMethodField()
    unavailable_reason = serializers.SerializerMethodField()

    class Meta:
        model = Flavor
        fields = ["id", "name", "description", "cpus", "memory_mb", "gpus", "gpu_type", "pools", "summary",
                  "available", "unavailable_reason", "created_at"]

    def _availability(self, flavor) -> tuple[bool, str]:
        # One lookup of online workers per response, shared by every flavor serialized in it.
        if "online_by_pool" not in self.context:
            self.context["online_by_pool"] = online_nodes_by_pool()
        cache = self.context.setdefault("availability", {})
        if flavor.pk not in cache:
            cache[flavor.pk] = flavor_availability(flavor, online_by_pool=self.context["online_by_pool"])
        return cache[flavor.pk]

    def get_available(self, flavor) -> bool:
        return self._availability(flavor)[0]

    def get_unavailable_reason(self, flavor) -> str:
        return self._availability(flavor)[1]


class FlavorWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    cpus = serializers.IntegerField(required=False)
    memory_mb = serializers.IntegerField(required=False)
    gpus = serializers.IntegerField(required=False)
    gpu_type = serializers.CharField(max_length=64, required=False, allow_blank=True)
    pools = serializers.ListField(child=serializers.CharField(), required=False)


class WorkerSerializer(serializers.ModelSerializer):
    pools = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    online = serializers.SerializerMethodField()
    running = serializers.IntegerField(read_only=True)
    gpus_leased = serializers.IntegerField(read_only=True)

    class Meta:
        model = WorkerNode
        fields = ["id", "hostname", "host", "status", "online", "pools", "cpus", "memory_mb", "gpus", "slots",
                  "running", "gpus_leased", "version", "started_at", "last_heartbeat"]

    def get_online(self, node) -> bool:
        return worker_is_online(node)


class RunSerializer(serializers.ModelSerializer):
    workspace = serializers.IntegerField(source="workspace_id", read_only=True)
    flavor = serializers.CharField(source="flavor.name", read_only=True)
    pool = serializers.CharField(source="pool.name", read_only=True)
    worker = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    exit_text = serializers.SerializerMethodField()
    restart_count = serializers.IntegerField(read_only=True)
    websocket = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id", "name", "workspace", "created_by", "owner_type", "owner_id", "job_type", "status", "status_label",
            "status_reason", "exit_code", "exit_text", "command", "env", "working_dir", "inputs", "outputs",
            "flavor", "pool", "group", "node_rank", "node_count", "attempt", "restart_count", "auto_restarts",
            "max_restarts", "worker", "host", "pid", "gpu_indices", "created_at", "queued_at", "started_at",
            "finished_at", "heartbeat_at", "max_runtime_seconds", "stop_grace_seconds", "hang_seconds",
            "hang_action", "hang_detected_at", "log_lines", "log_bytes", "log_truncated", "long_lived",
            "health_path", "endpoint", "ready_at", "master_addr", "master_port", "websocket",
        ]

    def get_worker(self, run) -> str:
        return run.worker.hostname if run.worker_id and run.worker else ""

    def get_created_by(self, run) -> str:
        return run.created_by.get_username() if run.created_by_id and run.created_by else ""

    def get_exit_text(self, run) -> str:
        return exit_code_label(run.exit_code)

    def get_websocket(self, run) -> str:
        return f"/ws/runtime/runs/{run.pk}/"


@extend_schema_field({
    "oneOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1}, {"type": "string"}],
    "description": "The command: a list of arguments, or one line of text split like a shell would.",
})
class CommandField(serializers.Field):
    """An argv list, or a string split like a shell would (no shell ever runs it)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = shlex.split(data)
            except ValueError as exc:
                raise serializers.ValidationError(f"The command cannot be split into arguments: {exc}.") from None
        if not isinstance(data, list) or not data or not all(isinstance(arg, str) for arg in data):
            raise serializers.ValidationError("Give the command as a list of arguments or one line of text.")
        return data

    def to_representation(self, value):
        return value


class RunSubmitSerializer(serializers.Serializer):
    workspace = serializers.IntegerField(required=False)
    name = serializers.CharField(max_length=200)
    command = CommandField()
    flavor = serializers.CharField()
    pool = serializers.CharField(default="local")
    job_type = serializers.ChoiceField(choices=JobType.choices, default=JobType.TRAINING)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False)
    working_dir = serializers.CharField(required=False, allow_blank=True, default="")
    inputs = serializers.ListField(child=serializers.DictField(), required=False)
    outputs = serializers.ListField(child=serializers.DictField(), required=False)
    node_count = serializers.IntegerField(default=1)
    max_restarts = serializers.IntegerField(default=0)
    max_runtime_seconds = serializers.IntegerField(required=False, allow_null=True)
    stop_grace_seconds = serializers.IntegerField(required=False, allow_null=True)
    hang_seconds = serializers.IntegerField(required=False, allow_null=True)
    hang_action = serializers.ChoiceField(choices=HangAction.choices, default=HangAction.EVENT)
    long_lived = serializers.BooleanField(default=False)
    health_path = serializers.CharField(required=False, allow_blank=True, default="")


class LogSliceSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    total = serializers.IntegerField()
    lines = serializers.ListField(child=serializers.CharField())


class MetricPointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    value = serializers.FloatField()


class MetricSeriesSerializer(serializers.Serializer):
    series = serializers.DictField(child=serializers.ListField(child=MetricPointSerializer()),
                                  help_text="Points of each metric by name, in step order.")


class EventSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    level = serializers.CharField()
    message = serializers.CharField()
