"""Write operations of the Data section. Views, the API and tasks all call these.

Every service is keyword-only, checks the `dataset:*` permission, runs in one
transaction and writes an audit entry. Long work is started as a `DatasetOperation`
(see `operations.py`) and enqueued after commit.
"""
from __future__ import annotations

import itertools

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from apps.core.paths import StoragePath, parse
from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add, publish_on_commit
from apps.core.storage import get_storage

from .choices import (
    DATA_TYPE_OF_LABEL_TYPE,
    FORMATS_BY_LABEL_TYPE,
    LABELED_AT_CREATE,
    ColumnType,
    DataType,
    ImportFormat,
    LabelKind,
    LabelStatus,
    LabelType,
    OperationKind,
    OperationStatus,
    SampleType,
    VersionStatus,
)
from .models import Annotation, Dataset, DatasetOperation, DatasetVersion, Label, Sample
from .validators import (
    validate_color,
    validate_dataset_name,
    validate_description,
    validate_label_name,
    validate_output_location,
)

# A fixed, distinguishable palette: labels created without a colour take the next one.
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c",
           "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075"]
TABLE_SUBFOLDERS = ("annotation", "data", "logs", "temp")


def palette_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _validate_schema(schema) -> list[dict]:
    if not isinstance(schema, list) or not schema:
        raise ValidationError({"table_schema": ["A table dataset needs a schema of at least one column."]})
    cleaned = []
    for position, column in enumerate(schema, start=1):
        name = str((column or {}).get("name", "")).strip()
        kind = (column or {}).get("type")
        if not name:
            raise ValidationError({"table_schema": [f"Column {position} has no name."]})
        if kind not in ColumnType.values:
            raise ValidationError({"table_schema": [
                f'Column {position} ("{name}") has type "{kind}"; choose one of {", ".join(ColumnType.values)}.']})
        cleaned.append({"name": name, "type": kind})
    return cleaned


@transaction.atomic
def dataset_create(
    *,
    user,
    workspace,
    name: str,
    data_type: str,
    label_type: str,
    input_location: StoragePath,
    output_location: StoragePath,
    description: str = "",
    labeled: bool = False,
    import_format: str = "",
    table_schema: list[dict] | None = None,
    table_has_header: bool = True,
    labels: list[dict] | None = None,
    team_labeling: bool = False,
) -> Dataset:
    """Create a dataset, its folders and label set, then import what the input folder holds.

    A labeled import is offered only for the label types of spec item 6 and needs a format.
    Table datasets get a schema (detected from the input CSVs when none is given) and the
    annotation/data/logs/temp folders under the output location.
    """
    require_perm(user, workspace, "dataset:create")
    errors: dict[str, list[str]] = {}
    for field, check, value in (("name", validate_dataset_name, name), ("description", validate_description,
                                                                          description)):
        try:
            check(value)
        except ValidationError as exc:
            errors[field] = exc.messages
    if data_type not in DataType.values:
        errors["data_type"] = [f'"{data_type}" is not a data type.']
    elif DATA_TYPE_OF_LABEL_TYPE.get(label_type) != data_type:
        errors["label_type"] = [f'"{label_type}" is not a label type of {data_type} datasets.']
    try:
        validate_output_location(output_location, input_location)
    except ValidationError as exc:
        errors["output_location"] = exc.messages
    if labeled:
        if label_type not in LABELED_AT_CREATE:
            errors["labeled"] = ["Labeled data can be imported at creation only for image classification, object "
                                 "detection, image segmentation, sound classification and text classification."]
        elif not import_format:
            errors["import_format"] = ["Choose the annotation format of the labeled data."]
        elif import_format not in FORMATS_BY_LABEL_TYPE.get(label_type, []):
            errors["import_format"] = [f'"{import_format}" is not a format for {label_type} datasets.']
    if not errors and Dataset.objects.filter(workspace=workspace, name=name).exists():
        errors["name"] = [f'A dataset named "{name}" already exists in this workspace.']
    schema: list[dict] = []
    if data_type == DataType.TABLE and not errors:
        if table_schema:
            schema = _validate_schema(table_schema)
        else:
            from .formats.table import table_schema_detect

            try:
                schema = table_schema_detect(input_location, has_header=table_has_header)
            except ValidationError as exc:
                errors["table_schema"] = exc.messages
    if errors:
        raise ValidationError(errors)

    storage = get_storage()
    storage.mkdir(input_location)
    storage.mkdir(output_location)
    if data_type == DataType.TABLE:
        for sub in TABLE_SUBFOLDERS:
            storage.mkdir(output_location.child(sub))
    dataset = Dataset.objects.create(
        workspace=workspace, name=name, description=description, data_type=data_type, label_type=label_type,
        input_location=input_location.uri, output_location=output_location.uri, table_schema=schema,
        table_has_header=table_has_header, team_labeling=team_labeling, created_by=user,
    )
    for position, spec in enumerate(labels or []):
        label_create(user=user, dataset=dataset, name=spec["name"], color=spec.get("color") or "",
                     attributes=spec.get("attributes") or [], kind=spec.get("kind", LabelKind.CLASS))
    audit_record(actor=user, action="dataset:create", obj=dataset,
                 detail={"data_type": data_type, "label_type": label_type})
    event_add(obj=dataset, message=f"Dataset created by {user.get_username()}.")
    if any(True for _ in itertools.islice(storage.walk(input_location), 1)):
        fmt = import_format if labeled else (ImportFormat.TABLE_CSV if data_type == DataType.TABLE
                                             else ImportFormat.RAW)
        operation_start(user=user, dataset=dataset, kind=OperationKind.IMPORT,
                        params={"path": input_location.uri, "format": fmt, "labeled": labeled})
    return dataset


