"""Write operations of the Labeling section. Pages, the JSON API and (later) smart and team
labeling all call these.

Every service is keyword-only, checks a `labeling:*` or `annotation:*` permission, runs in one
transaction and writes an audit entry. Annotations are the dataset's rows; a save replaces a
sample's annotations only when the caller's `version` is still the sample's
`annotation_version` (optimistic concurrency), so no save ever overwrites work it has not seen.
"""
from __future__ import annotations

import io
import re
import secrets
import string

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from apps.core.paths import parse
from apps.core.permissions import has_perm, require_perm
from apps.core.services import audit_record, event_add, publish_on_commit
from apps.core.storage import get_storage
from apps.datasets import services as dataset_services
from apps.datasets.choices import AnnotationSource, DataType, LabelKind, LabelStatus, LabelType, OperationKind, SampleType, Shape
from apps.datasets.models import Annotation, Dataset, Label, Sample
from apps.datasets.validators import validate_color, validate_description

from .choices import COLOR_REQUIRED_TYPES, LABELING_TYPES, TEAM_TYPES, SpeechLabelMode
from .models import LabelingJob, LabelSetting
from .payloads import PayloadParser, Row, audio_text_check

JOB_NAME_RE = re.compile(r"^[\w\u4e00-\u9fff][\w.\-\u4e00-\u9fff]{0,63}$")
JOB_NAME_MESSAGE = ("A job name has 1–64 characters: letters, digits, Chinese characters, underscores, hyphens or "
                    "dots, and does not start with a dot or hyphen.")
SHORTCUT_RE = re.compile(r"^[0-9a-z]$")
AUDIO_TYPES = {LabelType.SOUND_CLASSIFICATION, LabelType.SPEECH_CONTENT, LabelType.SPEECH_SEGMENTATION}
# A frame file name keeps the time to the microsecond, as ModelArts names them (`name_t1.473722.jpg`).
FRAME_TIME_DIGITS = 6
MAX_FRAME_BYTES = 25 * 1024 * 1024  # the dataset image limit (spec §2.6)


class AnnotationConflict(Exception):
    """The sample changed since the caller read it; `sample` holds the newer state."""

    def __init__(self, sample: Sample):
        self.sample = sample
        super().__init__(f"Sample {sample.pk} is at version {sample.annotation_version}.")


# ---- jobs -----------------------------------------------------------------------------------------------------


def _validate_name(name: str) -> str:
    if not JOB_NAME_RE.match(name or ""):
        raise ValidationError(JOB_NAME_MESSAGE)
    return name


def label_cap_left(dataset: Dataset) -> int:
    """How many more labels the dataset may take (item 8: "N more labels can be created")."""
    return max(0, settings.ATELIER_DATASET_MAX_LABELS - Label.objects.filter(dataset=dataset).count())


def _check_label_spec(spec: dict, labeling_type: str, where: str) -> dict:
    """Per-type label rules on top of the dataset's (item 3, 4, 43): returns the cleaned spec."""
    if not isinstance(spec, dict):
        raise ValidationError({where: ["Each label is an object with a name."]})
    name = spec.get("name")
    name = name.strip() if isinstance(name, str) else ""
    color = spec.get("color") or ""
    errors = {}
    if labeling_type in COLOR_REQUIRED_TYPES and spec.get("kind") != LabelKind.RELATION and not color:
        errors[f"{where}.color"] = [f'Choose a colour for "{name[:40]}" (required for this labeling type).']
    elif color:
        try:
            color = validate_color(color)
        except ValidationError as exc:
            errors[f"{where}.color"] = exc.messages
    if labeling_type in AUDIO_TYPES and name:
        try:
            audio_text_check(name, "An audio label name")
        except ValidationError as exc:
            errors[f"{where}.name"] = exc.messages
    shortcut = spec.get("shortcut") or ""
    if shortcut and not SHORTCUT_RE.match(shortcut):
        errors[f"{where}.shortcut"] = [f'"{shortcut}" is not a shortcut key; use one digit or lower-case letter.']
    if errors:
        raise ValidationError(errors)
    return {**spec, "name": name, "color": color, "shortcut": shortcut}


