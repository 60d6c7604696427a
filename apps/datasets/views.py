"""Pages of the Data section: dataset list and create form, the detail page's tabs, and the forms
behind its buttons. Views are thin: objects come from scoped accessors (another workspace's
dataset is a 404), writes go through services, refusals come back as inline errors."""
from __future__ import annotations

import dataclasses
import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.forms import ConfirmNameForm
from apps.core.paths import parse
from apps.core.permissions import has_perm, require_perm
from apps.core.storage import NotFound, get_storage
from apps.core.tables import render_table

from . import charts, selectors, services
from .choices import (
    AUTO_GROUP_LABEL_TYPES,
    EXPORT_LABEL_TYPES,
    FEATURE_LABEL_TYPES,
    FORMATS_BY_LABEL_TYPE,
    HARD_ATTRIBUTE_LABEL_TYPES,
    LABELED_AT_CREATE,
    SPLIT_LABEL_TYPES,
    DataType,
    ExportMethod,
    FormatCategory,
    ImportFormat,
    LabelStatus,
    OperationKind,
    Shape,
    VersionFormat,
    VersionStatus,
)
from .exports import export_start
from .forms import (
    AutoGroupForm,
    DatasetCreateForm,
    DatasetEditForm,
    ExportForm,
    ImportForm,
    LabelForm,
    ProcessingForm,
    PublishForm,
    UploadForm,
    create_form_config,
    default_dataset_name,
)
from .models import Dataset, Label
from .tables import DatasetTable, OperationTable
from .uploads import dataset_upload
from .versions import published_annotations, version_publish

SAMPLE_PAGE_SIZES = (30, 60, 120)


def _dataset(request, pk, action: str = "dataset:view") -> Dataset:
    dataset = selectors.dataset_get_for_user(request.user, pk)
    require_perm(request.user, dataset.workspace, action)
    return dataset


