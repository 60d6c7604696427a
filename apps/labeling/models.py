"""Labeling jobs and their per-job label settings.

A job labels one dataset: its samples, labels and annotations are the dataset's own rows
(`apps.datasets`), so several jobs over one dataset see the same work and an export of the
dataset always carries what labelers saved. The job adds what only labeling needs: the
type-specific options, the labeling guide, per-label shortcut keys and which labels are
protected from deletion.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.scoping import WorkspaceQuerySet
from apps.datasets.choices import LabelType

from .choices import SCENE_OF_TYPE, SpeechLabelMode


class LabelingJob(models.Model):
    """One labeling job over a dataset whose label type equals `labeling_type`.

    `tool_mode` is empty until the first annotation of a segmentation job fixes it (spec §6,
    item 34). `team_enabled` is only ever true for the team-capable types (item 7).
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.PROTECT, related_name="labeling_jobs")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="labeling_jobs")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    labeling_type = models.CharField(max_length=32, choices=LabelType.choices)
    team_enabled = models.BooleanField(default=False)
    speech_content_enabled = models.BooleanField(default=False)  # speech segmentation: content per segment
    speech_label_mode = models.CharField(max_length=8, choices=SpeechLabelMode.choices, default=SpeechLabelMode.SINGLE)
    tool_mode = models.CharField(max_length=16, blank=True)
    guide = models.TextField(blank=True)  # the labeling guide the owner writes for labelers (plain text)
    remarks = models.CharField(max_length=256, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="labeling_job_unique_workspace_name"),
            models.CheckConstraint(
                condition=~models.Q(team_enabled=True, labeling_type__in=[
                    LabelType.IMAGE_SEGMENTATION, LabelType.SOUND_CLASSIFICATION, LabelType.SPEECH_CONTENT,
                    LabelType.VIDEO]),
                name="labeling_job_team_only_for_team_types"),
        ]
        indexes = [models.Index(fields=["workspace", "labeling_type", "-created_at"], name="labeling_job_ws_type")]

    def __str__(self) -> str:
        return self.name

    @property
    def scene(self) -> str:
        return SCENE_OF_TYPE.get(self.labeling_type, "")


class LabelSetting(models.Model):
    """What one job adds to one dataset label: a shortcut key (sound classification, item 40)
    and whether the label may be deleted (triplet entity labels made with the job, item 39)."""

    job = models.ForeignKey(LabelingJob, on_delete=models.CASCADE, related_name="label_settings")
    label = models.ForeignKey("datasets.Label", on_delete=models.CASCADE, related_name="+")
    shortcut = models.CharField(max_length=1, blank=True)
    protected = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "label"], name="label_setting_unique_job_label"),
            models.UniqueConstraint(fields=["job", "shortcut"], condition=~models.Q(shortcut=""),
                                    name="label_setting_unique_job_shortcut"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.label_id}"