@transaction.atomic
def job_create(*, user, workspace, name: str, dataset: Dataset, labeling_type: str, description: str = "",
               labels: list[dict] | None = None, team_enabled: bool = False, speech_content_enabled: bool = False,
               speech_label_mode: str = SpeechLabelMode.SINGLE, guide: str = "") -> LabelingJob:
    """Create a job over `dataset` and add `labels` to the dataset's label set.

    `labels` items: name, color, attributes, kind (class|entity|relation), from/to (entity names,
    relations), category (speech segmentation multi-label), shortcut (sound classification).
    Refused: a type the dataset does not have, team labeling for a type without it, more labels
    than the cap, and every label rule of the dataset section.
    """
    require_perm(user, workspace, "labeling:create")
    errors: dict[str, list[str]] = {}
    try:
        _validate_name(name)
    except ValidationError as exc:
        errors["name"] = exc.messages
    try:
        validate_description(description)
    except ValidationError as exc:
        errors["description"] = exc.messages
    if labeling_type not in LABELING_TYPES:
        errors["labeling_type"] = [f'"{labeling_type}" is not a labeling type.']
    elif dataset is None or dataset.workspace_id != workspace.pk:
        errors["dataset"] = ["Choose a dataset of this workspace."]
    elif dataset.label_type != labeling_type:
        errors["dataset"] = [f'The dataset "{dataset.name}" is labeled for {dataset.get_label_type_display()}, not '
                             f"{LabelType(labeling_type).label}; choose a dataset of that type."]
    if team_enabled and labeling_type not in TEAM_TYPES:
        errors["team_enabled"] = [f"{LabelType(labeling_type).label if labeling_type in LABELING_TYPES else 'This type'} "
                                  "does not support team labeling."]
    if speech_label_mode not in SpeechLabelMode.values:
        errors["speech_label_mode"] = [f'"{speech_label_mode}" is not a label mode; use single or multi.']
    if speech_content_enabled and labeling_type != LabelType.SPEECH_SEGMENTATION:
        errors["speech_content_enabled"] = ["Speech content per segment exists only for speech segmentation."]
    if not errors and LabelingJob.objects.filter(workspace=workspace, name=name).exists():
        errors["name"] = [f'A labeling job named "{name}" already exists in this workspace.']
    labels = labels or []
    if not isinstance(labels, list):
        errors["labels"] = ["Labels are a list."]
    if errors:
        raise ValidationError(errors)
    if len(labels) > label_cap_left(dataset):
        cap = settings.ATELIER_DATASET_MAX_LABELS
        raise ValidationError({"labels": [f"{len(labels)} new labels exceed the cap: the dataset may hold {cap} labels "
                                          f"and {label_cap_left(dataset)} more can be created."]})
    job = LabelingJob.objects.create(
        workspace=workspace, dataset=dataset, name=name, description=description, labeling_type=labeling_type,
        team_enabled=team_enabled, speech_content_enabled=speech_content_enabled,
        speech_label_mode=speech_label_mode, guide=guide, created_by=user,
    )
    # Entities first, so relations can name them; triplet entity labels made here are protected (item 39).
    ordered = sorted(enumerate(labels), key=lambda pair: (pair[1] or {}).get("kind") == LabelKind.RELATION)
    for index, spec in ordered:
        _label_add(user=user, job=job, spec=spec, where=f"labels.{index}",
                   protected=labeling_type == LabelType.TEXT_TRIPLET and (spec or {}).get("kind") == LabelKind.ENTITY)
    audit_record(actor=user, action="labeling:create", obj=job,
                 detail={"dataset": dataset.pk, "type": labeling_type, "labels": len(labels)})
    event_add(obj=job, message=f"Labeling job created by {user.get_username()} on dataset {dataset.name}.")
    return job


def _label_add(*, user, job: LabelingJob, spec: dict, where: str, protected: bool = False) -> Label:
    spec = _check_label_spec(spec, job.labeling_type, where)
    kind = spec.get("kind") or (LabelKind.ENTITY if job.labeling_type in (LabelType.NAMED_ENTITY,
                                                                          LabelType.TEXT_TRIPLET) else LabelKind.CLASS)
    if job.labeling_type == LabelType.TEXT_TRIPLET and kind == LabelKind.CLASS:
        kind = LabelKind.ENTITY
    if kind == LabelKind.RELATION and job.labeling_type != LabelType.TEXT_TRIPLET:
        raise ValidationError({f"{where}.kind": ["Relation labels exist only in text triplet jobs."]})
    ends = {}
    if kind == LabelKind.RELATION:
        for end in ("from", "to"):
            entity = Label.objects.filter(dataset=job.dataset, kind=LabelKind.ENTITY, name=spec.get(end) or "").first()
            if entity is None:
                raise ValidationError({f"{where}.{end}": [
                    f'A relation label names its {"start" if end == "from" else "end"} entity label; '
                    f'"{spec.get(end) or ""}" is not an entity label of this job.']})
            ends[end] = entity
    category = (spec.get("category") or "").strip()
    if job.labeling_type == LabelType.SPEECH_SEGMENTATION and job.speech_label_mode == SpeechLabelMode.MULTI:
        from apps.datasets.validators import SPEECH_LABEL_RE

        if not SPEECH_LABEL_RE.match(category):
            raise ValidationError({f"{where}.category": [
                "In multi-label mode every label has a category of 1–256 characters: letters, digits, Chinese "
                'characters, ".", "_" or "-".']})
    try:
        label = dataset_services.label_create(
            user=user, dataset=job.dataset, name=spec["name"], color=spec["color"],
            attributes=spec.get("attributes") or [], kind=kind, from_label=ends.get("from"), to_label=ends.get("to"),
            category=category)
    except ValidationError as exc:
        raise ValidationError({f"{where}.{key}": msgs for key, msgs in exc.message_dict.items()}) from None
    if spec.get("shortcut") or protected:
        _shortcut_check(job, spec.get("shortcut") or "", exclude=None, where=f"{where}.shortcut")
        LabelSetting.objects.create(job=job, label=label, shortcut=spec.get("shortcut") or "", protected=protected)
    return label