@transaction.atomic
def dataset_update(*, user, dataset: Dataset, name: str, description: str) -> Dataset:
    """Rename or re-describe a dataset (the schema and types are fixed after creation)."""
    require_perm(user, dataset.workspace, "dataset:update")
    errors = {}
    try:
        validate_dataset_name(name)
    except ValidationError as exc:
        errors["name"] = exc.messages
    try:
        validate_description(description)
    except ValidationError as exc:
        errors["description"] = exc.messages
    if not errors and Dataset.objects.filter(workspace=dataset.workspace, name=name).exclude(pk=dataset.pk).exists():
        errors["name"] = [f'A dataset named "{name}" already exists in this workspace.']
    if errors:
        raise ValidationError(errors)
    changes = {k: v for k, v in (("name", name), ("description", description)) if getattr(dataset, k) != v}
    dataset.name, dataset.description = name, description
    dataset.save(update_fields=["name", "description", "updated_at"])
    audit_record(actor=user, action="dataset:update", obj=dataset, detail={"changed": sorted(changes)})
    return dataset


@transaction.atomic
def dataset_delete(*, user, dataset: Dataset) -> None:
    """Delete the dataset's records. Files in storage (input, output, versions) are left in place."""
    require_perm(user, dataset.workspace, "dataset:delete")
    audit_record(actor=user, action="dataset:delete", obj=dataset, detail={"samples": dataset.sample_count})
    dataset.delete()


# ---- labels ---------------------------------------------------------------------------------------------------


def _label_quota_check(dataset: Dataset, adding: int = 1) -> None:
    limit = settings.ATELIER_DATASET_MAX_LABELS
    if Label.objects.filter(dataset=dataset).count() + adding > limit:
        raise ValidationError({"name": [f"The dataset already has the most labels allowed ({limit})."]})


@transaction.atomic
def label_create(*, user, dataset: Dataset, name: str, color: str = "", attributes: list | None = None,
                 kind: str = LabelKind.CLASS, from_label: Label | None = None, to_label: Label | None = None,
                 category: str = "") -> Label:
    """Add a label to the dataset's set; a relation needs two entity labels to exist."""
    require_perm(user, dataset.workspace, "dataset:update")
    name = (name or "").strip()
    speech = dataset.label_type == LabelType.SPEECH_SEGMENTATION
    errors = {}
    try:
        validate_label_name(name, speech=speech)
    except ValidationError as exc:
        errors["name"] = exc.messages
    if color:
        try:
            color = validate_color(color)
        except ValidationError as exc:
            errors["color"] = exc.messages
    if kind not in LabelKind.values:
        errors["kind"] = [f'"{kind}" is not a label kind.']
    if kind == LabelKind.RELATION:
        entities = Label.objects.filter(dataset=dataset, kind=LabelKind.ENTITY).count()
        if entities < 2:
            errors["kind"] = ["Add at least two entity labels before a relation label."]
        elif from_label is None or to_label is None:
            errors["kind"] = ["A relation label names its start and end entity labels."]
    if not errors and Label.objects.filter(dataset=dataset, name=name).exists():
        errors["name"] = [f'The label "{name}" already exists in this dataset.']
    if errors:
        raise ValidationError(errors)
    _label_quota_check(dataset)
    label = Label.objects.create(
        dataset=dataset, name=name, kind=kind, color=color or palette_color(dataset.labels.count()),
        attributes=_clean_attributes(attributes or []), category=category, from_label=from_label, to_label=to_label,
    )
    audit_record(actor=user, action="dataset:label_create", obj=dataset, detail={"label": name})
    return label


