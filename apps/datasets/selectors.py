"""Read queries of the Data section; every object from a URL goes through one of the accessors here."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property

from django.core.cache import cache
from django.core.paginator import Paginator

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.core.scoping import get_for_user, get_with_role

from .choices import DataType, LabelStatus, Usage, VersionStatus
from .models import (Annotation, Dataset, DatasetOperation, DatasetVersion, Label, Sample, SampleAttribute,
                     SampleLabel, VersionSample, VersionSampleAnnotator, VersionSampleAttribute, VersionSampleLabel)


def datasets_in(workspace) -> QuerySet[Dataset]:
    """Datasets of one workspace, with what the list page shows."""
    if workspace is None:
        return Dataset.objects.none()
    return Dataset.objects.in_workspace(workspace).select_related("current_version", "created_by")


def dataset_get_for_user(user, pk) -> Dataset:
    """The dataset if the user belongs to its workspace, else Http404 (the role comes along: see get_with_role)."""
    return get_with_role(Dataset.objects.select_related("workspace", "current_version"), user, pk=pk)


def operation_get_for_user(user, pk) -> DatasetOperation:
    return get_for_user(DatasetOperation.objects.select_related("dataset", "dataset__workspace", "version"), user,
                        pk=pk)


def _not_browsable(version: DatasetVersion) -> str:
    """Why `version` cannot be browsed sample by sample, or "" when it can.

    Only a published (Normal) version qualifies, and only one published since versions record
    their samples (VersionSample); older ones open through their manifest on the Versions tab.
    """
    if version.status != VersionStatus.NORMAL:
        return (f"Version {version.name} is {version.get_status_display().lower()}; only a published (Normal) "
                "version can be browsed.")
    if version.sample_count and not version.entries.exists():
        return (f"Version {version.name} was published before versions recorded their samples; open it from the "
                "Versions tab to read its manifest.")
    return ""


def version_for_browsing(dataset: Dataset, flt: SampleFilter) -> DatasetVersion | None:
    """The version `flt` narrows to, if any; FilterError when it cannot be browsed (item 46).

    A version id this dataset does not have is a FilterError here (the list API's contract);
    the detail page uses `version_shown`, where it is a 404.
    """
    if not flt.version:
        return None
    version = DatasetVersion.objects.filter(dataset=dataset, pk=flt.version).first()
    if version is None:
        raise FilterError({"version": [f"Version {flt.version} is not a version of this dataset."]})
    problem = _not_browsable(version)
    if problem:
        raise FilterError({"version": [problem]})
    return version


@dataclass
class ShownData:
    """What the dataset detail's sample browser shows (item 46): a published version, read-only,
    or the working data (`version` None). `note` says why the current version is not the one
    shown when the page fell back to the working data on its own."""

    version: DatasetVersion | None = None
    note: str = ""


def version_shown(dataset: Dataset, flt: SampleFilter, requested: str) -> ShownData:
    """Which data the detail page shows, from its `version` parameter (`requested`, as typed).

    `<id>`: that version of this dataset (any other id, another workspace's included, is a
    404). `working` (or the older `live`): the working data. Absent or empty: the current
    version when it can be browsed, else the working data with a note. Table datasets do not
    switch versions (spec §9.1) and always show their working data. FilterError when the
    named version cannot be browsed.
    """
    from django.http import Http404

    if dataset.data_type == DataType.TABLE:
        if flt.version is not None:
            raise FilterError({"version": ["Table datasets do not switch versions; their samples are the working "
                                           "data."]})
        return ShownData()
    if flt.version is not None:
        version = DatasetVersion.objects.filter(dataset=dataset, pk=flt.version).first()
        if version is None:
            raise Http404("Not found.")
        problem = _not_browsable(version)
        if problem:
            raise FilterError({"version": [problem]})
        return ShownData(version)
    if requested.strip() or dataset.current_version_id is None:
        return ShownData()  # "working" (or "live") asked for explicitly, or nothing published is current
    current = dataset.current_version
    problem = _not_browsable(current)
    if problem:
        return ShownData(note=f"The working data is shown: {problem}")
    return ShownData(current)


def version_param(raw: str) -> int | None:
    """A `version` parameter as typed → a version id, or None for the working data (empty,
    "working", or its older name "live"). FilterError when it is neither."""
    raw = (raw or "").strip()
    if raw in ("", "working", "live"):
        return None
    if not raw.isdigit():
        raise FilterError({"version": [f'"{raw}" is not a version id; use "working" for the working data.']})
    return int(raw)


def sample_in_version(dataset: Dataset, sample: Sample, version_id: int) -> tuple[DatasetVersion, VersionSample | None]:
    """For the sample page's `?version=<id>`: that version of `dataset` and the sample's row in
    it (None when the version does not contain the sample).

    A version id this dataset does not have is a 404 (as on the detail page); a version that
    cannot be browsed is a FilterError with the reason.
    """
    from django.http import Http404

    version = DatasetVersion.objects.filter(dataset=dataset, pk=version_id).first()
    if version is None:
        raise Http404("Not found.")
    problem = _not_browsable(version)
    if problem:
        raise FilterError({"version": [problem]})
    entry = VersionSample.objects.filter(version=version, sample=sample).first()
    if entry is not None:
        labels = (VersionSampleLabel.objects.filter(version=version, sample=sample).order_by("id")
                  .values_list("label__name", "label__color"))
        entry.published = Published(entry.usage, entry.label_status, entry.hard,
                                    [{"name": name, "color": color} for name, color in labels])
    return version, entry


def browsable_versions(dataset: Dataset) -> list[DatasetVersion]:
    """The versions the browser's selector offers: published ones, newest first (table datasets: none)."""
    if dataset.data_type == DataType.TABLE:
        return []  # spec §9.1: table datasets cannot switch versions
    return list(dataset.versions.filter(status=VersionStatus.NORMAL).order_by("-created_at", "-id"))


def version_get(dataset: Dataset, pk) -> DatasetVersion:
    """A version of an already-authorised dataset, else Http404."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(DatasetVersion, dataset=dataset, pk=pk)


def sample_get(dataset: Dataset, pk: str) -> Sample:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Sample, dataset=dataset, pk=pk)


def label_counts(dataset: Dataset, version: DatasetVersion | None = None) -> list[dict]:
    """Per label: name, colour and the number of samples carrying it (the browser's label list);
    with `version`, the number of its samples that carried the label when it was published."""
    # Counted on the label indexes (one row per sample and label), not by de-duplicating annotations.
    if version is None:
        index, key = SampleLabel.objects.filter(dataset=dataset), ""
    else:
        # A version's rows never change, but a sample deleted since takes its rows along (a revision bump).
        index = VersionSampleLabel.objects.filter(version=version)
        key = f"datasets:version-labels:{dataset.uid}:{dataset.revision}:{version.pk}"
    counts = _cached(key, lambda: dict(index.values("label_id").annotate(n=Count("id"))
                                       .values_list("label_id", "n").order_by()))
    rows = Label.objects.filter(dataset=dataset).order_by("name").values("id", "name", "color", "kind")
    return [{**row, "samples": counts.get(row["id"], 0)} for row in rows]


def status_counts(dataset: Dataset, version: DatasetVersion | None = None) -> dict[str, int]:
    """Samples per tab: all, unlabeled, labeled, to_confirm; with `version`, its samples by the
    label status they were published with.

    A version's counts group its rows (tens of ms at 100,000 on SQLite), so they are cached like
    the page totals: per dataset revision (see CountCachedPaginator), which a sample deleted
    from the version bumps.
    """
    if version is None:
        rows, key = Sample.objects.filter(dataset=dataset), ""
    else:
        rows = VersionSample.objects.filter(version=version)
        key = f"datasets:version-status:{dataset.uid}:{dataset.revision}:{version.pk}"

    def compute() -> dict[str, int]:
        counts = {row["label_status"]: row["n"] for row in
                  rows.values("label_status").annotate(n=Count("id")).order_by()}
        out = {status.value: counts.get(status.value, 0) for status in LabelStatus}
        out["all"] = sum(counts.values())
        return out

    return _cached(key, compute)


def _cached(key: str, compute):
    """`compute()`, kept under `key` for COUNT_CACHE_SECONDS (no key: not cached). A cache that is
    down only means computing every time."""
    if not key:
        return compute()
    try:
        value = cache.get(key)
    except Exception:
        value = None
    if value is None:
        value = compute()
        try:
            cache.set(key, value, COUNT_CACHE_SECONDS)
        except Exception:
            logger.warning("count cache unavailable", exc_info=True)
    return value


class FilterError(ValueError):
    """A filter value the user typed is malformed; `fields` maps the parameter to its message."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__(next(iter(fields.values()))[0])


logger = logging.getLogger(__name__)

TIME_WINDOWS = {"1d": dt.timedelta(days=1), "1m": dt.timedelta(days=30)}


@dataclass
class SampleFilter:
    """The sample browser's combinable filters (spec §15 items 28–29), parsed from query parameters.

    Parameters: `status` (tab), `label` (repeatable label ids: any of them), `usage`, `hard`
    (yes/no), `name` (file name or directory substring), `annotator`, `attr` (`name=value`),
    `time` (1d, 1m) or `since`/`until` (ISO dates), `ids` (explicit selection), `version` (a
    published version's id: only the samples it contains; check it with `version_for_browsing`
    or `version_shown`; `working` or empty: no version condition).
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
    version: int | None = None

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
        try:
            flt.version = version_param(params.get("version") or "")
        except FilterError as exc:
            errors.update(exc.fields)
        if errors:
            raise FilterError(errors)
        return flt

    def recorded_conditions(self, dataset: Dataset, sample: str) -> list[Exists]:
        """The annotator and attribute conditions on the sample that the outer query's column
        `sample` names: read from what version `self.version` recorded at publish
        (VersionSampleAnnotator, VersionSampleAttribute), else from the working data."""
        ref, out = OuterRef(sample), []
        if self.annotator:
            out.append(Exists(
                VersionSampleAnnotator.objects.filter(version_id=self.version, annotated_by=self.annotator, sample=ref)
                if self.version else
                Annotation.objects.filter(dataset=dataset, sample=ref, annotated_by=self.annotator)))
        if self.attr_name:
            rows = (VersionSampleAttribute.objects.filter(version_id=self.version) if self.version
                    else SampleAttribute.objects.filter(dataset=dataset))
            out.append(Exists(rows.filter(name=self.attr_name, value=self.attr_value, sample=ref)))
        return out

    def apply(self, queryset: QuerySet[Sample], dataset: Dataset) -> QuerySet[Sample]:
        """`queryset` narrowed by every condition. With a version, status, usage, hard, labels,
        annotators and attributes are the values it was published with; name and upload time
        (which do not change) are read from the samples."""
        qs = queryset
        if self.version:
            published = VersionSample.objects.filter(version_id=self.version, sample=OuterRef("pk"))
            qs = qs.filter(Exists(self.state_narrowed(published)))
            if self.labels:
                qs = qs.filter(Exists(VersionSampleLabel.objects.filter(
                    version_id=self.version, sample=OuterRef("pk"), label_id__in=self.labels)))
        else:
            qs = self.state_narrowed(qs)
            if self.labels:
                qs = qs.filter(Exists(Annotation.objects.filter(sample=OuterRef("pk"), label_id__in=self.labels)))
        qs = qs.filter(*self.recorded_conditions(dataset, "pk"))
        if self.name:
            qs = qs.filter(Q(file_name__icontains=self.name) | Q(directory__icontains=self.name))
        if self.since:
            qs = qs.filter(created_at__gte=self.since)
        if self.until:
            qs = qs.filter(created_at__lt=self.until)
        if self.ids:
            qs = qs.filter(pk__in=self.ids)
        return qs

    def state_narrowed(self, queryset: QuerySet) -> QuerySet:
        """`queryset` (rows with label_status, usage and hard: samples or a version's rows) narrowed
        by the status tab and the usage and hard-example filters."""
        if self.status:
            queryset = queryset.filter(label_status=self.status)
        if self.usage is not None:
            queryset = queryset.filter(usage=self.usage)
        if self.hard is not None:
            queryset = queryset.filter(hard=self.hard)
        return queryset

    @property
    def is_active(self) -> bool:
        return bool(self.labels or self.usage is not None or self.hard is not None or self.name or self.annotator
                    or self.attr_name or self.since or self.until or self.ids or self.version)


def samples_filtered(dataset: Dataset, flt: SampleFilter) -> QuerySet[Sample]:
    """The dataset's samples narrowed by `flt`, newest first, as a queryset (exports, bulk work)."""
    return flt.apply(Sample.objects.filter(dataset=dataset), dataset).order_by("-created_at", "-id")


class IndexedSamples:
    """A label-filtered sample list read through the `SampleLabel` index, for pages.

    Behaves like the sliceable, countable sequence Django's Paginator needs: `count()` counts
    index rows (one narrow range per label), a slice fetches the page's sample ids from the
    index in browser order and then those samples by primary key.
    """

    ordered = True

    def __init__(self, index: QuerySet, distinct: bool, prefetch: tuple[str, ...] = ()):
        self.index = index
        self.distinct = distinct
        self.prefetch = prefetch

    def prefetch_related(self, *lookups: str) -> "IndexedSamples":
        return IndexedSamples(self.index, self.distinct, self.prefetch + lookups)

    def count(self) -> int:
        if self.distinct:
            return self.index.values("sample_id").distinct().count()
        return self.index.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return self[key:key + 1][0]
        rows = self.index.order_by("-created_at", "-sample_id")
        if self.distinct:
            ids = [sample_id for sample_id, _ in rows.values_list("sample_id", "created_at").distinct()[key]]
        else:
            ids = list(rows.values_list("sample_id", flat=True)[key])
        found = Sample.objects.filter(pk__in=ids).prefetch_related(*self.prefetch).in_bulk()
        return [found[pk] for pk in ids if pk in found]

    def __iter__(self):
        return iter(self[0:self.count()])


@dataclass
class Published:
    """What a published version holds for one sample (VersionSample, VersionSampleLabel): its
    usage, label status and hard flag, and its labels as `{"name", "color"}` in annotation order."""

    usage: str
    label_status: str
    hard: bool
    labels: list[dict] = field(default_factory=list)

    def get_label_status_display(self) -> str:
        return LabelStatus(self.label_status).label if self.label_status in LabelStatus.values else self.label_status


class VersionSamples(IndexedSamples):
    """A version's samples read through its VersionSample (or, with labels, VersionSampleLabel) rows.

    Like IndexedSamples for the Paginator; each sample of a page also carries `published`
    (a `Published`): two more queries a page, whatever its size.
    """

    def __init__(self, index: QuerySet, distinct: bool, version_id: int, prefetch: tuple[str, ...] = ()):
        super().__init__(index, distinct, prefetch)
        self.version_id = version_id

    def prefetch_related(self, *lookups: str) -> "VersionSamples":
        return VersionSamples(self.index, self.distinct, self.version_id, self.prefetch + lookups)

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return self[key:key + 1][0]
        rows = self.index.order_by("-created_at", "-sample_id").values_list(
            "sample_id", "usage", "label_status", "hard", "created_at")
        # Several labels: one row per label a sample carries, all with the same published values.
        rows = list((rows.distinct() if self.distinct else rows)[key])
        ids = [row[0] for row in rows]
        found = Sample.objects.filter(pk__in=ids).prefetch_related(*self.prefetch).in_bulk()
        labels: dict[str, list[dict]] = {}
        for sample_id, name, color in (VersionSampleLabel.objects.filter(version_id=self.version_id, sample_id__in=ids)
                                       .order_by("id").values_list("sample_id", "label__name", "label__color")):
            labels.setdefault(sample_id, []).append({"name": name, "color": color})
        out = []
        for sample_id, usage, label_status, hard, _ in rows:
            sample = found.get(sample_id)
            if sample is not None:
                sample.published = Published(usage, label_status, hard, labels.get(sample_id, []))
                out.append(sample)
        return out


class CountCachedPaginator(Paginator):
    """A Paginator whose total comes from the cache while the dataset's revision is unchanged.

    Counting a filter over 100,000 samples costs more than fetching a page; the same filter
    paged through gives the same total until a write bumps `Dataset.revision`, which is part
    of the key. A cache that is down only means counting every time.
    """

    def __init__(self, object_list, per_page, *, cache_key: str, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cache_key = cache_key

    @cached_property
    def count(self) -> int:
        try:
            cached = cache.get(self.cache_key)
        except Exception:  # the count is still exact without the cache
            cached = None
        if cached is not None:
            return cached
        value = super().count
        try:
            cache.set(self.cache_key, value, COUNT_CACHE_SECONDS)
        except Exception:
            logger.warning("sample count cache unavailable", exc_info=True)
        return value


# Ten minutes: long enough to page through a result, short enough that abandoned keys go away.
COUNT_CACHE_SECONDS = 600


def sample_count_key(dataset: Dataset, flt: SampleFilter) -> str:
    signature = json.dumps([flt.status, sorted(flt.labels), flt.usage, flt.hard, flt.name, flt.annotator,
                            flt.attr_name, flt.attr_value, flt.since.isoformat() if flt.since else None,
                            flt.until.isoformat() if flt.until else None, sorted(flt.ids), flt.version])
    digest = hashlib.sha1(signature.encode()).hexdigest()
    # The random uid, not the pk: a database rebuilt beside a long-lived cache may reuse pks.
    return f"datasets:sample-count:{dataset.uid}:{dataset.revision}:{digest}"


def samples_paginator(dataset: Dataset, flt: SampleFilter, source, per_page: int) -> CountCachedPaginator:
    return CountCachedPaginator(source, per_page, cache_key=sample_count_key(dataset, flt))


def samples_page_source(dataset: Dataset, flt: SampleFilter):
    """What the sample browser and list API page through: the index when labels are filtered
    (the expensive case at scale), else the plain queryset, whose indexes serve the rest; a
    version's rows when `flt.version` is set (see `version_page_source`)."""
    if flt.version:
        return version_page_source(dataset, flt)
    if not flt.labels:
        return samples_filtered(dataset, flt)
    # The labels are checked against the dataset here, so the index scan needs no dataset
    # condition and reads the index alone (a covering range; the condition cost a row lookup per
    # skipped row, ~2 ms on a deep page on PostgreSQL). Another dataset's label matches nothing.
    labels = list(Label.objects.filter(dataset=dataset, pk__in=flt.labels).values_list("pk", flat=True))
    index = SampleLabel.objects.filter(label_id__in=labels)
    if flt.usage is not None:
        index = index.filter(usage=flt.usage)
    if flt.status:
        index = index.filter(label_status=flt.status)
    if flt.hard is not None:
        index = index.filter(sample__hard=flt.hard)
    return IndexedSamples(_index_narrowed(index, dataset, flt), distinct=len(set(flt.labels)) > 1)


def version_page_source(dataset: Dataset, flt: SampleFilter) -> VersionSamples:
    """The samples of version `flt.version` (checked by the caller) narrowed by `flt`, newest first.

    Status, usage, hard and labels are matched against the values the version was published
    with, each a range of one version_sample_* or version_label_* index, and so are annotators
    and attributes; name and upload time (which do not change) are read from the samples.
    """
    if flt.labels:
        labels = list(Label.objects.filter(dataset=dataset, pk__in=flt.labels).values_list("pk", flat=True))
        index = VersionSampleLabel.objects.filter(version_id=flt.version, label_id__in=labels)
    else:
        index = VersionSample.objects.filter(version_id=flt.version)
    index = flt.state_narrowed(index)
    return VersionSamples(_index_narrowed(index, dataset, flt), distinct=len(set(flt.labels)) > 1,
                          version_id=flt.version)


def _index_narrowed(index: QuerySet, dataset: Dataset, flt: SampleFilter) -> QuerySet:
    """An index queryset (SampleLabel, VersionSample, VersionSampleLabel: rows with `sample_id`
    and `created_at`) narrowed by `flt`'s upload-time, name, annotator, attribute and id
    conditions (annotators and attributes as `flt.recorded_conditions` reads them)."""
    if flt.since:
        index = index.filter(created_at__gte=flt.since)
    if flt.until:
        index = index.filter(created_at__lt=flt.until)
    if flt.name:
        index = index.filter(Q(sample__file_name__icontains=flt.name) | Q(sample__directory__icontains=flt.name))
    index = index.filter(*flt.recorded_conditions(dataset, "sample_id"))
    if flt.ids:
        index = index.filter(sample_id__in=flt.ids)
    return index


def annotators_of(dataset: Dataset, version: DatasetVersion | None = None) -> list[str]:
    """The annotator filter's choices (at most 200): of the working data, or as `version` recorded them."""
    rows = (VersionSampleAnnotator.objects.filter(version=version) if version is not None
            else Annotation.objects.filter(dataset=dataset))
    return list(rows.order_by("annotated_by").values_list("annotated_by", flat=True).distinct()[:200])


def attribute_names_of(dataset: Dataset, version: DatasetVersion | None = None) -> list[str]:
    """The attribute filter's names (at most 200): of the working data, or as `version` recorded them."""
    rows = (VersionSampleAttribute.objects.filter(version=version) if version is not None
            else SampleAttribute.objects.filter(dataset=dataset))
    return list(rows.order_by("name").values_list("name", flat=True).distinct()[:200])


def operations_of(dataset: Dataset, kind: str | None = None) -> QuerySet[DatasetOperation]:
    qs = DatasetOperation.objects.filter(dataset=dataset).select_related("version", "created_by")
    return qs.filter(kind=kind) if kind else qs


def versions_for_training(user, *, workspace=None, label_type: str = "", format: str | Collection[str] = "",
                          split: str = "any") -> QuerySet[DatasetVersion]:
    """Published (Normal) versions the user may read, for the training job's dataset picker (item 48).

    `workspace` narrows them to that workspace (the job's); `label_type` to one label type; `format`
    to one version format or, given a collection, to any of those; `split` is "split" (only versions
    published with a train/validation split), "unsplit", or "any". Versions without a storage folder
    cannot be trained on and are left out. An unknown format or split raises ValueError.
    """
    from .choices import VersionFormat

    qs = (DatasetVersion.objects.filter(dataset__in=Dataset.objects.visible_to(user), status=VersionStatus.NORMAL)
          .exclude(storage_uri="").select_related("dataset").order_by("dataset__name", "-created_at", "-id"))
    if workspace is not None:
        qs = qs.filter(dataset__workspace=workspace)
    if label_type:
        qs = qs.filter(label_type=label_type)
    formats = [format] if isinstance(format, str) else list(format)
    formats = [f for f in formats if f]
    unknown = [f for f in formats if f not in VersionFormat.values]
    if unknown:
        raise ValueError(f'format is one of {", ".join(VersionFormat.values)}, not {unknown[0]!r}.')
    if formats:
        qs = qs.filter(format__in=formats)
    if split == "split":
        qs = qs.filter(split_enabled=True)
    elif split == "unsplit":
        qs = qs.filter(split_enabled=False)
    elif split != "any":
        raise ValueError(f'split is "split", "unsplit" or "any", not {split!r}.')
    return qs