def _shortcut_check(job: LabelingJob, key: str, *, exclude: Label | None, where: str) -> None:
    """Item 40: one key per label and no two labels of a job on one key."""
    if not key:
        return
    clash = LabelSetting.objects.filter(job=job, shortcut=key).exclude(label=exclude).select_related("label").first()
    if clash is not None:
        raise ValidationError({where: [f'The key "{key}" is already the shortcut of "{clash.label.name}".']})


@transaction.atomic
def job_update(*, user, job: LabelingJob, name: str, description: str, guide: str | None = None,
               remarks: str | None = None) -> LabelingJob:
    """Rename the job or change its description, remarks and labeling guide (item 21)."""
    require_perm(user, job.workspace, "labeling:update")
    errors = {}
    try:
        _validate_name(name)
    except ValidationError as exc:
        errors["name"] = exc.messages
    for field, value in (("description", description), ("remarks", remarks or "")):
        try:
            validate_description(value)
        except ValidationError as exc:
            errors[field] = exc.messages
    if not errors and LabelingJob.objects.filter(workspace=job.workspace, name=name).exclude(pk=job.pk).exists():
        errors["name"] = [f'A labeling job named "{name}" already exists in this workspace.']
    if errors:
        raise ValidationError(errors)
    job.name, job.description = name, description
    if guide is not None:
        job.guide = guide
    if remarks is not None:
        job.remarks = remarks
    job.save()
    audit_record(actor=user, action="labeling:update", obj=job, detail={"name": name})
    return job


def job_guide_image_add(*, user, job: LabelingJob, data: bytes, filename: str, caption: str = "") -> str:
    """Store an example image for the labeling guide (item 21) and append it to the guide.

    The file goes under the dataset's output location (`guide/<job id>/<random>.<ext>`);
    the guide gains a line `![caption](guide:<name>)`. Returns the stored name.
    """
    from . import guide

    require_perm(user, job.workspace, "labeling:update")
    extension = guide.image_check(data, filename)
    caption = " ".join((caption or "").replace("]", "").split())[:200]
    name = guide.new_image_name(extension)
    with transaction.atomic():
        get_storage().save(guide.image_folder(job).child(name), io.BytesIO(data))
        job.guide = (job.guide.rstrip("\n") + "\n\n" if job.guide.strip() else "") + f"![{caption}](guide:{name})"
        LabelingJob.objects.filter(pk=job.pk).update(guide=job.guide, updated_at=timezone.now())
        audit_record(actor=user, action="labeling:guide_image_add", obj=job, detail={"image": name, "file": filename})
    return name


def job_annotation_count(job: LabelingJob) -> int:
    return Annotation.objects.filter(dataset_id=job.dataset_id).count()


@transaction.atomic
def job_delete(*, user, job: LabelingJob, delete_annotations: bool = False, confirm: str = "") -> None:
    """Delete the job. Its annotations are the dataset's and stay, unless `delete_annotations`.

    Item 11: when the dataset holds annotations, `confirm` must repeat the job name, and with
    `delete_annotations` every annotation of the dataset is removed and its samples return to
    Unlabeled (the FAQ 14.2.26 loss, made explicit).
    """
    require_perm(user, job.workspace, "labeling:delete")
    count = job_annotation_count(job)
    if count and confirm != job.name:
        loss = (f"and its {count} annotations are deleted with it" if delete_annotations
                else f"its dataset keeps its {count} annotations")
        raise ValidationError({"confirm": [f'Type the job name "{job.name}" to confirm: the job is deleted {loss}.']})
    dataset = job.dataset
    if delete_annotations and count:
        require_perm(user, job.workspace, "annotation:delete")
        Annotation.objects.filter(dataset=dataset).delete()
        Sample.objects.filter(dataset=dataset).update(label_status=LabelStatus.UNLABELED,
                                                      annotation_version=F("annotation_version") + 1)
        dataset_services.dataset_counts_refresh(dataset=dataset)
    audit_record(actor=user, action="labeling:delete", obj=job,
                 detail={"annotations_deleted": count if delete_annotations else 0})
    job.delete()


def copy_name(name: str) -> str:
    """`<name>-copy-<4 random letters/digits>` (item 10), shortened to fit 64 characters."""
    suffix = "-copy-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4))
    return name[:64 - len(suffix)] + suffix


@transaction.atomic
def job_copy(*, user, job: LabelingJob, name: str = "", description: str | None = None) -> LabelingJob:
    """A new job on the same dataset with the same options and label settings; no annotation is copied."""
    require_perm(user, job.workspace, "labeling:create")
    name = name or copy_name(job.name)
    errors = {}
    try:
        _validate_name(name)
    except ValidationError as exc:
        errors["name"] = exc.messages
    description = job.description if description is None else description
    try:
        validate_description(description)
    except ValidationError as exc:
        errors["description"] = exc.messages
    if not errors and LabelingJob.objects.filter(workspace=job.workspace, name=name).exists():
        errors["name"] = [f'A labeling job named "{name}" already exists in this workspace.']
    if errors:
        raise ValidationError(errors)
    copy = LabelingJob.objects.create(
        workspace=job.workspace, dataset=job.dataset, name=name, description=description,
        labeling_type=job.labeling_type, team_enabled=job.team_enabled,
        speech_content_enabled=job.speech_content_enabled, speech_label_mode=job.speech_label_mode,
        tool_mode=job.tool_mode, guide=job.guide, created_by=user)
    LabelSetting.objects.bulk_create([LabelSetting(job=copy, label_id=s.label_id, shortcut=s.shortcut,
                                                   protected=s.protected) for s in job.label_settings.all()])
    audit_record(actor=user, action="labeling:copy", obj=copy, detail={"from": job.pk})
    return copy


