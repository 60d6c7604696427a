"""REST representations of training objects (read side; writes go through the services)."""
from rest_framework import serializers

from apps.runtime.api.serializers import MetricPointSerializer

from ..models import Algorithm, Experiment, TrainingJob


class TrainingJobSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    status_zh = serializers.CharField(read_only=True)
    pool = serializers.CharField(source="pool.name", read_only=True)
    flavor = serializers.CharField(source="flavor.name", read_only=True)
    experiment = serializers.CharField(source="experiment.name", read_only=True, default=None)
    duration_seconds = serializers.IntegerField(read_only=True, allow_null=True)  # null until the job starts

    class Meta:
        model = TrainingJob
        fields = ["id", "name", "description", "status", "status_label", "status_zh", "status_reason", "failure",
                  "experiment", "algorithm", "boot_mode", "engine", "engine_version", "builtin", "code_dir",
                  "boot_file", "boot_command", "local_code_dir", "working_dir", "inputs", "outputs",
                  "hyperparameters", "env", "pool", "flavor", "node_count", "priority", "auto_restart",
                  "restart_count", "max_runtime_hours", "launch_mode", "tags", "run_as_uid", "custom_flavor", "mounts",
                  "persist_logs", "log_path", "notify_channel", "notify_target", "notify_events", "logs_persisted_at",
                  "logs_purged_at", "created_at", "started_at", "finished_at", "duration_seconds"]


class TrainingJobCreateSerializer(serializers.Serializer):
    """Shapes only; the service checks every rule and names the field it refuses."""

    name = serializers.CharField()
    pool = serializers.CharField(help_text="Pool name")
    flavor = serializers.CharField(help_text="Flavor name")
    description = serializers.CharField(required=False, allow_blank=True)
    algorithm = serializers.IntegerField(required=False, allow_null=True)
    experiment = serializers.ChoiceField(choices=["new", "existing", "none"], required=False, default="new")
    experiment_name = serializers.CharField(required=False, allow_blank=True)
    experiment_description = serializers.CharField(required=False, allow_blank=True)
    experiment_id = serializers.IntegerField(required=False, allow_null=True)
    boot_mode = serializers.CharField(required=False, default="preset")
    engine = serializers.CharField(required=False, default="python")
    builtin = serializers.CharField(required=False, allow_blank=True, default="")
    image = serializers.CharField(required=False, allow_blank=True, default="")
    code_dir = serializers.CharField(required=False, allow_blank=True, default="")
    boot_file = serializers.CharField(required=False, allow_blank=True, default="")
    boot_command = serializers.CharField(required=False, allow_blank=True, default="")
    local_code_dir = serializers.CharField(required=False, default="user-job-dir")
    working_dir = serializers.CharField(required=False, allow_blank=True, default="")
    inputs = serializers.JSONField(required=False)
    outputs = serializers.JSONField(required=False)
    hyperparameters = serializers.JSONField(required=False)
    env = serializers.JSONField(required=False)
    node_count = serializers.JSONField(required=False, default=1)
    priority = serializers.JSONField(required=False, default=1)
    auto_restart = serializers.JSONField(required=False, default=0)
    max_runtime_hours = serializers.JSONField(required=False, allow_null=True, default=None)
    launch_mode = serializers.CharField(required=False, default="modelarts")
    tags = serializers.JSONField(required=False)
    run_as_uid = serializers.JSONField(required=False, allow_null=True, default=None)
    custom_flavor = serializers.JSONField(required=False, allow_null=True, default=None)
    mounts = serializers.JSONField(required=False)
    persist_logs = serializers.BooleanField(required=False, default=False)
    log_path = serializers.CharField(required=False, allow_blank=True, default="")
    notify_channel = serializers.CharField(required=False, allow_blank=True, default="")
    notify_target = serializers.CharField(required=False, allow_blank=True, default="")
    notify_events = serializers.JSONField(required=False)


class ExperimentSerializer(serializers.ModelSerializer):
    job_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "name", "description", "job_count", "created_at", "modified_at"]


class AlgorithmSerializer(serializers.ModelSerializer):
    class Meta:
        model = Algorithm
        fields = ["id", "name", "description", "boot_mode", "engine", "engine_version", "image", "builtin", "code_dir",
                  "boot_file", "boot_command", "inputs", "outputs", "hyperparameters", "policies", "resource_types",
                  "multi_card", "distributed", "tags", "created_at", "updated_at"]


class TrainingJobUpdateSerializer(serializers.Serializer):
    """Only these change after creation; any other field is refused by name."""

    description = serializers.CharField(required=False, allow_blank=True)
    priority = serializers.IntegerField(required=False)


class TrainingMetricsSerializer(serializers.Serializer):
    final = serializers.DictField(child=serializers.FloatField(), help_text="The last value of every metric.")
    series = serializers.DictField(child=serializers.ListField(child=MetricPointSerializer()),
                                   help_text="Points of each metric by name, in step order (rank 0).")


class ExperimentJobSerializer(serializers.Serializer):
    job = TrainingJobSerializer()
    final_metrics = serializers.DictField(child=serializers.FloatField())


class ExperimentDetailSerializer(ExperimentSerializer):
    jobs = ExperimentJobSerializer(many=True, read_only=True)

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "jobs"]


class ExperimentUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ExperimentUpdatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()


class ExperimentDeleteSerializer(serializers.Serializer):
    confirm = serializers.CharField(help_text='"DELETE", to confirm that every job of the experiment goes too.')


class ExperimentDeletedSerializer(serializers.Serializer):
    deleted_jobs = serializers.IntegerField(help_text="Training jobs deleted with the experiment.")
