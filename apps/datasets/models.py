"""Datasets, their samples, labels, annotations, published versions and background operations.

Counters on `Dataset` (sample_count, labeled_count) are caches maintained by the services;
`dataset_counts_refresh` recomputes them from the rows. Published versions are immutable:
their manifest lives in storage and the row only describes it.
"""
from __future__ import annotations

import secrets
import string
import time

from django.conf import settings
from django.db import models

from apps.core.scoping import WorkspaceQuerySet

from .choices import (
    AnnotationSource,
    DataType,
    ErrorCode,
    FormatCategory,
    LabelKind,
    LabelStatus,
    LabelType,
    OperationKind,
    OperationStatus,
    SampleType,
    Shape,
    Usage,
    VersionFormat,
    VersionStatus,
)

_ALPHANUM = string.ascii_letters + string.digits


def new_uid() -> str:
    """18 random letters and digits, the shape of ModelArts dataset and task IDs (spec §2)."""
    return "".join(secrets.choice(_ALPHANUM) for _ in range(18))


def new_sample_id() -> str:
    """32 hex characters, the shape of ModelArts sample IDs: the creation time in milliseconds
    (12 characters), then 80 random bits from the OS (20), which keep ids unguessable.

    Time first, so a new sample's id lands at the end of the primary-key index instead of at a
    random page of it: inserting 10,000 samples into a 100,000-sample table took ~15% less on
    SQLite than with random ids, a gap that grows with the table. (`uuid.uuid4().hex` also cost
    three times as much, once per imported sample.)
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


class Dataset(models.Model):
    """A named collection of samples of one data type and label type, in one workspace.

    `input_location` is the data-source folder imports copy into; `output_location` holds
    versions, thumbnails and labeling output and is never inside the input (spec §4.2).
    """

    uid = models.CharField(max_length=18, unique=True, default=new_uid, editable=False)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    data_type = models.CharField(max_length=16, choices=DataType.choices)
    label_type = models.CharField(max_length=32, choices=LabelType.choices)
    input_location = models.CharField(max_length=1100)
    output_location = models.CharField(max_length=1100)
    table_schema = models.JSONField(default=list, blank=True)  # [{"name": str, "type": ColumnType}]; fixed at creation
    table_has_header = models.BooleanField(default=True)
    team_labeling = models.BooleanField(default=False)
    current_version = models.ForeignKey(
        "DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sample_count = models.PositiveIntegerField(default=0)
    labeled_count = models.PositiveIntegerField(default=0)
    # Increases with every write that can change which samples a filter matches (database
    # triggers, migration 0003, plus attribute writes); cached page counts are keyed on it.
    revision = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="dataset_unique_workspace_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def progress_percent(self) -> float:
        return round(100.0 * self.labeled_count / self.sample_count, 2) if self.sample_count else 0.0

    @property
    def progress_text(self) -> str:
        """Labeling progress as the dataset list shows it: `xx.xx% (labeled/total)`."""
        return f"{self.progress_percent:.2f}% ({self.labeled_count}/{self.sample_count})"

    @property
    def is_image(self) -> bool:
        return self.data_type == DataType.IMAGE

    @property
    def uses_grid(self) -> bool:
        return self.data_type == DataType.IMAGE


class Label(models.Model):
    """One entry of a dataset's label set. Relations (triplets) name their start and end entity labels."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=1024)
    kind = models.CharField(max_length=16, choices=LabelKind.choices, default=LabelKind.CLASS)
    color = models.CharField(max_length=7, default="#3b82f6")  # "#rrggbb"
    attributes = models.JSONField(default=list, blank=True)  # [{"name": str, "values": [str]}]
    category = models.CharField(max_length=256, blank=True)  # speech segmentation label category
    from_label = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    to_label = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="label_unique_dataset_name")]

    def __str__(self) -> str:
        return self.name