def job_sync(*, user, job: LabelingJob):
    """Item 14: rescan the dataset's input location now (new files in, vanished ones out).

    The job always shows the dataset's current samples, so this is the dataset's own sync operation.
    """
    require_perm(user, job.workspace, "labeling:update")
    operation = dataset_services.operation_start(user=user, dataset=job.dataset, kind=OperationKind.SYNC,
                                                 params={"path": job.dataset.input_location})
    audit_record(actor=user, action="labeling:sync", obj=job, detail={"operation": operation.uid})
    return operation


# ---- labels -----------------------------------------------------------------------------------------------------


@transaction.atomic
def job_label_create(*, user, job: LabelingJob, spec: dict) -> Label:
    """Add one label to the job's dataset (inline creation, item 22/26), with the job's label rules."""
    require_perm(user, job.workspace, "labeling:update")
    if job.labeling_type == LabelType.TEXT_TRIPLET and spec.get("source") == "workbench":
        raise ValidationError({"name": ["Triplet labels are edited in label management, not on the labeling page."]})
    label = _label_add(user=user, job=job, spec=spec, where="label")
    audit_record(actor=user, action="labeling:label_create", obj=job, detail={"label": label.name})
    _publish_labels(job)
    return label


@transaction.atomic
def job_label_update(*, user, job: LabelingJob, label: Label, name: str, color: str,
                     attributes: list | None = None, shortcut: str | None = None) -> Label:
    """Rename or recolour a label everywhere (item 20), change its attributes or its shortcut key."""
    require_perm(user, job.workspace, "labeling:update")
    spec = _check_label_spec({"name": name, "color": color or label.color, "shortcut": shortcut or "",
                              "kind": label.kind}, job.labeling_type, "label")
    dataset_services.label_update(user=user, label=label, name=spec["name"], color=spec["color"] or label.color,
                                  attributes=attributes)
    if shortcut is not None:
        _shortcut_check(job, spec["shortcut"], exclude=label, where="shortcut")
        setting, _ = LabelSetting.objects.get_or_create(job=job, label=label)
        setting.shortcut = spec["shortcut"]
        setting.save(update_fields=["shortcut"])
    Sample.objects.filter(annotations__label=label).update(annotation_version=F("annotation_version") + 1)
    audit_record(actor=user, action="labeling:label_update", obj=job, detail={"label": label.name})
    _publish_labels(job)
    return label


@transaction.atomic
def job_labels_delete(*, user, job: LabelingJob, labels: list[Label], with_objects: bool = False) -> dict:
    """Delete labels from every sample (items 20, 39); text types may also delete the samples whose
    only labels are these (`with_objects`, "delete label and objects that only have this label")."""
    require_perm(user, job.workspace, "labeling:update")
    protected = set(LabelSetting.objects.filter(job__dataset=job.dataset, protected=True,
                                                label__in=labels).values_list("label__name", flat=True))
    if protected:
        raise ValidationError({"labels": [f'The entity label "{sorted(protected)[0]}" was defined when the job was '
                                          "created and cannot be deleted."]})
    removed_samples = 0
    if with_objects:
        ids = [label.pk for label in labels]
        others = Annotation.objects.filter(sample=OuterRef("pk")).exclude(label_id__in=ids)
        only = list(Sample.objects.filter(dataset=job.dataset, annotations__label_id__in=ids)
                    .exclude(Exists(others)).values_list("pk", flat=True).distinct())
        removed_samples = Sample.objects.filter(pk__in=only).delete()[1].get("datasets.Sample", 0)
    for label in labels:
        dataset_services.label_delete(user=user, label=label)
    dataset_services.dataset_counts_refresh(dataset=job.dataset)
    audit_record(actor=user, action="labeling:label_delete", obj=job,
                 detail={"labels": [label.name for label in labels], "samples_deleted": removed_samples})
    _publish_labels(job)
    return {"labels": len(labels), "samples_deleted": removed_samples}


def _publish_labels(job: LabelingJob) -> None:
    publish_on_commit(f"labeling.labelingjob.{job.pk}", {"kind": "labels"})


# ---- annotations -------------------------------------------------------------------------------------------------


def _identity(user) -> str:
    return user.get_username()


def _row_key(shape, geometry, properties, label_id, ref_id) -> tuple:
    import json

    return (shape, json.dumps(geometry, sort_keys=True), json.dumps(properties, sort_keys=True), label_id, ref_id)


