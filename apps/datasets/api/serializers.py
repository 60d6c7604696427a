"""REST shapes of the Data section."""
from __future__ import annotations

from rest_framework import serializers

from ..choices import ExportFormat, ExportMethod, ImportFormat, VersionFormat
from ..models import Annotation, Dataset, DatasetOperation, DatasetVersion, Label, OperationError, Sample


class DatasetSerializer(serializers.ModelSerializer):
    current_version = serializers.CharField(source="current_version.name", default=None, read_only=True, allow_null=True)
    progress = serializers.CharField(source="progress_text", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "uid", "workspace", "name", "description", "data_type", "label_type", "input_location",
                  "output_location", "table_schema", "table_has_header", "current_version", "sample_count",
                  "labeled_count", "progress", "created_at", "updated_at"]
        read_only_fields = fields


class DatasetCreateSerializer(serializers.Serializer):
    workspace = serializers.IntegerField(required=False)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    data_type = serializers.CharField()
    label_type = serializers.CharField()
    input_location = serializers.CharField()
    output_location = serializers.CharField()
    labeled = serializers.BooleanField(required=False, default=False)
    import_format = serializers.CharField(required=False, allow_blank=True, default="")
    table_schema = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    table_has_header = serializers.BooleanField(required=False, default=True)
    labels = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "kind", "color", "attributes", "category", "from_label", "to_label"]
        read_only_fields = ["id", "from_label", "to_label"]


class LabelWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=2000)
    color = serializers.CharField(required=False, allow_blank=True, default="")
    attributes = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    kind = serializers.CharField(required=False, default="class")
    from_label = serializers.IntegerField(required=False)
    to_label = serializers.IntegerField(required=False)


class AnnotationSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name", default="", read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "label", "type", "shape", "geometry", "properties", "ref_id", "source", "annotated_by",
                  "confidence", "hard", "hard_coefficient", "created_at", "updated_at"]


class SampleSerializer(serializers.ModelSerializer):
    labels = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = ["id", "source", "text", "file_name", "directory", "size", "width", "height", "duration",
                  "format_category", "sample_type", "usage", "label_status", "hard", "hard_coefficient",
                  "annotation_version", "labels", "created_at"]

    def get_labels(self, sample) -> list[str]:
        names = []
        for ann in sample.annotations.all():
            if ann.label_id and ann.label.name not in names:
                names.append(ann.label.name)
        return names


LIST_FIELDS = [f for f in SampleSerializer.Meta.fields if f not in ("labels", "created_at")]
_DATETIME = serializers.DateTimeField()


def sample_list_data(samples) -> list[dict]:
    """What SampleSerializer(many=True) returns, built directly: the list endpoint is the hot path
    (a page of 30 at 100,000 samples), and ModelSerializer costs more than the queries.

    Samples of a version's page (`published` set) report the usage, label status, hard flag and
    labels the version holds for them; `annotation_version` and the rest are the sample's own."""
    from collections import defaultdict

    samples = list(samples)
    labels: dict[str, list[str]] = defaultdict(list)
    # A version's page (selectors.VersionSamples) carries its published values; the others read annotations.
    live = [s.pk for s in samples if getattr(s, "published", None) is None]
    rows = (Annotation.objects.filter(sample_id__in=live, label__isnull=False)
            .order_by("id").values_list("sample_id", "label__name")) if live else ()
    for sample_id, name in rows:
        if name not in labels[sample_id]:
            labels[sample_id].append(name)
    out = []
    for sample in samples:
        row = {name: getattr(sample, name) for name in LIST_FIELDS}
        published = getattr(sample, "published", None)
        if published is not None:
            row.update(usage=published.usage, label_status=published.label_status, hard=published.hard)
            labels[sample.pk] = [label["name"] for label in published.labels]
        row["labels"] = labels.get(sample.pk, [])
        row["created_at"] = _DATETIME.to_representation(sample.created_at)
        out.append(row)
    return out


