"""Request and response shapes of the labeling JSON API (also its OpenAPI schema)."""
from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from apps.datasets.choices import LabelKind, LabelType, SampleType

from .. import selectors
from ..choices import LABELING_TYPES, SpeechLabelMode
from ..models import LabelingJob


class LabelSpecSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, trim_whitespace=False)
    color = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=LabelKind.choices, required=False)
    attributes = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    category = serializers.CharField(required=False, allow_blank=True, default="")
    shortcut = serializers.CharField(required=False, allow_blank=True, default="", max_length=1)
    # Relations: names of the start and end entity labels.
    start = serializers.CharField(required=False, allow_blank=True, source="from")
    end = serializers.CharField(required=False, allow_blank=True, source="to")


# The label types a labeling job can have (LabelType less the dataset-only ones); named in the schema.
LABELING_TYPE_CHOICES = [(t, LabelType(t).label) for t in LABELING_TYPES]


class JobCreateSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    labeling_type = serializers.ChoiceField(choices=LABELING_TYPE_CHOICES)
    dataset = serializers.IntegerField()
    labels = LabelSpecSerializer(many=True, required=False, default=list)
    team_enabled = serializers.BooleanField(required=False, default=False)
    speech_content_enabled = serializers.BooleanField(required=False, default=False)
    speech_label_mode = serializers.ChoiceField(choices=SpeechLabelMode.choices, required=False,
                                                default=SpeechLabelMode.SINGLE)
    guide = serializers.CharField(required=False, allow_blank=True, default="")


class JobUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    guide = serializers.CharField(required=False, allow_blank=True)
    remarks = serializers.CharField(required=False, allow_blank=True)


class JobSerializer(serializers.ModelSerializer):
    dataset_name = serializers.CharField(source="dataset.name")
    labeling_type_display = serializers.CharField(source="get_labeling_type_display")
    created_by = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = LabelingJob
        fields = ["id", "name", "description", "labeling_type", "labeling_type_display", "dataset", "dataset_name",
                  "team_enabled", "speech_content_enabled", "speech_label_mode", "tool_mode", "guide", "remarks",
                  "created_by", "created_at", "progress", "url"]

    def get_created_by(self, job) -> str:
        return job.created_by.get_username() if job.created_by else ""

    def get_progress(self, job) -> dict:
        return selectors.progress(job)

    def get_url(self, job) -> str:
        return reverse("labeling:detail", args=[job.pk])


class AnnotationsSaveSerializer(serializers.Serializer):
    version = serializers.JSONField(help_text="The sample's annotation version the edits started from.")
    annotations = serializers.JSONField(help_text="The sample's complete list of annotations after the edits.")


class FrameSaveSerializer(AnnotationsSaveSerializer):
    time = serializers.JSONField(help_text="Seconds from the start of the video.")
    image = serializers.CharField(required=False, allow_blank=True,
                                  help_text="The paused frame as a base64 JPEG (data: URL allowed); first save only.")


class BatchSaveSerializer(serializers.Serializer):
    items = serializers.JSONField(help_text='[{"sample": id, "version": int, "annotations": [...]}, …]')


class LabelApplySerializer(serializers.Serializer):
    samples = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    labels = serializers.ListField(child=serializers.CharField(), allow_empty=False,
                                   help_text="Label names (case-sensitive).")


def sample_payload(job, sample, request=None, *, annotations: bool = True) -> dict:
    """A sample as the workbench and the CLI receive it."""
    base = reverse("labeling:sample_media", args=[job.pk, sample.pk])
    out = {
        "id": sample.pk,
        "job": job.pk,
        "file_name": sample.file_name,
        "kind": selectors.sample_kind(job),
        "status": sample.label_status,
        "version": sample.annotation_version,
        "width": sample.width,
        "height": sample.height,
        "duration": sample.duration,
        "text": sample.text if not sample.source else "",
        "media_url": base if sample.source else "",
        "preview_url": f"{base}?preview=1" if sample.source and sample.sample_type == SampleType.IMAGE else "",
        "peaks_url": reverse("labeling-api:sample-peaks", args=[job.pk, sample.pk])
        if sample.sample_type == SampleType.AUDIO else "",
        "updated_at": sample.updated_at.isoformat(),
    }
    if annotations:
        out["annotations"] = selectors.annotations_of(sample)
        # A sample without annotations has no last changer: spare the query (most "next" samples).
        out["last_change"] = selectors.last_change(sample) if out["annotations"] else {
            "by": "", "at": sample.updated_at.isoformat()}
        if sample.sample_type == SampleType.VIDEO:
            out["frames"] = selectors.frames_of(sample)
    return out


# Response shapes. The views answer plain dicts built by the selectors and services; these
# serializers describe those dicts for the OpenAPI schema (the views do not run them).

class LabelStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    kind = serializers.CharField(help_text="The label kind (see LabelKind).")
    category = serializers.CharField()
    attributes = serializers.ListField(child=serializers.DictField())
    samples = serializers.IntegerField(help_text="Samples carrying this label.")
    from_label = serializers.IntegerField(allow_null=True, help_text="Relations: the start entity label.")
    to_label = serializers.IntegerField(allow_null=True, help_text="Relations: the end entity label.")
    shortcut = serializers.CharField()
    protected = serializers.BooleanField()


class LabelListSerializer(serializers.Serializer):
    labels = LabelStatsSerializer(many=True)


class LabelUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    color = serializers.CharField(required=False, allow_blank=True)
    attributes = serializers.ListField(child=serializers.DictField(), required=False)
    shortcut = serializers.CharField(required=False, allow_blank=True, max_length=1)


class LabelBatchDeleteSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)
    with_objects = serializers.BooleanField(required=False, default=False,
                                            help_text="Also delete the samples that carry only these labels.")