def _write_rows(*, user, job: LabelingJob, sample: Sample, rows: list[Row], now) -> tuple[int, int, int, list]:
    """Make the sample's annotations equal `rows`; unchanged annotations keep their provenance.

    A row naming an existing annotation (`keep_id`) that is unchanged keeps who made it, when and
    with which confidence (a model's prediction confirmed as is stays the model's); a changed one
    becomes this user's. Returns (created, updated, deleted, the sample's annotations in row order)
    — the last so a save can answer without reading the rows back.
    """
    # `only()`: a save compares and rewrites these columns; the rest stay in the database.
    existing = {a.pk: a for a in Annotation.objects.filter(sample=sample).only(
        "id", "label_id", "shape", "geometry", "properties", "ref_id", "source", "annotated_by", "confidence",
        "created_at")}
    who = _identity(user)
    create, update, kept, final = [], [], set(), []
    for row in rows:
        old = existing.get(row.keep_id) if row.keep_id is not None else None
        if old is not None and old.pk not in kept:
            kept.add(old.pk)
            final.append(old)
            same = _row_key(old.shape, old.geometry, old.properties, old.label_id, old.ref_id) == _row_key(
                row.shape, row.geometry, row.properties, row.label.pk if row.label else None, row.ref_id)
            if same:
                continue
            old.label, old.shape, old.geometry, old.properties, old.ref_id = (
                row.label, row.shape, row.geometry, row.properties, row.ref_id)
            old.source, old.annotated_by, old.created_by, old.confidence = AnnotationSource.HUMAN, who, user, None
            update.append(old)
            continue
        new = Annotation(
            sample=sample, dataset_id=sample.dataset_id, label=row.label, type=job.labeling_type, shape=row.shape,
            geometry=row.geometry, properties=row.properties, ref_id=row.ref_id, source=AnnotationSource.HUMAN,
            annotated_by=who, created_by=user, created_at=now)
        create.append(new)
        final.append(new)
    gone = [pk for pk in existing if pk not in kept]
    if gone:
        Annotation.objects.filter(pk__in=gone).delete()
    if update:
        Annotation.objects.bulk_update(update, ["label", "shape", "geometry", "properties", "ref_id", "source",
                                                "annotated_by", "created_by", "confidence"])
    if create:
        Annotation.objects.bulk_create(create)  # SQLite ≥ 3.35 and PostgreSQL return the new ids
    return len(create), len(update), len(gone), final


def _labels_of(job: LabelingJob) -> list[Label]:
    return list(Label.objects.filter(dataset_id=job.dataset_id))


def _bump(*, sample: Sample, version: int, status: str, now) -> bool:
    """Move the sample to `version + 1` only if it is still at `version`."""
    return bool(Sample.objects.filter(pk=sample.pk, annotation_version=version).update(
        annotation_version=version + 1, label_status=status, updated_at=now))


def _count_change(dataset_id: int, before: str, after: str) -> int:
    delta = (after == LabelStatus.LABELED) - (before == LabelStatus.LABELED)
    if delta:
        Dataset.objects.filter(pk=dataset_id).update(labeled_count=F("labeled_count") + delta)
    return delta


def _check_version(version) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValidationError({"version": ["Send the sample's annotation version you started from (an integer)."]})
    return version


def _save_one(*, user, job: LabelingJob, sample: Sample, version: int, annotations, labels: list[Label], now,
              keep_objects: bool = False) -> dict:
    rows = PayloadParser(job=job, sample=sample, labels=labels).parse(annotations)
    before = sample.label_status
    status = LabelStatus.LABELED if rows else LabelStatus.UNLABELED
    if not _bump(sample=sample, version=version, status=status, now=now):
        raise AnnotationConflict(Sample.objects.get(pk=sample.pk))
    created, updated, deleted, final = _write_rows(user=user, job=job, sample=sample, rows=rows, now=now)
    _count_change(sample.dataset_id, before, status)
    sample.annotation_version, sample.label_status, sample.updated_at = version + 1, status, now
    publish_on_commit(f"labeling.sample.{sample.pk}", {"kind": "saved", "version": version + 1,
                                                       "by": _identity(user), "status": status})
    result = {"sample": sample.pk, "version": version + 1, "created": created, "updated": updated,
              "deleted": deleted, "status": status}
    if keep_objects:
        by_id = {label.pk: label for label in labels}
        for annotation in final:  # kept rows carry only label_id: give them their label without a query
            if annotation.label_id is not None and not Annotation.label.is_cached(annotation):
                annotation.label = by_id.get(annotation.label_id)
        result["objects"] = final
    return result


def _lock_tool(job: LabelingJob, rows_given: bool) -> None:
    """Item 34: the first annotation of a segmentation job fixes its tool mode."""
    if rows_given and job.labeling_type == LabelType.IMAGE_SEGMENTATION and not job.tool_mode:
        LabelingJob.objects.filter(pk=job.pk, tool_mode="").update(tool_mode="polygon")
        job.tool_mode = "polygon"


def annotations_save(*, user, job: LabelingJob, sample: Sample, version, annotations) -> dict:
    """Replace the sample's annotations with `annotations` if it is still at `version`.

    Raises ValidationError (which annotation, which rule; nothing written) or AnnotationConflict
    (someone saved first; nothing written). Returns the new version, what changed and, under
    "objects", the sample's annotations as saved (in the order given).
    """
    require_perm(user, job.workspace, "annotation:update")
    version = _check_version(version)
    if sample.sample_type == SampleType.VIDEO:
        raise ValidationError({"annotations": ["A video is labeled frame by frame: save to its frames endpoint."]})
    with transaction.atomic():
        result = _save_one(user=user, job=job, sample=sample, version=version, annotations=annotations,
                           labels=_labels_of(job), now=timezone.now(), keep_objects=True)
        _lock_tool(job, bool(annotations))
        audit_record(actor=user, action="annotation:update", obj=job,
                     detail={"sample": sample.pk, "version": result["version"], "created": result["created"],
                             "updated": result["updated"], "deleted": result["deleted"]})
    return result