class SampleDetailSerializer(SampleSerializer):
    annotations = AnnotationSerializer(many=True, read_only=True)
    attributes = serializers.SerializerMethodField()

    class Meta(SampleSerializer.Meta):
        fields = SampleSerializer.Meta.fields + ["properties", "sha256", "thumbnail", "annotations", "attributes"]

    def get_attributes(self, sample) -> dict:
        return {a.name: a.value for a in sample.attributes.all()}


class AnnotationsReplaceSerializer(serializers.Serializer):
    expected_version = serializers.IntegerField(min_value=0)
    annotations = serializers.ListField(child=serializers.DictField())


class ImportSerializer(serializers.Serializer):
    path = serializers.CharField()
    format = serializers.ChoiceField(choices=ImportFormat.choices, default=ImportFormat.RAW)
    labeled = serializers.BooleanField(required=False, default=True)
    labels = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    hard_only = serializers.BooleanField(required=False, default=False)
    separator = serializers.CharField(required=False, trim_whitespace=False)
    label_separator = serializers.CharField(required=False, trim_whitespace=False)


class PublishSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    split_enabled = serializers.BooleanField(required=False, default=False)
    train_ratio = serializers.FloatField(required=False, allow_null=True, default=None)
    hard_attribute = serializers.BooleanField(required=False, default=False)
    format = serializers.ChoiceField(choices=VersionFormat.choices, default=VersionFormat.DEFAULT)


class ExportSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=ExportMethod.choices, default=ExportMethod.STORAGE)
    format = serializers.ChoiceField(choices=ExportFormat.choices, default=ExportFormat.DEFAULT)
    path = serializers.CharField()
    filter = serializers.DictField(required=False, default=dict)
    name = serializers.CharField(required=False, allow_blank=True, default="")
    output_path = serializers.CharField(required=False, allow_blank=True, default="")


class AutoGroupSerializer(serializers.Serializer):
    groups = serializers.IntegerField()
    handling = serializers.CharField(default="attribute")
    attribute = serializers.CharField(required=False, allow_blank=True, default="")
    result_path = serializers.CharField(required=False, allow_blank=True, default="")
    features = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ProcessingSerializer(serializers.Serializer):
    operation = serializers.CharField()
    threshold = serializers.IntegerField(required=False, allow_null=True, default=None)
    operators = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    copies = serializers.IntegerField(required=False, default=1)


class VersionSerializer(serializers.ModelSerializer):
    is_current = serializers.SerializerMethodField()
    eval_ratio = serializers.FloatField(read_only=True)

    class Meta:
        model = DatasetVersion
        fields = ["id", "name", "description", "label_type", "format", "split_enabled", "train_ratio", "eval_ratio",
                  "split_seed", "hard_attribute", "status", "is_current", "sample_count", "labeled_count",
                  "storage_uri", "manifest_uri", "stats", "created_at", "published_at"]

    def get_is_current(self, version) -> bool:
        return version.dataset.current_version_id == version.pk


class OperationSerializer(serializers.ModelSerializer):
    version = serializers.CharField(source="version.name", default=None, read_only=True)
    run_time = serializers.CharField(read_only=True)

    class Meta:
        model = DatasetOperation
        fields = ["id", "uid", "kind", "status", "version", "params", "result", "progress_done", "progress_total",
                  "error_count", "message", "created_at", "started_at", "finished_at", "run_time"]


class OperationErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = OperationError
        fields = ["item", "line", "code", "message"]


class AnalysisFigureSerializer(serializers.Serializer):
    metric = serializers.CharField()
    title = serializers.CharField()
    element_id = serializers.CharField(help_text="The DOM id the console's chart uses.")
    figure = serializers.DictField(help_text="A Plotly figure: one histogram per version with results.")


class VersionAnalysisSerializer(serializers.Serializer):
    figures = AnalysisFigureSerializer(many=True, help_text="One per chosen metric that has data.")
