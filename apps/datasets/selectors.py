"""Read queries of the Data section; every object from a URL goes through one of the accessors here."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.core.scoping import get_for_user

from .choices import LabelStatus, Usage
from .models import Annotation, Dataset, DatasetOperation, DatasetVersion, Label, Sample, SampleAttribute


def datasets_in(workspace) -> QuerySet[Dataset]:
    """Datasets of one workspace, with what the list page shows."""
    if workspace is None:
        return Dataset.objects.none()
    return Dataset.objects.in_workspace(workspace).select_related("current_version", "created_by")


def dataset_get_for_user(user, pk) -> Dataset:
    """The dataset if the user belongs to its workspace, else Http404."""
    return get_for_user(Dataset.objects.select_related("workspace", "current_version"), user, pk=pk)


def operation_get_for_user(user, pk) -> DatasetOperation:
    return get_for_user(DatasetOperation.objects.select_related("dataset", "dataset__workspace", "version"), user,
                        pk=pk)


def version_get(dataset: Dataset, pk) -> DatasetVersion:
    """A version of an already-authorised dataset, else Http404."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(DatasetVersion, dataset=dataset, pk=pk)


def sample_get(dataset: Dataset, pk: str) -> Sample:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Sample, dataset=dataset, pk=pk)


def label_counts(dataset: Dataset) -> list[dict]:
    """Per label: name, colour and the number of samples carrying it (the browser's label list)."""
    rows = (
        Label.objects.filter(dataset=dataset)
        .annotate(samples=Count("annotations__sample", distinct=True))
        .order_by("name")
        .values("id", "name", "color", "kind", "samples")
    )
    return list(rows)


def status_counts(dataset: Dataset) -> dict[str, int]:
    """Samples per tab: all, unlabeled, labeled, to_confirm."""
    counts = {row["label_status"]: row["n"] for row in
              Sample.objects.filter(dataset=dataset).values("label_status").annotate(n=Count("id")).order_by()}
    out = {status.value: counts.get(status.value, 0) for status in LabelStatus}
    out["all"] = sum(counts.values())
    return out