def annotations_save_many(*, user, job: LabelingJob, items: list[dict], samples: dict[str, Sample]) -> list[dict]:
    """Save several samples in one transaction ("Save current page", item 36; quick review "Apply all",
    item 32): all are written or none. `items`: [{"sample", "version", "annotations"}]."""
    require_perm(user, job.workspace, "annotation:update")
    if not isinstance(items, list) or not items:
        raise ValidationError({"items": ["Send at least one sample to save."]})
    labels = _labels_of(job)
    now = timezone.now()
    results = []
    with transaction.atomic():
        for index, item in enumerate(items):
            sample = samples[item["sample"]]
            try:
                version = _check_version(item.get("version"))
                results.append(_save_one(user=user, job=job, sample=sample, version=version,
                                         annotations=item.get("annotations"), labels=labels, now=now))
            except ValidationError as exc:
                raise ValidationError({f"items.{index}.{key}": msgs for key, msgs in exc.message_dict.items()}) \
                    from None
        _lock_tool(job, any(item.get("annotations") for item in items))
        audit_record(actor=user, action="annotation:update", obj=job,
                     detail={"samples": [r["sample"] for r in results]})
    return results


@transaction.atomic
def samples_label_add(*, user, job: LabelingJob, samples: list[Sample], labels: list[Label]) -> int:
    """Item 22: add class labels to every selected sample (kept labels stay); returns samples changed."""
    require_perm(user, job.workspace, "annotation:update")
    _require_class_job(job)
    if not samples or not labels:
        raise ValidationError({"labels": ["Select at least one sample and one label."]})
    now, who = timezone.now(), _identity(user)
    have = set(Annotation.objects.filter(sample__in=samples, label__in=labels).values_list("sample_id", "label_id"))
    rows = [Annotation(sample=s, dataset_id=s.dataset_id, label=label, type=job.labeling_type, shape=Shape.NONE,
                       source=AnnotationSource.HUMAN, annotated_by=who, created_by=user, created_at=now)
            for s in samples for label in labels if (s.pk, label.pk) not in have]
    Annotation.objects.bulk_create(rows)
    changed = {row.sample_id for row in rows}
    _statuses_refresh(job, changed, now)
    audit_record(actor=user, action="annotation:label_add", obj=job,
                 detail={"samples": len(changed), "labels": [label.name for label in labels]})
    return len(changed)


@transaction.atomic
def samples_label_remove(*, user, job: LabelingJob, samples: list[Sample], label: Label) -> int:
    """Item 23/24: remove one label from the selected samples only; a sample left bare is Unlabeled."""
    require_perm(user, job.workspace, "annotation:update")
    _require_class_job(job)
    ids = list(Annotation.objects.filter(sample__in=samples, label=label).values_list("sample_id", flat=True))
    Annotation.objects.filter(sample__in=samples, label=label).delete()
    _statuses_refresh(job, set(ids), timezone.now())
    audit_record(actor=user, action="annotation:label_remove", obj=job, detail={"samples": len(set(ids)),
                                                                                "label": label.name})
    return len(set(ids))


def _require_class_job(job: LabelingJob) -> None:
    if job.labeling_type not in (LabelType.IMAGE_CLASSIFICATION, LabelType.SOUND_CLASSIFICATION,
                                 LabelType.TEXT_CLASSIFICATION):
        raise ValidationError({"labels": ["Batch labeling applies to classification jobs only."]})


def _statuses_refresh(job: LabelingJob, sample_ids: set[str], now) -> None:
    """Bump the versions of changed samples and recompute their status from their annotations."""
    if not sample_ids:
        return
    ids = list(sample_ids)
    Sample.objects.filter(pk__in=ids).update(annotation_version=F("annotation_version") + 1, updated_at=now)
    Sample.objects.filter(pk__in=ids, annotations__isnull=False).update(label_status=LabelStatus.LABELED)
    Sample.objects.filter(pk__in=ids).exclude(annotations__isnull=False).update(label_status=LabelStatus.UNLABELED)
    dataset_services.dataset_counts_refresh(dataset=job.dataset)
    for pk in ids:
        publish_on_commit(f"labeling.sample.{pk}", {"kind": "saved"})


# ---- samples: delete (item 17) and add data (item 18) ---------------------------------------------------------