class LabelsDeletedSerializer(serializers.Serializer):
    labels = serializers.IntegerField(help_text="Labels deleted.")
    samples_deleted = serializers.IntegerField()


class JobCopySerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, help_text="Default: <name>-copy-xxxx.")
    description = serializers.CharField(required=False, allow_blank=True)


class JobDeleteSerializer(serializers.Serializer):
    confirm = serializers.CharField(required=False, allow_blank=True)
    delete_annotations = serializers.BooleanField(required=False, default=False)


class OperationStartedSerializer(serializers.Serializer):
    operation = serializers.IntegerField(help_text="The operation id.")
    status = serializers.CharField()


class WorkbenchAnnotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(allow_null=True)
    label_id = serializers.IntegerField(allow_null=True)
    shape = serializers.CharField()
    geometry = serializers.JSONField()
    ref_id = serializers.CharField()
    source = serializers.CharField()
    annotated_by = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    style = serializers.CharField(required=False, help_text='"dashed" for dashed lines; absent otherwise.')
    content = serializers.JSONField(required=False, help_text="Speech content, when the job records it.")
    attributes = serializers.DictField(help_text="The annotation's attribute values by name.")


class LastChangeSerializer(serializers.Serializer):
    by = serializers.CharField(help_text="Who saved last (empty when nobody did).")
    at = serializers.DateTimeField()


class FrameSerializer(serializers.Serializer):
    id = serializers.CharField()
    time = serializers.FloatField(allow_null=True, help_text="Seconds from the start of the video.")
    version = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    annotations = WorkbenchAnnotationSerializer(many=True)


class FrameListSerializer(serializers.Serializer):
    frames = FrameSerializer(many=True)


class WorkbenchSampleSerializer(serializers.Serializer):
    """`sample_payload`: lists leave out `annotations`, `last_change` and `frames`."""
    id = serializers.CharField()
    job = serializers.IntegerField()
    file_name = serializers.CharField()
    kind = serializers.CharField(help_text="The workbench scene of the job.")
    status = serializers.CharField(help_text="unlabeled, labeled or to_confirm.")
    version = serializers.IntegerField(help_text="The annotation version; send it back when saving.")
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    duration = serializers.FloatField(allow_null=True)
    text = serializers.CharField()
    media_url = serializers.CharField()
    preview_url = serializers.CharField()
    peaks_url = serializers.CharField()
    updated_at = serializers.DateTimeField()
    annotations = WorkbenchAnnotationSerializer(many=True, required=False)
    last_change = LastChangeSerializer(required=False)
    frames = FrameSerializer(many=True, required=False, help_text="Videos only.")


class SaveResultSerializer(serializers.Serializer):
    sample = serializers.CharField()
    version = serializers.IntegerField(help_text="The new annotation version.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    deleted = serializers.IntegerField()
    status = serializers.CharField()


class AnnotationsSavedSerializer(SaveResultSerializer):
    annotations = WorkbenchAnnotationSerializer(many=True)


class BatchSavedSerializer(serializers.Serializer):
    items = SaveResultSerializer(many=True)


class FrameSavedSerializer(SaveResultSerializer):
    frame = serializers.CharField()
    time = serializers.FloatField()
    removed = serializers.BooleanField(required=False, help_text="True when saving no annotations removed the frame.")
    frames = FrameSerializer(many=True)


class ConflictSerializer(serializers.Serializer):
    error = serializers.DictField()
    current = serializers.JSONField(allow_null=True, help_text="The newer state to merge with.")


class ChangedSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="Samples changed.")


class PeaksSerializer(serializers.Serializer):
    duration = serializers.FloatField()
    peaks = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                  help_text="[min, max] per column, −1…1.")


class SampleDeleteSerializer(serializers.Serializer):
    samples = serializers.ListField(child=serializers.CharField())
    delete_source = serializers.BooleanField(required=False, default=False)
    confirm = serializers.CharField(required=False, allow_blank=True, help_text='"DELETE" with delete_source.')


class FileFailureSerializer(serializers.Serializer):
    file = serializers.CharField()
    message = serializers.CharField()


class SamplesDeletedSerializer(serializers.Serializer):
    deleted = serializers.IntegerField()
    frames = serializers.IntegerField()
    files_deleted = serializers.IntegerField()
    files_failed = FileFailureSerializer(many=True)


class DataAddSerializer(serializers.Serializer):
    labeled = serializers.BooleanField()
    path = serializers.CharField(required=False, allow_blank=True, help_text="storage://… to import from.")
    files = serializers.ListField(child=serializers.FileField(), required=False, help_text="Multipart uploads.")
    format = serializers.CharField(required=False, allow_blank=True, help_text="The import format.")
    upload_path = serializers.CharField(required=False, allow_blank=True,
                                        help_text="storage://… folder for uploaded files (default: the input location).")


class ImportRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uid = serializers.CharField()
    created_at = serializers.DateTimeField()
    mode = serializers.CharField()
    path = serializers.CharField()
    labeled = serializers.BooleanField(allow_null=True)
    total = serializers.IntegerField()
    imported = serializers.IntegerField()
    imported_labeled = serializers.IntegerField(allow_null=True, help_text="Imported samples that came with "
                                                "annotations; null for imports older than this count.")
    imported_annotations = serializers.IntegerField()
    status = serializers.CharField()
    status_display = serializers.CharField()


class ImportHistorySerializer(serializers.Serializer):
    results = ImportRowSerializer(many=True)


class DataAddedSerializer(serializers.Serializer):
    operation = serializers.CharField(help_text="The operation uid.")
    id = serializers.IntegerField()
    status = serializers.CharField()