class Sample(models.Model):
    """One file (or one line of text) of a dataset.

    `dedupe_key` makes imports idempotent: a file is identified by its storage URI, an inline
    text by the hash of its content. `annotation_version` increases with every annotation
    change so concurrent editors detect lost updates (optimistic concurrency).
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_sample_id, editable=False)
    # No index of its own: the unique (dataset, dedupe_key) and every browser index start with it.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="samples", db_index=False)
    dedupe_key = models.CharField(max_length=64)
    source = models.CharField(max_length=1100, blank=True)  # storage://bucket/key, empty for inline text
    text = models.TextField(blank=True)  # inline content of text samples (`content://` in manifests)
    file_name = models.CharField(max_length=255, blank=True)
    directory = models.CharField(max_length=1024, blank=True)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)  # seconds, audio and video
    format_category = models.CharField(max_length=8, choices=FormatCategory.choices, default=FormatCategory.OTHER)
    sample_type = models.PositiveSmallIntegerField(choices=SampleType.choices, default=SampleType.OTHER)
    thumbnail = models.CharField(max_length=1100, blank=True)  # storage URI of a small JPEG preview
    usage = models.CharField(max_length=10, choices=Usage.choices, default=Usage.NONE, blank=True)
    label_status = models.CharField(max_length=12, choices=LabelStatus.choices, default=LabelStatus.UNLABELED)
    hard = models.BooleanField(default=False)
    hard_coefficient = models.FloatField(null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)  # e.g. video frame @modelarts:* keys, inference-loc
    annotation_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "dedupe_key"], name="sample_unique_dataset_key")]
        # Each browser filter starts from the dataset and the default order, so listing a
        # 100,000-sample dataset walks an index instead of sorting the table.
        indexes = [
            models.Index(fields=["dataset", "-created_at", "-id"], name="sample_ds_created"),
            models.Index(fields=["dataset", "label_status", "-created_at", "-id"], name="sample_ds_status"),
            models.Index(fields=["dataset", "usage", "-created_at", "-id"], name="sample_ds_usage"),
            # Hard examples only (the "hard: yes" filter): a bare boolean condition ("WHERE hard", as
            # Django writes it) matches a partial index but cannot seek into a (dataset, hard, ...)
            # one on SQLite; "hard: no" matches nearly every sample and walks sample_ds_created.
            models.Index(fields=["dataset", "-created_at", "-id"], condition=models.Q(hard=True),
                         name="sample_ds_hard"),
        ]
        # No index on file_name: the name filter is a substring match, which no index serves, and
        # nothing sorts samples by name (migration 0010 dropped the one every insert paid for).

    def __str__(self) -> str:
        return self.file_name or self.text[:40] or self.id

    @property
    def display_name(self) -> str:
        return self.file_name or (self.text[:80] + ("…" if len(self.text) > 80 else ""))

    @property
    def path_display(self) -> str:
        """Path as the free-format list shows it: `/bucket(dir/subdir)`."""
        if not self.source.startswith("storage://"):
            return ""
        bucket, _, key = self.source[len("storage://"):].partition("/")
        folder = key.rpartition("/")[0]
        return f"/{bucket}({folder})"


class SampleAttribute(models.Model):
    """A `name=value` attribute of a sample (auto-grouping writes these); indexed for filtering."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="attributes")
    name = models.CharField(max_length=128)
    value = models.CharField(max_length=256)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sample", "name"], name="sample_attribute_unique_name")]
        indexes = [models.Index(fields=["dataset", "name", "value"], name="sample_attr_lookup")]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class SampleLabel(models.Model):
    """One (sample, label) pair with the sample's usage, status and creation time copied in.

    A read index for the sample browser: "samples carrying label L (and usage U)" becomes a
    range of one narrow index instead of a correlated lookup per sample, which keeps a
    filtered page of a 100,000-sample dataset in milliseconds. Rows are derived data kept
    by database triggers (migration 0003) on every annotation write and every sample
    usage/status change, whichever section or bulk statement makes it.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    # label and sample lead the composite indexes and the unique constraint below, which serve
    # every lookup by either; single-column copies would only slow down each write (migration 0006).
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+", db_index=False)
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="label_index", db_index=False)
    usage = models.CharField(max_length=10, blank=True)
    label_status = models.CharField(max_length=12)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "label"], name="sample_label_unique")]
        indexes = [
            models.Index(fields=["label", "usage", "-created_at", "-sample"], name="sample_label_usage"),
            models.Index(fields=["label", "label_status", "-created_at", "-sample"], name="sample_label_status"),
            models.Index(fields=["label", "-created_at", "-sample"], name="sample_label_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.sample_id}:{self.label_id}"


class Annotation(models.Model):
    """One label on a sample: a class, a shape, a text span, a relation, an audio segment or a transcript.

    Provenance is explicit: `source` says human or model, `annotated_by` names the user or the
    model ("modelarts/active-learning" in manifests), `created_by` links the user when there is
    one, and `confidence` is the model's score. Geometry is in pixels:
    bndbox {xmin, ymin, xmax, ymax}; polygon/line {points: [[x, y], …]}; point {x, y};
    circle {cx, cy, r}; span {start, end} (characters, end exclusive); segment {start, end}
    (seconds). `properties` keeps the manifest `@modelarts:*` keys and user attributes.
    """

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="annotations")
    # Indexed on its own although annotation_ds_annotator starts with it: on SQLite the one-column
    # index keeps a dataset's annotations in id order, the default ordering (migration 0007).
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    # label leads annotation_label_sample (Meta), which serves every lookup by it (migration 0006).
    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations",
                              db_index=False)
    type = models.CharField(max_length=32, choices=LabelType.choices)
    shape = models.CharField(max_length=16, choices=Shape.choices, default=Shape.NONE)
    geometry = models.JSONField(default=dict, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    ref_id = models.CharField(max_length=16, blank=True)  # E1 / R1 for triplets
    source = models.CharField(max_length=8, choices=AnnotationSource.choices, default=AnnotationSource.HUMAN)
    annotated_by = models.CharField(max_length=150, default="human")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    confidence = models.FloatField(null=True, blank=True)
    hard = models.BooleanField(default=False)
    hard_coefficient = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["label", "sample"], name="annotation_label_sample"),
            models.Index(fields=["dataset", "annotated_by", "sample"], name="annotation_ds_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.label.name if self.label_id else ''}"


class DatasetVersion(models.Model):
    """An immutable published snapshot: a manifest in storage plus the parameters it was published with."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=256, blank=True)
    label_type = models.CharField(max_length=32, choices=LabelType.choices)
    format = models.CharField(max_length=16, choices=VersionFormat.choices, default=VersionFormat.DEFAULT)
    split_enabled = models.BooleanField(default=False)
    train_ratio = models.FloatField(null=True, blank=True)
    split_seed = models.BigIntegerField(null=True, blank=True)
    hard_attribute = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.PUBLISHING)
    sample_count = models.PositiveIntegerField(default=0)
    labeled_count = models.PositiveIntegerField(default=0)
    storage_uri = models.CharField(max_length=1100, blank=True)  # the version folder
    manifest_uri = models.CharField(max_length=1100, blank=True)
    stats = models.JSONField(default=dict, blank=True)  # label and usage counts, for comparisons
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="version_unique_dataset_name")]

    def __str__(self) -> str:
        return f"{self.dataset.name} {self.name}"

    @property
    def eval_ratio(self) -> float | None:
        return None if self.train_ratio is None else round(1 - self.train_ratio, 6)


