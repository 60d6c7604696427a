"""Read queries of the Labeling section; every object from a URL goes through an accessor here."""
from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from apps.core.scoping import get_with_role
from apps.datasets.choices import LabelStatus, LabelType, SampleType
from apps.datasets.models import Annotation, Dataset, Label, Sample
from apps.datasets.selectors import SampleFilter

from .choices import SCENE_OF_TYPE
from .models import LabelingJob, LabelSetting
from .payloads import CONTENT_KEY, LINE_STYLE_KEY


def job_get_for_user(user, pk) -> LabelingJob:
    """The job if the user belongs to its workspace, else Http404 (the role comes along: see get_with_role)."""
    return get_with_role(LabelingJob.objects.select_related("workspace", "dataset", "created_by"), user, pk=pk)


def jobs_in(workspace) -> QuerySet[LabelingJob]:
    """Jobs of one workspace with their dataset (the list page's rows)."""
    if workspace is None:
        return LabelingJob.objects.none()
    to_confirm = (Sample.objects.filter(dataset_id=OuterRef("dataset_id"), label_status=LabelStatus.TO_CONFIRM)
                  .order_by().values("dataset_id").annotate(n=Count("pk")).values("n"))
    return (LabelingJob.objects.in_workspace(workspace).select_related("dataset", "created_by")
            .annotate(to_confirm=Coalesce(Subquery(to_confirm), 0)))


def compatible_datasets(workspace, labeling_type: str) -> QuerySet[Dataset]:
    """Item 1: the datasets a job of `labeling_type` may label (same label type, this workspace)."""
    if workspace is None:
        return Dataset.objects.none()
    return Dataset.objects.in_workspace(workspace).filter(label_type=labeling_type).order_by("name")


def job_samples(job: LabelingJob) -> QuerySet[Sample]:
    """The samples a job labels: for video jobs the videos (their frames are listed under them)."""
    qs = Sample.objects.filter(dataset_id=job.dataset_id)
    if job.labeling_type == LabelType.VIDEO:
        qs = qs.filter(sample_type=SampleType.VIDEO)
    return qs


def sample_get(job: LabelingJob, sample_id: str) -> Sample:
    """A sample of an already-authorised job, else Http404 (another workspace's sample never matches)."""
    sample = get_object_or_404(Sample, dataset_id=job.dataset_id, pk=sample_id)
    sample.dataset = job.dataset  # already loaded with the job: no join, no second copy
    return sample


def frame_get(video: Sample, frame_id: str) -> Sample:
    return get_object_or_404(Sample, dataset_id=video.dataset_id, pk=frame_id,
                             dedupe_key__startswith=f"frame:{video.pk}:")


def progress(job: LabelingJob) -> dict:
    """Labeled and total samples (videos only for video jobs), as the list shows `P% (labeled/total)`."""
    if job.labeling_type == LabelType.VIDEO:
        counts = job_samples(job).aggregate(total=Count("pk"), labeled=Count("pk", filter=Q(
            label_status=LabelStatus.LABELED)), to_confirm=Count("pk", filter=Q(label_status=LabelStatus.TO_CONFIRM)))
    else:
        dataset = job.dataset
        counts = {"total": dataset.sample_count, "labeled": dataset.labeled_count, "to_confirm": None}
    total, labeled = counts["total"], counts["labeled"]
    percent = int(100 * labeled / total) if total else 0
    return {**counts, "percent": percent, "text": f"{percent}% ({labeled}/{total})"}


def to_confirm_count(job: LabelingJob) -> int:
    """Smart-labeling results awaiting confirmation (annotated by `jobs_in`, else counted)."""
    if hasattr(job, "to_confirm"):
        return job.to_confirm
    return job_samples(job).filter(label_status=LabelStatus.TO_CONFIRM).count()


def tab_counts(job: LabelingJob) -> dict[str, int]:
    rows = job_samples(job).values("label_status").annotate(n=Count("pk")).order_by()
    counts = {row["label_status"]: row["n"] for row in rows}
    out = {status.value: counts.get(status.value, 0) for status in LabelStatus}
    out["all"] = sum(counts.values())
    return out


def label_stats(job: LabelingJob) -> list[dict]:
    """Item 13: every label with its colour, kind, shortcut and the number of samples carrying it."""
    settings = {s.label_id: s for s in LabelSetting.objects.filter(job=job)}
    rows = (Label.objects.filter(dataset_id=job.dataset_id)
            .annotate(samples=Count("annotations__sample", distinct=True)).order_by("id"))
    out = []
    for label in rows:
        setting = settings.get(label.pk)
        out.append({"id": label.pk, "name": label.name, "color": label.color, "kind": label.kind,
                    "category": label.category, "attributes": label.attributes, "samples": label.samples,
                    "from_label": label.from_label_id, "to_label": label.to_label_id,
                    "shortcut": setting.shortcut if setting else "",
                    "protected": bool(setting and setting.protected)})
    return out


