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


class JobCreateSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    labeling_type = serializers.ChoiceField(choices=[(t, LabelType(t).label) for t in LABELING_TYPES])
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