class VersionSample(models.Model):
    """A sample a published version contains, with what the version holds for it (spec §9.1, item 46).

    Written once when the version is published, never updated: `usage` (after the version's
    train/eval split when it has one), `label_status` and `hard` are the sample's values at
    publish, and its labels are `VersionSampleLabel` rows. `created_at` is the sample's upload
    time, copied so the version's pages walk one index in the browser's order. The manifest in
    storage stays the version's full record; `manifest_offset` is where the sample's line starts
    in it (bytes), so one sample's published annotations are read without the rest.

    These rows let the sample browser and the list API page through a version with the same
    filters as the working data, at 100,000-sample scale, by the published values: relabeling
    the working data later does not change them. A sample deleted from the dataset later
    leaves the version's rows too (its file may be gone with it). Rows of versions published
    before migration 0008 were filled from the samples' state at that migration and have no
    manifest offset.
    """

    # No index of its own: version_sample_unique and every version_sample_* index start with it.
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="entries", db_index=False)
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="version_entries")
    usage = models.CharField(max_length=10, choices=Usage.choices, blank=True, default=Usage.NONE)
    label_status = models.CharField(max_length=12, choices=LabelStatus.choices, default=LabelStatus.UNLABELED)
    hard = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    manifest_offset = models.BigIntegerField(null=True, blank=True)

    class Meta:
        # The unique index (version, sample) is also what the "in this version" probe uses; the others
        # mirror the working data's sample_ds_* indexes, with the version in place of the dataset.
        constraints = [models.UniqueConstraint(fields=["version", "sample"], name="version_sample_unique")]
        indexes = [
            models.Index(fields=["version", "-created_at", "-sample"], name="version_sample_created"),
            models.Index(fields=["version", "label_status", "-created_at", "-sample"], name="version_sample_status"),
            models.Index(fields=["version", "usage", "-created_at", "-sample"], name="version_sample_usage"),
            # Partial, like sample_ds_hard: a bare boolean condition ("WHERE hard") cannot seek into
            # a (version, hard, ...) index on SQLite, which then walked the version's every row.
            models.Index(fields=["version", "-created_at", "-sample"], condition=models.Q(hard=True),
                         name="version_sample_hard"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.sample_id}"


class VersionSampleLabel(models.Model):
    """One label a sample carries in a published version, with the sample's published values copied in.

    The version's counterpart of `SampleLabel`: "samples of version V carrying label L (and
    status S)" is one range of one index. Written once at publish, next to the VersionSample
    rows, and never updated. A label deleted from the dataset's label set since takes its rows
    with it (its id no longer names anything the filter could offer); a renamed one shows its
    new name. The version's manifest keeps the names as published.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No index of its own: deleting a label (rare) scans these rows, which every publish would
    # otherwise pay for with one more index to maintain.
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed: deleting samples removes their rows through it.
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")
    usage = models.CharField(max_length=10, blank=True)
    label_status = models.CharField(max_length=12)
    hard = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["version", "label", "-created_at", "-sample"], name="version_label_recent"),
            models.Index(fields=["version", "label", "label_status", "-created_at", "-sample"],
                         name="version_label_status"),
            models.Index(fields=["version", "label", "usage", "-created_at", "-sample"], name="version_label_usage"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.sample_id}:{self.label_id}"


class VersionSampleAnnotator(models.Model):
    """Who annotated a sample in a published version: one row per distinct `annotated_by` among the
    annotations its manifest line holds. Written once at publish, never updated, so the version
    view's annotator filter and its list of annotators read the version, not the working data.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed: deleting samples removes their rows through it.
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")
    annotated_by = models.CharField(max_length=150)

    class Meta:
        indexes = [models.Index(fields=["version", "annotated_by", "sample"], name="version_annotator")]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.sample_id}:{self.annotated_by}"