def samples_for_tab(job: LabelingJob, params) -> QuerySet[Sample]:
    """The detail page's samples: tab (`status`) plus the image filters of item 15; raises FilterError."""
    flt = SampleFilter.from_params(params)
    return flt.apply(job_samples(job), job.dataset).order_by("-created_at", "-id")


def next_sample(job: LabelingJob, *, after: Sample | None, status: str = LabelStatus.UNLABELED) -> Sample | None:
    """The sample after `after` in the job's order (newest first) with `status` ("all": any).

    Keyset on (created_at, id) walks the dataset/status index: constant time on 100,000 samples.
    It wraps to the start once, so the last unlabeled sample still leads to earlier ones.
    """
    qs = job_samples(job)
    if status != "all":
        qs = qs.filter(label_status=status)
    qs = qs.order_by("-created_at", "-id")
    if after is not None:
        # The redundant `created_at <= …` is what keeps this an index range scan: with only the
        # OR, SQLite's planner (once ANALYZE has run) merges two index searches and sorts every
        # older sample — 40 ms at 100,000 — and PostgreSQL filters instead of seeking too.
        later = qs.filter(Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, id__lt=after.pk),
                          created_at__lte=after.created_at).first()
        if later is not None:
            return later
        return qs.exclude(pk=after.pk).first()
    return qs.first()


def annotation_payload(annotation: Annotation, label: Label | None) -> dict:
    """One annotation as the JSON API serves it (the payload a save accepts, plus provenance)."""
    properties = dict(annotation.properties or {})
    out = {
        "id": annotation.pk,
        "label": label.name if label else None,
        "label_id": annotation.label_id,
        "shape": annotation.shape,
        "geometry": annotation.geometry,
        "ref_id": annotation.ref_id,
        "source": annotation.source,
        "annotated_by": annotation.annotated_by,
        "confidence": annotation.confidence,
        "created_at": annotation.created_at.isoformat() if annotation.created_at else None,
    }
    if properties.pop(LINE_STYLE_KEY, None) == "dashed":
        out["style"] = "dashed"
    if CONTENT_KEY in properties:
        out["content"] = properties.pop(CONTENT_KEY)
    out["attributes"] = {k: v for k, v in properties.items() if not k.startswith("@")}
    return out


def annotations_of(sample: Sample) -> list[dict]:
    rows = list(Annotation.objects.filter(sample=sample).select_related("label").order_by("id"))
    return [annotation_payload(a, a.label) for a in rows]


def last_change(sample: Sample) -> dict:
    """Who last changed the sample's annotations and when (shown with a 409)."""
    latest = Annotation.objects.filter(sample=sample).order_by("-updated_at").values("annotated_by", "updated_at").first()
    return {"by": latest["annotated_by"] if latest else "", "at": sample.updated_at.isoformat()}


def frames_of(video: Sample) -> list[dict]:
    """Item 46: the video's labeled time points, each with its annotations, in time order."""
    frames = list(Sample.objects.filter(dataset_id=video.dataset_id, dedupe_key__startswith=f"frame:{video.pk}:"))
    by_frame: dict[str, list] = {f.pk: [] for f in frames}
    for ann in Annotation.objects.filter(sample__in=frames).select_related("label").order_by("id"):
        by_frame[ann.sample_id].append(annotation_payload(ann, ann.label))
    out = [{"id": f.pk, "time": f.properties.get("@modelarts:time_in_video"), "version": f.annotation_version,
            "width": f.width, "height": f.height, "annotations": by_frame[f.pk]} for f in frames]
    return sorted(out, key=lambda item: item["time"] or 0)


def sample_kind(job: LabelingJob) -> str:
    return SCENE_OF_TYPE.get(job.labeling_type, "")


# ---- quick review (spec §5.7, item 32) ---------------------------------------------------------------------------

REVIEW_TYPES = (LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION)
REVIEW_SORTS = {"area": "Annotated area, smallest first", "-area": "Annotated area, largest first",
                "ratio": "Aspect ratio (width / height), narrowest first",
                "-ratio": "Aspect ratio (width / height), widest first"}
REVIEW_PAGE = 24  # thumbnails per review page: each is an editable drawing, so a page stays light