class FilterError(ValueError):
    """A filter value the user typed is malformed; `fields` maps the parameter to its message."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__(next(iter(fields.values()))[0])


TIME_WINDOWS = {"1d": dt.timedelta(days=1), "1m": dt.timedelta(days=30)}


@dataclass
class SampleFilter:
    """The sample browser's combinable filters (spec §15 items 28–29), parsed from query parameters.

    Parameters: `status` (tab), `label` (repeatable label ids: any of them), `usage`, `hard`
    (yes/no), `name` (file name or directory substring), `annotator`, `attr` (`name=value`),
    `time` (1d, 1m) or `since`/`until` (ISO dates), `ids` (explicit selection).
    """

    status: str = ""
    labels: list[int] = field(default_factory=list)
    usage: str | None = None
    hard: bool | None = None
    name: str = ""
    annotator: str = ""
    attr_name: str = ""
    attr_value: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    ids: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params) -> "SampleFilter":
        errors: dict[str, list[str]] = {}
        getlist = params.getlist if hasattr(params, "getlist") else (lambda k: params.get(k) or [])
        flt = cls()
        status = (params.get("status") or "").strip()
        if status and status != "all":
            if status not in LabelStatus.values:
                errors["status"] = [f'"{status}" is not a tab; choose all, {", ".join(LabelStatus.values)}.']
            flt.status = status
        for raw in getlist("label"):
            for part in str(raw).split(","):
                if part.strip():
                    try:
                        flt.labels.append(int(part))
                    except ValueError:
                        errors["label"] = [f'"{part}" is not a label id.']
        usage = params.get("usage")
        if usage not in (None, ""):
            usage = usage.strip().upper()
            if usage == "NONE":
                usage = ""
            if usage not in Usage.values:
                errors["usage"] = [f'"{params.get("usage")}" is not a usage; choose TRAIN, EVAL, TEST, INFERENCE or NONE.']
            flt.usage = usage
        hard = (params.get("hard") or "").strip().lower()
        if hard:
            if hard not in {"yes", "no", "true", "false"}:
                errors["hard"] = ['"hard" is yes or no.']
            flt.hard = hard in {"yes", "true"}
        flt.name = (params.get("name") or "").strip()
        flt.annotator = (params.get("annotator") or "").strip()
        attr = (params.get("attr") or "").strip()
        if attr:
            if "=" not in attr:
                errors["attr"] = ['A sample attribute filter is written name=value.']
            flt.attr_name, _, flt.attr_value = (s.strip() for s in attr.partition("="))
        window = (params.get("time") or "").strip()
        if window:
            if window not in TIME_WINDOWS:
                errors["time"] = ['"time" is 1d (within 1 day) or 1m (within 1 month); use since/until for a range.']
            else:
                flt.since = timezone.now() - TIME_WINDOWS[window]
        for key in ("since", "until"):
            raw = (params.get(key) or "").strip()
            if raw:
                try:
                    moment = dt.datetime.fromisoformat(raw)
                except ValueError:
                    errors[key] = [f'"{raw}" is not a date; use YYYY-MM-DD or an ISO 8601 date and time.']
                    continue
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)
                if key == "until" and len(raw) == 10:
                    moment += dt.timedelta(days=1)  # a date-only upper bound includes that whole day
                setattr(flt, key, moment)
        flt.ids = [i for raw in getlist("ids") for i in str(raw).split(",") if i.strip()]
        if errors:
            raise FilterError(errors)
        return flt

    def apply(self, queryset: QuerySet[Sample], dataset: Dataset) -> QuerySet[Sample]:
        qs = queryset
        if self.status:
            qs = qs.filter(label_status=self.status)
        if self.usage is not None:
            qs = qs.filter(usage=self.usage)
        if self.hard is not None:
            qs = qs.filter(hard=self.hard)
        if self.labels:
            qs = qs.filter(Exists(Annotation.objects.filter(sample=OuterRef("pk"), label_id__in=self.labels)))
        if self.annotator:
            qs = qs.filter(Exists(Annotation.objects.filter(dataset=dataset, sample=OuterRef("pk"),
                                                            annotated_by=self.annotator)))
        if self.attr_name:
            qs = qs.filter(Exists(SampleAttribute.objects.filter(
                dataset=dataset, name=self.attr_name, value=self.attr_value, sample=OuterRef("pk"))))
        if self.name:
            qs = qs.filter(Q(file_name__icontains=self.name) | Q(directory__icontains=self.name))
        if self.since:
            qs = qs.filter(created_at__gte=self.since)
        if self.until:
            qs = qs.filter(created_at__lt=self.until)
        if self.ids:
            qs = qs.filter(pk__in=self.ids)
        return qs

    @property
    def is_active(self) -> bool:
        return bool(self.labels or self.usage is not None or self.hard is not None or self.name or self.annotator
                    or self.attr_name or self.since or self.until or self.ids)


def samples_filtered(dataset: Dataset, flt: SampleFilter) -> QuerySet[Sample]:
    """The dataset's samples narrowed by `flt`, newest first (the order the indexes serve)."""
    return flt.apply(Sample.objects.filter(dataset=dataset), dataset).order_by("-created_at", "-id")


def annotators_of(dataset: Dataset) -> list[str]:
    return list(Annotation.objects.filter(dataset=dataset).order_by("annotated_by")
                .values_list("annotated_by", flat=True).distinct()[:200])


def attribute_names_of(dataset: Dataset) -> list[str]:
    return list(SampleAttribute.objects.filter(dataset=dataset).order_by("name")
                .values_list("name", flat=True).distinct()[:200])


def operations_of(dataset: Dataset, kind: str | None = None) -> QuerySet[DatasetOperation]:
    qs = DatasetOperation.objects.filter(dataset=dataset).select_related("version", "created_by")
    return qs.filter(kind=kind) if kind else qs