def _field_errors(form, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form: per field where the form has it, else on top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _tabs(dataset: Dataset, active: str) -> list[dict]:
    tabs = [("samples", "Samples", "datasets:detail"), ("labels", "Labels", "datasets:labels"),
            ("versions", "Versions", "datasets:versions"), ("operations", "Task history", "datasets:operations")]
    if dataset.label_type in FEATURE_LABEL_TYPES or dataset.label_type in AUTO_GROUP_LABEL_TYPES:
        tabs.append(("features", "Data features", "datasets:features"))
    if dataset.data_type == DataType.IMAGE:
        tabs.append(("processing", "Processing", "datasets:processing"))
    return [{"label": label, "url": reverse(name, args=[dataset.pk]), "active": key == active}
            for key, label, name in tabs]


def _detail_context(request, dataset: Dataset, active: str) -> dict:
    workspace = dataset.workspace
    return {
        "dataset": dataset,
        "tabs": _tabs(dataset, active),
        "active_tab": active,
        "can_update": has_perm(request.user, workspace, "dataset:update"),
        "can_import": has_perm(request.user, workspace, "dataset:import"),
        "can_publish": has_perm(request.user, workspace, "dataset:publish"),
        "can_export": has_perm(request.user, workspace, "dataset:export") and (
            dataset.label_type in EXPORT_LABEL_TYPES or dataset.data_type == DataType.TEXT),
        "can_delete": has_perm(request.user, workspace, "dataset:delete"),
    }


# ---- list, create, edit, delete -------------------------------------------------------------------------------


@login_required
@require_GET
def dataset_list(request):
    if request.workspace is not None:
        require_perm(request.user, request.workspace, "dataset:view")
    table = DatasetTable(selectors.datasets_in(request.workspace), request.GET, id="datasets")
    context = {"table": table, "can_create": has_perm(request.user, request.workspace, "dataset:create")}
    return render_table(request, "datasets/dataset_list.html", context, table)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_create(request):
    require_perm(request.user, request.workspace, "dataset:create")
    form = DatasetCreateForm(request.POST or None, user=request.user,
                             initial={"name": default_dataset_name()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            dataset = services.dataset_create(
                user=request.user, workspace=request.workspace, name=data["name"], description=data["description"],
                data_type=data["data_type"], label_type=data["label_type"], input_location=data["input_location"],
                output_location=data["output_location"], labeled=data["labeled"],
                import_format=data["import_format"], table_schema=data["table_schema"] or None,
                table_has_header=data["table_has_header"],
            )
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, f'Dataset "{dataset.name}" created.')
            return redirect("datasets:detail", dataset.pk)
    context = {"form": form, "config": create_form_config(), "labeled_types": sorted(LABELED_AT_CREATE),
               "formats": {k: list(v) for k, v in FORMATS_BY_LABEL_TYPE.items()}}
    return render(request, "datasets/dataset_create.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_edit(request, pk):
    dataset = _dataset(request, pk, "dataset:update")
    form = DatasetEditForm(request.POST or None, initial={"name": dataset.name, "description": dataset.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.dataset_update(user=request.user, dataset=dataset, **form.cleaned_data)
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, "Dataset updated.")
            return redirect("datasets:detail", dataset.pk)
    context = {**_detail_context(request, dataset, ""), "form": form, "title": "Modify dataset",
               "submit": "Save"}
    return render(request, "datasets/dataset_form_page.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_delete(request, pk):
    dataset = _dataset(request, pk, "dataset:delete")
    form = ConfirmNameForm(request.POST or None, expected=dataset.name)
    if request.method == "POST" and form.is_valid():
        services.dataset_delete(user=request.user, dataset=dataset)
        messages.success(request, f'Dataset "{dataset.name}" deleted. Its files stay in storage.')
        return redirect("datasets:list")
    context = {**_detail_context(request, dataset, ""), "form": form,
               "action": reverse("datasets:delete", args=[dataset.pk])}
    return render(request, "datasets/dataset_confirm_delete.html", context,
                  status=400 if request.method == "POST" else 200)


# ---- samples --------------------------------------------------------------------------------------------------


@login_required
@require_GET
def dataset_detail(request, pk):
    """The sample browser: status tabs with counts, combinable filters, grid or list, pages.

    It shows the current version's samples, read-only, unless `?version=` names another
    published version or `working` (spec §9.1, item 46; see `selectors.version_shown`). Actions
    that change data (import, sync, auto-grouping) are offered on the working data only.
    """
    dataset = _dataset(request, pk)
    errors: dict = {}
    requested = request.GET.get("version", "")
    try:
        flt = selectors.SampleFilter.from_params(request.GET)
    except selectors.FilterError as exc:
        errors, flt = exc.fields, selectors.SampleFilter()
    try:
        # A malformed filter still leaves the page on the data it would show; a malformed version id shows
        # the working data beside the message.
        shown = selectors.version_shown(dataset, flt, "working" if "version" in errors else requested)
    except selectors.FilterError as exc:
        errors, shown = {**errors, **exc.fields}, selectors.ShownData()
    version = shown.version
    # The version shown narrows the samples, the default (current) one like an explicit one; a refused
    # one does not.
    flt.version = version.pk if version is not None else None
    samples = selectors.samples_page_source(dataset, flt)
    try:
        size = int(request.GET.get("page_size") or SAMPLE_PAGE_SIZES[0])
    except ValueError:
        size = SAMPLE_PAGE_SIZES[0]
    size = size if size in SAMPLE_PAGE_SIZES else SAMPLE_PAGE_SIZES[0]
    if version is None:  # a version's page carries its published labels instead (selectors.VersionSamples)
        samples = samples.prefetch_related("annotations__label")
    page = selectors.samples_paginator(dataset, flt, samples, size).get_page(request.GET.get("page"))
    counts = selectors.status_counts(dataset, version=version)
    query = request.GET.copy()
    query.pop("page", None)
    status_tabs = []
    for key, label in (("all", "All"), (LabelStatus.UNLABELED, "Unlabeled"), (LabelStatus.LABELED, "Labeled"),
                       (LabelStatus.TO_CONFIRM, "To be confirmed")):
        q = query.copy()
        q["status"] = key
        status_tabs.append({"key": key, "label": label, "count": counts[key], "query": q.urlencode(),
                            "active": (flt.status or "all") == key})
    filter_query = query.copy()
    filter_query.pop("status", None)
    if version is not None:
        filter_query["version"] = str(version.pk)  # an export from this view takes the version's samples
    # Spec §8.2 / item 31: auto-grouping groups every image of the working data, so it is offered where
    # the browser shows exactly those: the All tab of the working data with no filter.
    can_auto_group = (dataset.label_type in AUTO_GROUP_LABEL_TYPES and version is None and not errors
                      and not flt.status and not flt.is_active
                      and has_perm(request.user, dataset.workspace, "dataset:update"))
    context = {
        **_detail_context(request, dataset, "samples"),
        "page": page, "filter": flt, "filter_errors": [m for ms in errors.values() for m in ms],
        "status_tabs": status_tabs, "label_counts": selectors.label_counts(dataset, version=version),
        "annotators": selectors.annotators_of(dataset, version),
        "attribute_names": selectors.attribute_names_of(dataset, version),
        "params": request.GET, "query": query.urlencode(), "page_sizes": SAMPLE_PAGE_SIZES, "page_size": size,
        "export_query": filter_query.urlencode(), "grid": dataset.uses_grid,
        "selected_labels": [str(x) for x in flt.labels],
        "versions": selectors.browsable_versions(dataset), "browsing_version": version, "shown_note": shown.note,
        "switch_params": [(k, v) for k, values in query.lists() if k != "version" for v in values],
        "can_auto_group": can_auto_group,
        "narrowed": bool(flt.status) or dataclasses.replace(flt, version=None).is_active,
    }
    template = "datasets/dataset_detail.html"
    if request.htmx and request.htmx.target == "sample-results":
        template += "#sample-results"
    return render(request, template, context, status=400 if errors else 200)


def _mask_fill(properties: dict) -> str:
    """A segmentation polygon's mask colour ("r,g,b" from VOC `mask_color`) as a CSS colour, so the
    preview shows the mask overlay in the colour the mask PNG uses (spec item 17); "" when absent
    or malformed (imported data is not trusted into a style attribute)."""
    parts = str((properties or {}).get("mask_color", "")).split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return ""
    return "rgb({},{},{})".format(*(int(p) for p in parts))


def _svg_shapes(annotations) -> list[dict]:
    """Annotations as SVG elements to draw over the image (no client code needed)."""
    out = []
    for ann in annotations:
        # `ann.label`, not `label_id`: a published annotation's label may be an unsaved one (a name deleted since).
        g, color = ann.geometry, ann.label.color if ann.label else "#f59e0b"
        name = ann.label.name if ann.label else ""
        if ann.shape == Shape.BNDBOX:
            out.append({"kind": "rect", "x": g["xmin"], "y": g["ymin"], "w": g["xmax"] - g["xmin"],
                        "h": g["ymax"] - g["ymin"], "color": color, "label": name})
        elif ann.shape in (Shape.POLYGON, Shape.LINE):
            points = " ".join(f"{x},{y}" for x, y in g["points"])
            out.append({"kind": "polygon" if ann.shape == Shape.POLYGON else "polyline", "points": points,
                        "x": g["points"][0][0], "y": g["points"][0][1], "color": color, "label": name,
                        "fill": _mask_fill(ann.properties) if ann.shape == Shape.POLYGON else ""})
        elif ann.shape == Shape.POINT:
            out.append({"kind": "point", "x": g["x"], "y": g["y"], "color": color, "label": name})
        elif ann.shape == Shape.CIRCLE:
            out.append({"kind": "circle", "x": g["cx"], "y": g["cy"], "r": g["r"], "color": color, "label": name})
    return out


def _spans(sample, annotations) -> list[dict]:
    """The text cut into plain and labelled pieces for NER/triplet previews."""
    spans = sorted((a for a in annotations if a.shape == Shape.SPAN), key=lambda a: a.geometry["start"])
    pieces, cursor = [], 0
    for ann in spans:
        start, end = ann.geometry["start"], ann.geometry["end"]
        if start < cursor:
            continue
        pieces.append({"text": sample.text[cursor:start]})
        pieces.append({"text": sample.text[start:end], "label": ann.label.name if ann.label else "",
                       "color": ann.label.color if ann.label else "#999", "ref": ann.ref_id})
        cursor = end
    pieces.append({"text": sample.text[cursor:]})
    return pieces


@login_required
@require_GET
def sample_detail(request, pk, sample_id):
    """One sample: preview with its annotations drawn, details and annotation list.

    With `?version=<id>` (the link from a version's sample browser) it shows what that version
    holds for the sample: its published label status, usage, hard flag and labels, and the
    published annotations read from the sample's line of the version's manifest when it can be
    read (`versions.published_annotations`); otherwise the current annotations, said so.
    """
    dataset = _dataset(request, pk)
    sample = selectors.sample_get(dataset, sample_id)
    annotations = list(sample.annotations.select_related("label").all())
    version = entry = None
    version_error, annotations_published = "", False
    try:
        version_id = selectors.version_param(request.GET.get("version", ""))
        if version_id is not None:
            version, entry = selectors.sample_in_version(dataset, sample, version_id)
    except selectors.FilterError as exc:
        version_error = str(exc)
    if entry is not None:
        published = published_annotations(version, entry)
        if published is not None:
            annotations, annotations_published = published, True
    table = None
    if dataset.data_type == DataType.TABLE:
        from .formats.table import table_preview

        try:
            table = table_preview(sample.properties, dataset.table_schema)
        except Exception:  # a preview of a file removed from storage must not break the page
            table = ([c["name"] for c in dataset.table_schema], [])
    context = {**_detail_context(request, dataset, "samples"), "sample": sample, "annotations": annotations,
               "shapes": _svg_shapes(annotations), "spans": _spans(sample, annotations) if sample.text else [],
               "attributes": sample.attributes.all(), "table_preview": table,
               "back": reverse("datasets:detail", args=[dataset.pk]) + ("?" + request.GET.urlencode()
                                                                        if request.GET else ""),
               "version": version, "entry": entry, "version_error": version_error,
               "annotations_published": annotations_published}
    return render(request, "datasets/sample_detail.html", context, status=400 if version_error else 200)


INLINE_CATEGORIES = {FormatCategory.IMAGE, FormatCategory.AUDIO, FormatCategory.VIDEO}


@login_required
@require_GET
def sample_file(request, pk, sample_id):
    """The sample's file, streamed: inline for images, audio and video (previews), else an attachment."""
    from apps.storage.downloads import download_response

    dataset = _dataset(request, pk)
    sample = selectors.sample_get(dataset, sample_id)
    if not sample.source:
        raise Http404("Not found.")
    try:
        response = download_response(request, parse(sample.source))
    except NotFound:
        raise Http404("Not found.") from None
    if sample.format_category in INLINE_CATEGORIES:
        response["Content-Type"] = mimetypes.guess_type(sample.file_name)[0] or "application/octet-stream"
        response["Content-Disposition"] = content_disposition_header(False, sample.file_name)
    return response


@login_required
@require_GET
def sample_thumbnail(request, pk, sample_id):
    dataset = _dataset(request, pk)
    sample = selectors.sample_get(dataset, sample_id)
    if not sample.thumbnail:
        raise Http404("Not found.")
    try:
        with get_storage().open(parse(sample.thumbnail)) as fh:
            data = fh.read()
    except NotFound:
        raise Http404("Not found.") from None
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


# ---- labels ---------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dataset_labels(request, pk):
    dataset = _dataset(request, pk)
    form = LabelForm(request.POST or None)
    if request.method == "POST":
        require_perm(request.user, dataset.workspace, "dataset:update")
        if form.is_valid():
            try:
                services.label_create(user=request.user, dataset=dataset, name=form.cleaned_data["name"],
                                      color=form.cleaned_data["color"], attributes=form.cleaned_data["attributes"])
            except ValidationError as exc:
                _field_errors(form, exc)
            else:
                messages.success(request, f'Label "{form.cleaned_data["name"]}" added.')
                return redirect("datasets:labels", dataset.pk)
    context = {**_detail_context(request, dataset, "labels"), "form": form,
               "labels": selectors.label_counts(dataset)}
    return render(request, "datasets/dataset_labels.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def label_edit(request, pk, label_id):
    dataset = _dataset(request, pk, "dataset:update")
    label = Label.objects.filter(dataset=dataset, pk=label_id).first()
    if label is None:
        raise Http404("Not found.")
    attributes = "\n".join(f'{a["name"]}: {", ".join(a["values"])}' for a in label.attributes)
    form = LabelForm(request.POST or None, initial={"name": label.name, "color": label.color,
                                                    "attributes": attributes})
    if request.method == "POST" and form.is_valid():
        try:
            services.label_update(user=request.user, label=label, **form.cleaned_data)
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, "Label updated.")
            return redirect("datasets:labels", dataset.pk)
    context = {**_detail_context(request, dataset, "labels"), "form": form, "title": f'Modify label "{label.name}"',
               "submit": "Save"}
    return render(request, "datasets/dataset_form_page.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def label_delete(request, pk, label_id):
    dataset = _dataset(request, pk, "dataset:update")
    label = Label.objects.filter(dataset=dataset, pk=label_id).first()
    if label is None:
        raise Http404("Not found.")
    services.label_delete(user=request.user, label=label)
    messages.success(request, f'Label "{label.name}" deleted with its annotations.')
    return redirect("datasets:labels", dataset.pk)


# ---- import, upload, sync -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dataset_import(request, pk):
    dataset = _dataset(request, pk, "dataset:import")
    form = ImportForm(request.POST or None, user=request.user)
    upload_form = UploadForm()
    allowed = [ImportFormat.RAW, *FORMATS_BY_LABEL_TYPE.get(dataset.label_type, [])]
    choices = [(v, ImportFormat(v).label) for v in allowed]
    form.fields["format"].choices = choices
    upload_form.fields["format"].choices = choices
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        labels = [name.strip() for name in data["labels"].split(",") if name.strip()]
        op = services.operation_start(
            user=request.user, dataset=dataset, kind=OperationKind.IMPORT,
            params={"path": data["path"].uri, "format": data["format"], "labeled": data["labeled"],
                    "labels": labels, "hard_only": data["hard_only"]})
        messages.success(request, f"Import {op.uid} started.")
        return redirect("datasets:operation", dataset.pk, op.pk)
    context = {**_detail_context(request, dataset, ""), "form": form, "upload_form": upload_form}
    return render(request, "datasets/dataset_import.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def dataset_upload_view(request, pk):
    dataset = _dataset(request, pk, "dataset:import")
    form = UploadForm(request.POST, request.FILES)
    allowed = [ImportFormat.RAW, *FORMATS_BY_LABEL_TYPE.get(dataset.label_type, [])]
    form.fields["format"].choices = [(v, ImportFormat(v).label) for v in allowed]
    if form.is_valid():
        try:
            op = dataset_upload(user=request.user, dataset=dataset, files=form.cleaned_data["files"],
                                import_format=form.cleaned_data["format"],
                                storage_path=form.cleaned_data["storage_path"].strip())
        except ValidationError as exc:
            for field, field_messages in getattr(exc, "message_dict", {"": exc.messages}).items():
                label = form.fields[field].label if field in form.fields else ""
                for message in field_messages:
                    messages.error(request, f"{label}: {message}" if label else message)
        else:
            messages.success(request, f"Upload stored; import {op.uid} started.")
            return redirect("datasets:operation", dataset.pk, op.pk)
    for errors in form.errors.values():
        for message in errors:
            messages.error(request, message)
    return redirect("datasets:import", dataset.pk)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_sync(request, pk):
    """GET: the warning (samples whose files were deleted are removed; files never are). POST: start."""
    dataset = _dataset(request, pk, "dataset:import")
    if request.method == "POST":
        op = services.operation_start(user=request.user, dataset=dataset, kind=OperationKind.SYNC, params={})
        messages.success(request, f"Sync {op.uid} started.")
        return redirect("datasets:operation", dataset.pk, op.pk)
    return render(request, "datasets/dataset_sync.html", _detail_context(request, dataset, ""))


# ---- versions -------------------------------------------------------------------------------------------------


@login_required
@require_GET
def dataset_versions(request, pk):
    dataset = _dataset(request, pk)
    versions = list(dataset.versions.select_related("created_by").order_by("-created_at", "-id"))
    compare = [v for v in versions if str(v.pk) in request.GET.getlist("compare") and v.status == VersionStatus.NORMAL]
    context = {**_detail_context(request, dataset, "versions"), "versions": versions,
               "timeline": list(reversed(versions)), "compare": compare,
               "compare_figure": charts.version_compare(compare) if compare else None}
    return render(request, "datasets/dataset_versions.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_publish(request, pk):
    dataset = _dataset(request, pk, "dataset:publish")
    initial = {"format": VersionFormat.CSV if dataset.data_type == DataType.TABLE else VersionFormat.DEFAULT}
    form = PublishForm(request.POST or None, initial=initial)
    if dataset.data_type != DataType.TABLE:
        form.fields["format"].choices = [(VersionFormat.DEFAULT, VersionFormat.DEFAULT.label)]
    else:
        form.fields["format"].choices = [(v, VersionFormat(v).label) for v in (VersionFormat.CSV,
                                                                                VersionFormat.PARQUET)]
    if dataset.label_type not in SPLIT_LABEL_TYPES:
        del form.fields["split_enabled"], form.fields["train_ratio"]
    if dataset.label_type not in HARD_ATTRIBUTE_LABEL_TYPES:
        del form.fields["hard_attribute"]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            op = version_publish(user=request.user, dataset=dataset, name=data["name"],
                                 description=data["description"], split_enabled=data.get("split_enabled", False),
                                 train_ratio=data.get("train_ratio"), hard_attribute=data.get("hard_attribute", False),
                                 format=data["format"])
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, f"Publishing {op.version.name}.")
            return redirect("datasets:operation", dataset.pk, op.pk)
    context = {**_detail_context(request, dataset, ""), "form": form, "title": "Publish a new version",
               "submit": "Publish",
               "notice": "With data split on, each label needs at least 5 labeled samples; if there are "
                         "multi-label samples, there must be at least 2 of them."}
    return render(request, "datasets/dataset_form_page.html", context, status=400 if form.errors else 200)


VERSION_PAGE_SIZE = 50


@login_required
@require_GET
def version_detail(request, pk, version_id):
    """A published version's own data: its immutable manifest, page by page (spec §9.1 "current version")."""
    import json as jsonlib

    dataset = _dataset(request, pk)
    version = selectors.version_get(dataset, version_id)
    try:
        page_number = max(1, int(request.GET.get("page") or 1))
    except ValueError:
        page_number = 1
    start = (page_number - 1) * VERSION_PAGE_SIZE
    entries, total, missing = [], 0, False
    if version.manifest_uri and version.format == VersionFormat.DEFAULT:
        try:
            with get_storage().open(parse(version.manifest_uri)) as fh:
                for raw in fh:
                    if not raw.strip():
                        continue
                    if start <= total < start + VERSION_PAGE_SIZE:
                        doc = jsonlib.loads(raw)
                        source = doc.get("source", "")
                        names = [a.get("name") or a.get("type", "").removeprefix("modelarts/")
                                 for a in doc.get("annotation", [])]
                        entries.append({"id": doc.get("id", ""), "usage": doc.get("usage", ""), "labels": names,
                                        "text": source[len("content://"):] if source.startswith("content://") else "",
                                        "name": "" if source.startswith("content://") else source.rpartition("/")[2],
                                        "source": source})
                    total += 1
        except NotFound:
            missing = True
    present = set(dataset.samples.filter(pk__in=[e["id"] for e in entries]).values_list("pk", flat=True))
    for entry in entries:
        entry["present"] = entry["id"] in present
    pages = max(1, -(-total // VERSION_PAGE_SIZE))
    context = {**_detail_context(request, dataset, "versions"), "version": version, "entries": entries,
               "total": total, "page_number": page_number, "pages": pages, "missing": missing,
               "is_current": dataset.current_version_id == version.pk}
    return render(request, "datasets/version_detail.html", context)


@login_required
@require_POST
def version_set_current(request, pk, version_id):
    dataset = _dataset(request, pk, "dataset:update")
    version = selectors.version_get(dataset, version_id)
    try:
        services.version_set_current(user=request.user, version=version)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"{version.name} is now the current version.")
    return redirect("datasets:versions", dataset.pk)


@login_required
@require_http_methods(["GET", "POST"])
def version_delete(request, pk, version_id):
    dataset = _dataset(request, pk, "dataset:update")
    version = selectors.version_get(dataset, version_id)
    form = ConfirmNameForm(request.POST or None, expected=version.name)
    if request.method == "POST" and form.is_valid():
        services.version_delete(user=request.user, version=version)
        messages.success(request, f"Version {version.name} deleted; its files stay in {version.storage_uri}.")
        return redirect("datasets:versions", dataset.pk)
    context = {**_detail_context(request, dataset, "versions"), "form": form, "version": version,
               "action": reverse("datasets:version_delete", args=[dataset.pk, version.pk])}
    return render(request, "datasets/version_confirm_delete.html", context,
                  status=400 if request.method == "POST" else 200)


# ---- export ---------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dataset_export(request, pk):
    dataset = _dataset(request, pk, "dataset:export")
    form = ExportForm(request.POST or None, user=request.user, initial={"filter": request.GET.urlencode()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        from django.http import QueryDict

        try:
            op = export_start(user=request.user, dataset=dataset, method=data["method"], path=data["path"],
                              format=data["format"], filter_params=QueryDict(data["filter"] or ""),
                              name=data["name"], output_path=data["output_path"])
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            for warning in op.params.get("warnings", []):
                messages.warning(request, warning)
            messages.success(request, f"Export {op.uid} started.")
            return redirect("datasets:operation", dataset.pk, op.pk)
    flt_query = request.POST.get("filter") if request.method == "POST" else request.GET.urlencode()
    context = {**_detail_context(request, dataset, ""), "form": form, "title": "Export samples", "submit": "Export",
               "notice": "Exports the samples matching the current filters"
                         + (f" ({flt_query})." if flt_query else " (all samples).")
                         + " Avoid the dataset's own input and output locations as the save path.",
               # Spec §15 item 52: the export history under the form.
               "export_history": [(op, ExportMethod(op.params["method"]).label if op.params.get("method") in
                                   ExportMethod.values else op.params.get("method", ""))
                                  for op in selectors.operations_of(dataset, kind=OperationKind.EXPORT)[:20]]}
    return render(request, "datasets/dataset_form_page.html", context, status=400 if form.errors else 200)


# ---- operations -----------------------------------------------------------------------------------------------


@login_required
@require_GET
def dataset_operations(request, pk):
    dataset = _dataset(request, pk)
    table = OperationTable(selectors.operations_of(dataset), request.GET, id="operations")
    context = {**_detail_context(request, dataset, "operations"), "table": table}
    return render_table(request, "datasets/dataset_operations.html", context, table)


@login_required
@require_GET
def operation_detail(request, pk, operation_id):
    """Progress (refreshed live over the operation's channel) and the per-item error report."""
    dataset = _dataset(request, pk)
    operation = selectors.operations_of(dataset).filter(pk=operation_id).first()
    if operation is None:
        raise Http404("Not found.")
    errors = Paginator(operation.errors.all(), 50).get_page(request.GET.get("page"))
    context = {**_detail_context(request, dataset, "operations"), "operation": operation, "errors": errors,
               "can_stop": not operation.is_finished and has_perm(
                   request.user, dataset.workspace, services.OPERATION_PERMISSION[operation.kind])}
    template = "datasets/operation_detail.html"
    if request.htmx and request.htmx.target == "operation-status":
        template += "#operation-status"
    return render(request, template, context)


@login_required
@require_GET
def operation_errors_csv(request, pk, operation_id):
    """The whole error report as CSV (file, line, rule, message)."""
    dataset = _dataset(request, pk)
    operation = selectors.operations_of(dataset).filter(pk=operation_id).first()
    if operation is None:
        raise Http404("Not found.")
    from .formats.table import csv_text

    rows = operation.errors.values_list("item", "line", "code", "message")
    body = csv_text(["file", "line", "rule", "message"], ([i, line or "", c, m] for i, line, c, m in rows))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"{operation.uid}-errors.csv")
    return response


@login_required
@require_POST
def operation_stop(request, pk, operation_id):
    dataset = _dataset(request, pk)
    operation = selectors.operations_of(dataset).filter(pk=operation_id).first()
    if operation is None:
        raise Http404("Not found.")
    try:
        services.operation_stop(user=request.user, operation=operation)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, "Stop requested.")
    return redirect("datasets:operation", dataset.pk, operation.pk)


# ---- features, auto-grouping, processing ----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dataset_features(request, pk):
    """Feature analysis per published version (plotly histograms) and auto-grouping."""
    from .analysis import analysis_start, analysis_results
    from .grouping import auto_group_start

    dataset = _dataset(request, pk)
    group_form = AutoGroupForm(request.POST if request.POST.get("action") == "group" else None, user=request.user)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "analyse":
                version = selectors.version_get(dataset, request.POST.get("version") or 0)
                op = analysis_start(user=request.user, version=version)
                messages.success(request, f"Feature analysis {op.uid} of {version.name} started.")
                return redirect("datasets:features", dataset.pk)
            if group_form.is_valid():
                data = group_form.cleaned_data
                op = auto_group_start(user=request.user, dataset=dataset, groups=data["groups"],
                                      handling=data["handling"], attribute=data["attribute"],
                                      result_path=data["result_path"], features=data["features"])
                messages.success(request, f"Auto-grouping {op.uid} started.")
                return redirect("datasets:features", dataset.pk)
        except ValidationError as exc:
            if request.POST.get("action") == "group":
                _field_errors(group_form, exc)
            else:
                for message in exc.messages:
                    messages.error(request, message)
    versions = list(dataset.versions.filter(status=VersionStatus.NORMAL).order_by("-created_at"))
    selected = [v for v in versions if str(v.pk) in request.GET.getlist("version")]
    usage = request.GET.get("usage", "all")
    metrics = request.GET.getlist("metric")
    results = analysis_results(selected, usage=usage, metrics=metrics) if selected else None
    context = {
        **_detail_context(request, dataset, "features"), "versions": versions, "selected": selected,
        "usage": usage, "metrics": metrics, "results": results, "group_form": group_form,
        "analysis_history": selectors.operations_of(dataset, OperationKind.ANALYSIS)[:20],
        "group_history": selectors.operations_of(dataset, OperationKind.AUTO_GROUP)[:20],
        "features_enabled": dataset.label_type in FEATURE_LABEL_TYPES,
        "grouping_enabled": dataset.label_type in AUTO_GROUP_LABEL_TYPES,
    }
    from .analysis import IMAGE_METRICS, BOX_METRICS

    context["metric_choices"] = IMAGE_METRICS + (BOX_METRICS if dataset.label_type == "object_detection" else [])
    return render(request, "datasets/dataset_features.html", context, status=400 if group_form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_processing(request, pk):
    from .processing import processing_start

    dataset = _dataset(request, pk)
    form = ProcessingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            op = processing_start(user=request.user, dataset=dataset, operation=data["operation"],
                                  threshold=data["threshold"], operators=data["operators"] or [],
                                  copies=data["copies"] or 1)
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, f"Processing {op.uid} started.")
            return redirect("datasets:operation", dataset.pk, op.pk)
    context = {**_detail_context(request, dataset, "processing"), "form": form,
               "history": selectors.operations_of(dataset, OperationKind.PROCESSING)[:20]}
    return render(request, "datasets/dataset_processing.html", context, status=400 if form.errors else 200)