def _extent(shape: str, g: dict) -> tuple[float, float, float]:
    """(area, width, height) of one stored shape; lines and points have no area."""
    import math

    if shape == "bndbox":
        w, h = g["xmax"] - g["xmin"], g["ymax"] - g["ymin"]
        return w * h, w, h
    if shape == "circle":
        return math.pi * g["r"] ** 2, 2 * g["r"], 2 * g["r"]
    if shape in ("polygon", "line"):
        pts = g.get("points") or []
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        w, h = (max(xs) - min(xs), max(ys) - min(ys)) if pts else (0, 0)
        if shape == "line":
            return 0.0, w, h
        return 0.5 * abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]))), w, h
    return 0.0, 0.0, 0.0


def review_order(job: LabelingJob, *, label_id: int | None, sort: str) -> list[str]:
    """The labeled samples carrying `label_id` (any label when None), ordered by `sort`.

    A sample's key is its most extreme shape of that label — the smallest area (or widest
    ratio, …) — so tiny or degenerate boxes come first, which is what a reviewer hunts for.
    """
    rows = Annotation.objects.filter(dataset_id=job.dataset_id, sample__label_status=LabelStatus.LABELED,
                                     shape__in=["bndbox", "polygon", "circle", "line", "point"])
    if label_id is not None:
        rows = rows.filter(label_id=label_id)
    reverse = sort.startswith("-")
    keys: dict[str, float] = {}
    for sample_id, shape, geometry in rows.values_list("sample_id", "shape", "geometry").iterator(chunk_size=2000):
        area, w, h = _extent(shape, geometry or {})
        value = area if sort.lstrip("-") == "area" else (w / h if h else float("inf") if w else 0.0)
        if sample_id not in keys:
            keys[sample_id] = value
        else:
            keys[sample_id] = max(keys[sample_id], value) if reverse else min(keys[sample_id], value)
    return sorted(keys, key=lambda s: (keys[s], s), reverse=reverse)


def review_items(job: LabelingJob, sample_ids: list[str]) -> list[dict]:
    """The review page's items: each sample with its size, version and every annotation."""
    samples = {s.pk: s for s in Sample.objects.filter(dataset_id=job.dataset_id, pk__in=sample_ids)}
    annotations: dict[str, list] = {pk: [] for pk in samples}
    for ann in Annotation.objects.filter(sample_id__in=list(samples)).select_related("label").order_by("id"):
        annotations[ann.sample_id].append(annotation_payload(ann, ann.label))
    out = []
    for pk in sample_ids:
        sample = samples.get(pk)
        if sample is None:
            continue
        out.append({"id": pk, "file_name": sample.file_name, "width": sample.width, "height": sample.height,
                    "version": sample.annotation_version, "annotations": annotations[pk]})
    return out


# ---- add data: the import history (spec §3.6) -------------------------------------------------------------------

def import_history(job: LabelingJob):
    """The dataset's imports, newest first (the "view history" table of "Add data")."""
    from apps.datasets.choices import OperationKind
    from apps.datasets.selectors import operations_of

    return operations_of(job.dataset, kind=OperationKind.IMPORT)


def auto_group_history(job: LabelingJob):
    """The dataset's auto-grouping tasks, newest first (the All tab's "Auto-grouping > Task history")."""
    from apps.datasets.choices import OperationKind
    from apps.datasets.selectors import operations_of

    return operations_of(job.dataset, kind=OperationKind.AUTO_GROUP)


def auto_group_running(job: LabelingJob):
    """The newest queued or running auto-grouping task of the job's dataset, else None."""
    from apps.datasets.choices import OperationStatus

    return auto_group_history(job).filter(status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING]).first()


def import_row(operation) -> dict:
    """One history row (spec §3.6): created, mode, path, total, imported, imported labeled, status.

    Imports that ran before labeled samples were counted report None for `imported_labeled`.
    """
    result = operation.result or {}
    params = operation.params or {}
    imported = result.get("created", 0)
    total = imported + sum(result.get(k, 0) for k in ("existing", "rejected", "filtered"))
    return {"id": operation.pk, "uid": operation.uid, "created_at": operation.created_at.isoformat(),
            "mode": "Local upload" if params.get("source") == "upload" else "Storage path", "path": params.get("path", ""),
            "labeled": params.get("labeled"), "total": total, "imported": imported,
            "imported_labeled": result.get("labeled"), "imported_annotations": result.get("annotations", 0),
            "status": operation.status,
            "status_display": operation.get_status_display()}