def _clean_attributes(attributes: list) -> list[dict]:
    """Per-label attributes: [{"name": str, "values": [str]}]; names unique and non-empty."""
    cleaned, seen = [], set()
    for item in attributes:
        name = str((item or {}).get("name", "")).strip()
        if not name:
            raise ValidationError({"attributes": ["Every label attribute needs a name."]})
        if name in seen:
            raise ValidationError({"attributes": [f'The attribute "{name}" is listed twice.']})
        seen.add(name)
        values = [str(v).strip() for v in (item.get("values") or []) if str(v).strip()]
        cleaned.append({"name": name, "values": values})
    return cleaned


@transaction.atomic
def label_update(*, user, label: Label, name: str, color: str, attributes: list | None = None) -> Label:
    """Rename or recolour a label, or change its attributes; annotations follow the label row."""
    dataset = label.dataset
    require_perm(user, dataset.workspace, "dataset:update")
    name = (name or "").strip()
    errors = {}
    try:
        validate_label_name(name, speech=dataset.label_type == LabelType.SPEECH_SEGMENTATION)
    except ValidationError as exc:
        errors["name"] = exc.messages
    try:
        color = validate_color(color)
    except ValidationError as exc:
        errors["color"] = exc.messages
    if not errors and Label.objects.filter(dataset=dataset, name=name).exclude(pk=label.pk).exists():
        errors["name"] = [f'The label "{name}" already exists in this dataset.']
    if errors:
        raise ValidationError(errors)
    label.name, label.color = name, color
    if attributes is not None:
        label.attributes = _clean_attributes(attributes)
    label.save()
    audit_record(actor=user, action="dataset:label_update", obj=dataset, detail={"label": name})
    return label


@transaction.atomic
def label_delete(*, user, label: Label) -> None:
    """Remove a label and its annotations; samples left without annotations become unlabeled."""
    dataset = label.dataset
    require_perm(user, dataset.workspace, "dataset:update")
    sample_ids = list(Annotation.objects.filter(label=label).values_list("sample_id", flat=True).distinct())
    label.delete()
    _samples_relabel_status(sample_ids)
    Sample.objects.filter(pk__in=sample_ids).update(annotation_version=F("annotation_version") + 1)
    dataset_counts_refresh(dataset=dataset)
    audit_record(actor=user, action="dataset:label_delete", obj=dataset, detail={"label": label.name})


def _samples_relabel_status(sample_ids: list[str]) -> None:
    """Samples in `sample_ids` without any annotation left go back to unlabeled."""
    for start in range(0, len(sample_ids), 500):
        chunk = sample_ids[start:start + 500]
        Sample.objects.filter(pk__in=chunk).exclude(annotations__isnull=False).update(
            label_status=LabelStatus.UNLABELED)


def dataset_revision_bump(dataset_id: int) -> None:
    """Mark the dataset's samples as changed, so cached filter counts are not reused."""
    Dataset.objects.filter(pk=dataset_id).update(revision=F("revision") + 1)


def dataset_counts_refresh(*, dataset: Dataset) -> Dataset:
    """Recompute the cached sample and labeled counts from the rows (bumping the revision) and tell watchers."""
    counts = Sample.objects.filter(dataset=dataset).aggregate(
        total=Count("id"), labeled=Count("id", filter=Q(label_status=LabelStatus.LABELED)))
    Dataset.objects.filter(pk=dataset.pk).update(sample_count=counts["total"], labeled_count=counts["labeled"],
                                                 revision=F("revision") + 1)
    dataset.sample_count, dataset.labeled_count = counts["total"], counts["labeled"]
    publish_on_commit(f"datasets.dataset.{dataset.pk}", {"kind": "counts", "samples": counts["total"],
                                                         "labeled": counts["labeled"]})
    return dataset


# ---- annotations (the labeling section writes through these) --------------------------------------------------


class StaleSampleError(Exception):
    """The sample's annotations changed since the caller read them (optimistic concurrency)."""