class VersionSampleAttribute(models.Model):
    """A `name=value` attribute a sample had when a version was published (the version's copy of
    `SampleAttribute`). Written once at publish, never updated: auto-grouping the working data later
    does not change what the version view's attribute filter finds.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed: deleting samples removes their rows through it.
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=128)
    value = models.CharField(max_length=256)

    class Meta:
        indexes = [models.Index(fields=["version", "name", "value", "sample"], name="version_attribute")]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.sample_id}:{self.name}={self.value}"


class OperationQuerySet(models.QuerySet):
    def visible_to(self, user):
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(dataset__workspace__memberships__user=user)


class DatasetOperation(models.Model):
    """One background run (import, sync, publish, export, analysis, grouping, processing) and its outcome.

    The Celery task only carries the id; state lives here. `params` are what the user asked
    for, `result` what the run produced (counts, chart data, paths).
    """

    uid = models.CharField(max_length=18, unique=True, default=new_uid, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="operations")
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)  # why a failed run failed, in words
    stop_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["dataset", "kind", "-created_at"], name="operation_ds_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.uid}"

    @property
    def run_time(self) -> str:
        """hh:mm:ss between start and finish (or now while running), as the task history shows it."""
        from django.utils import timezone

        if not self.started_at:
            return "00:00:00"
        seconds = int(((self.finished_at or timezone.now()) - self.started_at).total_seconds())
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == OperationStatus.SUCCEEDED else 0
        return min(100, int(100 * self.progress_done / self.progress_total))

    @property
    def is_finished(self) -> bool:
        return self.status in {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.STOPPED}

    @property
    def summary(self) -> str:
        """A finished import in one line: "Imported 16 samples (3 labeled), 2 errors, 5 already present"."""
        result = self.result or {}
        if self.kind != OperationKind.IMPORT or "created" not in result:
            return ""
        parts = [f"Imported {result['created']} sample{'s' if result['created'] != 1 else ''}"
                 + (f" ({result['labeled']} labeled)" if "labeled" in result else "")]
        parts.append(f"{self.error_count} error{'s' if self.error_count != 1 else ''}")
        if result.get("existing"):
            parts.append(f"{result['existing']} already present")
        if result.get("filtered"):
            parts.append(f"{result['filtered']} filtered out")
        return ", ".join(parts)


class OperationError(models.Model):
    """One rejected item of an operation: which file, which line, which rule, and the message."""

    operation = models.ForeignKey(DatasetOperation, on_delete=models.CASCADE, related_name="errors")
    item = models.CharField(max_length=1100)
    line = models.PositiveIntegerField(null=True, blank=True)
    code = models.CharField(max_length=32, choices=ErrorCode.choices)
    message = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        where = f"{self.item}:{self.line}" if self.line else self.item
        return f"{where} {self.code}: {self.message}"