def samples_delete(*, user, job: LabelingJob, sample_ids: list[str], delete_source: bool = False,
                   confirm: str = "") -> dict:
    """Item 17: remove samples the job lists from its dataset, through `datasets.samples_delete`
    (which owns the rules: typed confirmation for source files, frames of videos, files after
    commit). Adds the job's audit entry and event and tells open workbenches the samples are gone.
    """
    from .selectors import job_samples

    require_perm(user, job.workspace, "labeling:update")
    result = dataset_services.samples_delete(user=user, dataset=job.dataset, sample_ids=sample_ids,
                                             delete_source=delete_source, confirm=confirm, within=job_samples(job))
    deleted = result.pop("sample_ids")
    audit_record(actor=user, action="labeling:samples_delete", obj=job,
                 detail={"samples": deleted, "frames": result["frames"], "delete_source": delete_source})
    event_add(obj=job, message=f"{len(deleted)} sample(s) deleted"
                               f"{' with their source files' if delete_source else ''} by {_identity(user)}.")
    for pk in deleted:
        publish_on_commit(f"labeling.sample.{pk}", {"kind": "deleted"})
    return result


def job_data_add(*, user, job: LabelingJob, labeled: bool, path: str = "", files: list | None = None,
                 import_format: str = "", upload_path: str = ""):
    """Item 18, "Add data": import into the job's **dataset** (spec §3.6), from a storage path the
    user may read or from uploaded files, stored first under `upload_path` ("storage path for
    uploaded data", a folder the user may write outside the dataset's output location) or, when
    that is empty, under the dataset's input location. Refusals name the form field
    (`path`, `files`, `upload_path`, `format`).

    Runs the dataset's own import operation; the job lists the dataset's samples, so it shows the
    new ones as soon as the import finishes. Returns the DatasetOperation.
    """
    from apps.datasets.choices import FORMATS_BY_LABEL_TYPE, ImportFormat
    from apps.datasets.uploads import dataset_upload

    require_perm(user, job.workspace, "labeling:update")
    dataset = job.dataset
    allowed = [ImportFormat.RAW, *FORMATS_BY_LABEL_TYPE.get(dataset.label_type, [])]
    # Unlabeled files are the default layout; labeled data names the format its annotations are in.
    fmt = import_format or ImportFormat.RAW
    if fmt not in allowed:
        raise ValidationError({"format": [f'"{fmt}" cannot be imported into a {dataset.get_label_type_display()} '
                                          f"dataset; choose one of: {', '.join(allowed)}."]})
    if labeled and fmt == ImportFormat.RAW:
        # Datasets item 6: labeled data needs the format its annotations are in (raw has none).
        formats = ", ".join(allowed[1:])
        raise ValidationError({"format": [
            f"Labeled data is imported with its annotations: choose their format ({formats})." if formats else
            f"{dataset.get_label_type_display()} data has no annotation format to import; choose Unlabeled."]})
    if files is not None and fmt == ImportFormat.RAW and dataset.data_type == DataType.VIDEO:
        # Item 44: refused at once with the names, rather than as rejected rows after the upload.
        wrong = [f.name for f in files if not f.name.lower().endswith((".mp4", ".zip"))]
        if wrong:
            raise ValidationError({"files": [f"Video labeling takes MP4 files only (or a zip of them); "
                                             f"not {', '.join(wrong[:5])}{' …' if len(wrong) > 5 else ''}."]})
    if files is not None:
        if path:
            raise ValidationError({"path": ["Choose either a storage path or files to upload, not both."]})
        try:
            operation = dataset_upload(user=user, dataset=dataset, files=files, import_format=fmt, labeled=labeled,
                                       storage_path=upload_path)
        except ValidationError as exc:
            if "storage_path" not in getattr(exc, "error_dict", {}):
                raise
            raise ValidationError({"upload_path": exc.message_dict["storage_path"]}) from None
        mode, where = "upload", operation.params.get("path", "")
    else:
        if not path:
            raise ValidationError({"path": ["Give the storage path to import from, or choose files to upload."]})
        from apps.storage.selectors import storage_path_resolve

        try:
            resolved = storage_path_resolve(user, path, "storage:view", must_exist=True, kind=None)
        except ValidationError as exc:
            raise ValidationError({"path": exc.messages}) from None
        operation = dataset_services.operation_start(
            user=user, dataset=dataset, kind=OperationKind.IMPORT,
            params={"path": resolved.uri, "format": fmt, "labeled": labeled, "source": "storage"})
        mode, where = "storage", resolved.uri
    audit_record(actor=user, action="labeling:data_add", obj=job,
                 detail={"operation": operation.uid, "mode": mode, "path": where, "labeled": labeled})
    return operation


# ---- video frames ------------------------------------------------------------------------------------------------