@transaction.atomic
def sample_annotations_replace(*, user, sample: Sample, expected_version: int, annotations: list[dict],
                               source: str = "human", annotated_by: str = "", confidence=None) -> Sample:
    """Replace all annotations of a sample if its `annotation_version` is still `expected_version`.

    Each dict has label (name), type, shape, geometry, properties and optionally confidence.
    Bumps the version; raises StaleSampleError when another writer got there first.
    """
    dataset = sample.dataset
    require_perm(user, dataset.workspace, "annotation:update")
    updated = Sample.objects.filter(pk=sample.pk, annotation_version=expected_version).update(
        annotation_version=F("annotation_version") + 1)
    if not updated:
        raise StaleSampleError(f"Sample {sample.pk} was changed by someone else; reload it and try again.")
    labels = {label.name: label for label in Label.objects.filter(dataset=dataset)}
    Annotation.objects.filter(sample=sample).delete()
    now = timezone.now()
    rows = []
    for spec in annotations:
        label = labels.get(spec.get("label") or "")
        if spec.get("label") and label is None:
            label = label_create(user=user, dataset=dataset, name=spec["label"])
            labels[label.name] = label
        rows.append(Annotation(
            sample=sample, dataset=dataset, label=label, type=spec.get("type") or dataset.label_type,
            shape=spec.get("shape") or "none", geometry=spec.get("geometry") or {},
            properties=spec.get("properties") or {}, ref_id=spec.get("ref_id") or "", source=source,
            annotated_by=annotated_by or user.get_username(), created_by=user,
            confidence=spec.get("confidence", confidence), created_at=now,
        ))
    Annotation.objects.bulk_create(rows)
    status = LabelStatus.LABELED if rows else LabelStatus.UNLABELED
    if rows and source != "human":
        status = LabelStatus.TO_CONFIRM
    Sample.objects.filter(pk=sample.pk).update(label_status=status)
    sample.refresh_from_db()
    dataset_counts_refresh(dataset=dataset)
    audit_record(actor=user, action="annotation:update", obj=dataset, detail={"sample": sample.pk,
                                                                               "annotations": len(rows)})
    return sample


DELETE_SOURCE_CONFIRM = "DELETE"  # typed to confirm that source files go too: that cannot be undone
MAX_DELETE = 1000  # samples per request: a page selection is at most 48, a filtered batch stays one transaction


def samples_delete(*, user, dataset: Dataset, sample_ids: list[str], delete_source: bool = False, confirm: str = "",
                   within=None) -> dict:
    """Remove samples (and, for videos, their labeled frames) from `dataset`, annotations included.

    `within` narrows which samples may be named (a labeling job passes the samples it lists); an
    id outside it or outside the dataset is Http404 and nothing is deleted. Source files are
    removed only with `delete_source` and `confirm` == "DELETE" (spec §3.7: deleted data cannot
    be recovered, and other datasets or versions may use the files). Files go after the rows are
    committed, so a failed delete never leaves rows pointing at lost files; a file that cannot be
    removed is reported in `files_failed`, its row is gone all the same. Returns the counts and
    `sample_ids`, the deleted samples (frames excluded).
    """
    from django.http import Http404

    require_perm(user, dataset.workspace, "dataset:update")
    ids = list(dict.fromkeys(str(i) for i in sample_ids or []))
    if not ids:
        raise ValidationError({"samples": ["Select at least one sample to delete."]})
    if len(ids) > MAX_DELETE:
        raise ValidationError({"samples": [f"Delete at most {MAX_DELETE} samples at a time; {len(ids)} are selected."]})
    if delete_source and confirm != DELETE_SOURCE_CONFIRM:
        raise ValidationError({"confirm": [f"Deleting source files cannot be undone: type {DELETE_SOURCE_CONFIRM} "
                                           "to confirm, or untick “Also delete source files”."]})
    candidates = (within if within is not None else Sample.objects).filter(dataset_id=dataset.pk)
    with transaction.atomic():
        chosen = list(candidates.filter(pk__in=ids).select_for_update())
        if len(chosen) != len(ids):
            raise Http404("No such sample in this dataset.")
        frames = []
        for sample in chosen:
            if sample.sample_type == SampleType.VIDEO:
                frames.extend(Sample.objects.filter(dataset_id=dataset.pk, dedupe_key__startswith=f"frame:{sample.pk}:"))
        doomed = chosen + frames
        # Labeled frames are written by the workbench, never sources of their own: they always go.
        files = [s.source for s in chosen if delete_source and s.source] + [f.source for f in frames if f.source]
        if delete_source:
            files += [s.thumbnail for s in chosen if s.thumbnail]
        removed_labeled = sum(1 for s in doomed if s.label_status == LabelStatus.LABELED)
        Sample.objects.filter(pk__in=[s.pk for s in doomed]).delete()
        # The revision bump retires cached filter counts of the sample browser.
        Dataset.objects.filter(pk=dataset.pk).update(sample_count=F("sample_count") - len(doomed),
                                                     labeled_count=F("labeled_count") - removed_labeled,
                                                     revision=F("revision") + 1)
        audit_record(actor=user, action="dataset:samples_delete", obj=dataset,
                     detail={"samples": ids, "frames": len(frames), "delete_source": delete_source,
                             "files": files[:100]})
    failed = []
    storage = get_storage()
    for uri in files:
        try:
            storage.delete(parse(uri))
        except Exception as exc:  # noqa: BLE001 — any storage error is reported per file, the rest go on
            failed.append({"file": uri, "message": str(exc) or exc.__class__.__name__})
    return {"deleted": len(chosen), "frames": len(frames), "files_deleted": len(files) - len(failed),
            "files_failed": failed, "sample_ids": ids}


# ---- operations -----------------------------------------------------------------------------------------------

# Which permission starting each kind of operation needs.
OPERATION_PERMISSION = {
    OperationKind.IMPORT: "dataset:import",
    OperationKind.SYNC: "dataset:import",
    OperationKind.PUBLISH: "dataset:publish",
    OperationKind.EXPORT: "dataset:export",
    OperationKind.ANALYSIS: "dataset:analyze",
    OperationKind.AUTO_GROUP: "dataset:update",
    OperationKind.PROCESSING: "dataset:update",
    OperationKind.THUMBNAILS: "dataset:update",
}


def operation_start(*, user, dataset: Dataset, kind: str, params: dict, version: DatasetVersion | None = None
                    ) -> DatasetOperation:
    """Record a queued operation and enqueue its task after commit (queue pool.local)."""
    if user is not None:
        require_perm(user, dataset.workspace, OPERATION_PERMISSION[kind])
    with transaction.atomic():
        operation = DatasetOperation.objects.create(dataset=dataset, kind=kind, params=params, version=version,
                                                    created_by=user)
        if user is not None:
            audit_record(actor=user, action=f"dataset:{kind}", obj=dataset, detail={"operation": operation.uid})
        transaction.on_commit(lambda: operation_enqueue(operation.pk))
    return operation


def operation_enqueue(operation_id: int) -> None:
    from .tasks import dataset_operation_run

    dataset_operation_run.apply_async(args=[operation_id], queue="pool.local")


@transaction.atomic
def operation_stop(*, user, operation: DatasetOperation) -> DatasetOperation:
    """Ask a queued or running operation to stop; a queued one stops at once, a running one at its next item."""
    require_perm(user, operation.dataset.workspace, OPERATION_PERMISSION[operation.kind])
    if operation.is_finished:
        raise ValidationError(f"The operation already {operation.get_status_display().lower()}.")
    if operation.status == OperationStatus.QUEUED:
        DatasetOperation.objects.filter(pk=operation.pk).update(status=OperationStatus.STOPPED,
                                                                finished_at=timezone.now(), stop_requested=True)
    else:
        DatasetOperation.objects.filter(pk=operation.pk).update(stop_requested=True)
    operation.refresh_from_db()
    audit_record(actor=user, action="dataset:operation_stop", obj=operation.dataset,
                 detail={"operation": operation.uid})
    publish_on_commit(f"datasets.datasetoperation.{operation.pk}", {"kind": "status", "status": operation.status})
    return operation


# ---- versions -------------------------------------------------------------------------------------------------


@transaction.atomic
def version_set_current(*, user, version: DatasetVersion) -> Dataset:
    """Make `version` the dataset's current one; only Normal versions qualify and tables cannot switch."""
    dataset = version.dataset
    require_perm(user, dataset.workspace, "dataset:update")
    if dataset.data_type == DataType.TABLE and dataset.current_version_id:
        raise ValidationError("Table datasets do not switch versions.")
    if version.status != VersionStatus.NORMAL:
        raise ValidationError("Only versions whose status is Normal can be set as the current version.")
    dataset.current_version = version
    dataset.save(update_fields=["current_version", "updated_at"])
    audit_record(actor=user, action="dataset:version_set_current", obj=dataset, detail={"version": version.name})
    return dataset


@transaction.atomic
def version_delete(*, user, version: DatasetVersion) -> None:
    """Remove the version record; its manifest and files stay in storage (spec §9.4)."""
    dataset = version.dataset
    require_perm(user, dataset.workspace, "dataset:update")
    if dataset.current_version_id == version.pk:
        dataset.current_version = None
        dataset.save(update_fields=["current_version", "updated_at"])
    audit_record(actor=user, action="dataset:version_delete", obj=dataset,
                 detail={"version": version.name, "kept": version.storage_uri})
    version.delete()


def dataset_paths(dataset: Dataset) -> tuple[StoragePath, StoragePath]:
    """The dataset's input and output folders as StoragePaths."""
    return parse(dataset.input_location), parse(dataset.output_location)