def _frame_image(data: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_FRAME_BYTES:
        raise ValidationError({"image": [f"The frame image has {len(data)} bytes; at most {MAX_FRAME_BYTES}."]})
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise ValidationError({"image": [f"The frame image is {image.format}; send a JPEG."]})
            image.verify()
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValidationError({"image": ["The frame image is not a readable JPEG."]}) from None


def frame_key(video: Sample, time: float) -> str:
    return f"frame:{video.pk}:{time:.{FRAME_TIME_DIGITS}f}"


def video_frame_save(*, user, job: LabelingJob, video: Sample, time, version, annotations,
                     image: bytes | None = None) -> dict:
    """Label the frame of `video` at `time` seconds (item 45).

    The frame is an image sample of the dataset (ModelArts keeps labeled frames as JPG samples)
    with `@modelarts:time_in_video`, `parent_source` and `parent_duration`. The first save of a
    time needs the frame `image` (a JPEG of the paused frame); later saves follow the frame's
    own version. Saving no annotations removes the frame. The video is Labeled while it has frames.
    """
    require_perm(user, job.workspace, "annotation:update")
    if job.labeling_type != LabelType.VIDEO or video.sample_type != SampleType.VIDEO:
        raise ValidationError({"sample": ["Frames belong to the videos of a video labeling job."]})
    if isinstance(time, bool) or not isinstance(time, (int, float)) or time < 0:
        raise ValidationError({"time": ["The frame time is a number of seconds from the start of the video."]})
    if video.duration and time > video.duration + 0.001:
        raise ValidationError({"time": [f"{time:g} s is after the end of the {video.duration:g} s video."]})
    time = round(float(time), FRAME_TIME_DIGITS)
    version = _check_version(version)
    now = timezone.now()
    with transaction.atomic():
        frame = Sample.objects.filter(dataset_id=video.dataset_id, dedupe_key=frame_key(video, time)).first()
        if frame is None:
            if version != 0:
                raise AnnotationConflict(_missing_frame(video, time))
            if not image:
                raise ValidationError({"image": ["The first save of a frame sends the frame as a JPEG image."]})
            frame = _frame_create(video=video, time=time, image=image, now=now)
        result = _save_one(user=user, job=job, sample=frame, version=version, annotations=annotations,
                           labels=_labels_of(job), now=now)
        if result["status"] == LabelStatus.UNLABELED:
            _frame_remove(frame)
            result["removed"] = True
        _video_status_refresh(video, now)
        audit_record(actor=user, action="annotation:update", obj=job,
                     detail={"sample": video.pk, "frame": frame.pk, "time": time, "version": result["version"]})
    result["frame"] = frame.pk
    result["time"] = time
    return result


def _missing_frame(video: Sample, time: float) -> Sample:
    """A conflict stand-in: the frame the caller edited was removed by someone else."""
    ghost = Sample(pk="", dataset_id=video.dataset_id, annotation_version=0)
    ghost.properties = {"@modelarts:time_in_video": time}
    return ghost


def _frame_create(*, video: Sample, time: float, image: bytes, now) -> Sample:
    width, height = _frame_image(image)
    dataset = video.dataset
    stem = (video.file_name.rsplit(".", 1)[0] if video.file_name else video.pk)
    name = f"{stem}_t{time:.{FRAME_TIME_DIGITS}f}.jpg"
    path = parse(dataset.output_location).child("frames").child(name)
    get_storage().save(path, io.BytesIO(image))
    frame = Sample.objects.create(
        dataset=dataset, dedupe_key=frame_key(video, time), source=path.uri, file_name=name,
        directory=video.directory, size=len(image), width=width, height=height,
        format_category="image", sample_type=SampleType.IMAGE,
        properties={"@modelarts:parent_source": video.source, "@modelarts:parent_duration": video.duration,
                    "@modelarts:time_in_video": time, "@atelier:parent_sample": video.pk})
    Dataset.objects.filter(pk=dataset.pk).update(sample_count=F("sample_count") + 1)
    return frame


def _frame_remove(frame: Sample) -> None:
    try:
        get_storage().delete(parse(frame.source))
    except Exception:  # a frame file already gone must not block removing its record
        pass
    frame.delete()
    Dataset.objects.filter(pk=frame.dataset_id).update(sample_count=F("sample_count") - 1)


def _video_status_refresh(video: Sample, now) -> None:
    labeled = _frames_of(video).filter(label_status=LabelStatus.LABELED).exists()
    status = LabelStatus.LABELED if labeled else LabelStatus.UNLABELED
    before = Sample.objects.filter(pk=video.pk).values_list("label_status", flat=True).first()
    Sample.objects.filter(pk=video.pk).update(label_status=status, annotation_version=F("annotation_version") + 1,
                                              updated_at=now)
    _count_change(video.dataset_id, before, status)
    publish_on_commit(f"labeling.sample.{video.pk}", {"kind": "frames"})


def _frames_of(video: Sample):
    """Frame samples of a video: their dedupe key starts with the video's frame prefix."""
    return Sample.objects.filter(dataset_id=video.dataset_id, dedupe_key__startswith=f"frame:{video.pk}:")


@transaction.atomic
def video_frame_delete(*, user, job: LabelingJob, video: Sample, frame: Sample) -> None:
    """Item 46: delete every label of one frame (the frame sample goes with them)."""
    require_perm(user, job.workspace, "annotation:update")
    if not frame.dedupe_key.startswith(f"frame:{video.pk}:"):
        raise ValidationError({"frame": ["This frame is not a frame of that video."]})
    was_labeled = frame.label_status == LabelStatus.LABELED
    _frame_remove(frame)
    if was_labeled:
        Dataset.objects.filter(pk=video.dataset_id).update(labeled_count=F("labeled_count") - 1)
    _video_status_refresh(video, timezone.now())
    audit_record(actor=user, action="annotation:frame_delete", obj=job, detail={"sample": video.pk,
                                                                                 "frame": frame.pk})


def can_edit_labels(user, job: LabelingJob) -> bool:
    return has_perm(user, job.workspace, "labeling:update")
