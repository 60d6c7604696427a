"""Labeling pages: the job list, job creation, the job detail page, label management and the
annotation workbench. Views are thin: objects come from scoped accessors (another workspace's
job or sample is a 404), writes go through `services`, refusals come back as inline errors.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.permissions import has_perm, require_perm
from apps.datasets.choices import AUTO_GROUP_LABEL_TYPES, LabelKind, LabelStatus, LabelType
from apps.datasets.models import Dataset, Label
from apps.datasets.selectors import FilterError, annotators_of
from apps.storage.widgets import StoragePathWidget

from . import guide, media, selectors, services
from .api.serializers import sample_payload
from .choices import (
    CANVAS_TYPES,
    CLASS_TYPES,
    COLOR_REQUIRED_TYPES,
    LABELING_TYPES,
    SCENE_OF_TYPE,
    TABS_BY_SCENE,
    TEAM_TYPES,
    TYPE_DESCRIPTIONS,
    TYPES_BY_SCENE,
    Scene,
)
from .forms import DeleteJobForm, JobEditForm, JobForm, LabelForm, first_error, format_attributes
from .tables import JobTable

TAB_LABELS = {"unlabeled": "Unlabeled", "labeled": "Labeled", "all": "All", "to_confirm": "To be confirmed"}


def _job(request, pk, action: str = "labeling:view"):
    job = selectors.job_get_for_user(request.user, pk)
    require_perm(request.user, job.workspace, action)
    return job


@login_required
@require_GET
def job_list(request):
    """Item 9: "Created by me" / "I participate in" tabs, a type filter, progress per job."""
    workspace = request.workspace
    if workspace is not None:
        require_perm(request.user, workspace, "labeling:view")
    tab = request.GET.get("tab") or "created"
    jobs = selectors.jobs_in(workspace)
    jobs = jobs.filter(team_enabled=True) if tab == "participating" else jobs.filter(created_by=request.user)
    table = JobTable(jobs, request.GET, id="jobs")
    from apps.core.tables import render_table

    tabs = [{"label": "Created by me", "url": "?tab=created", "active": tab != "participating"},
            {"label": "I participate in", "url": "?tab=participating", "active": tab == "participating"}]
    context = {"table": table, "tabs": tabs, "tab": tab,
               "can_create": has_perm(request.user, workspace, "labeling:create")}
    return render_table(request, "labeling/job_list.html", context, table)


def _create_context(request, form, label_rows, errors=None):
    workspace = request.workspace
    datasets = list(Dataset.objects.in_workspace(workspace).exclude(label_type__in=["free_format", "table"])
                    .order_by("name")) if workspace else []
    scenes = [{"value": scene, "label": Scene(scene).label,
               "types": [{"value": t, "label": LabelType(t).label, "description": TYPE_DESCRIPTIONS[t],
                          "team": t in TEAM_TYPES} for t in types]} for scene, types in TYPES_BY_SCENE.items()]
    return {"form": form, "scenes": scenes, "datasets": datasets, "label_rows": label_rows or [{}],
            "label_errors": errors or {}, "max_labels": settings.ATELIER_DATASET_MAX_LABELS,
            "color_types": sorted(COLOR_REQUIRED_TYPES), "team_types": sorted(TEAM_TYPES),
            "selected_type": form.data.get("labeling_type") or request.GET.get("type") or LABELING_TYPES[0]}


@login_required
@require_http_methods(["GET", "POST"])
def job_create(request):
    """The create form (items 1–8): scene, type, a compatible dataset, labels, team toggle."""
    workspace = request.workspace
    require_perm(request.user, workspace, "labeling:create")
    datasets = Dataset.objects.in_workspace(workspace)
    initial = {"name": services.copy_name("task").replace("-copy-", "-")}
    if request.GET.get("dataset"):
        dataset = datasets.filter(pk=request.GET["dataset"]).first()
        if dataset:
            initial.update(dataset=dataset.pk, labeling_type=dataset.label_type, name=f"{dataset.name}"[:64])
    form = JobForm(request.POST or None, datasets=datasets, initial=initial)
    if request.method == "POST":
        specs = form.label_specs()
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = services.job_create(
                    user=request.user, workspace=workspace, name=data["name"], description=data["description"],
                    dataset=datasets.get(pk=data["dataset"]), labeling_type=data["labeling_type"], labels=specs,
                    team_enabled=data["team_enabled"], speech_content_enabled=data["speech_content_enabled"],
                    speech_label_mode=data["speech_label_mode"] or "single")
            except ValidationError as exc:
                errors = first_error(exc)
                label_errors = {k: v for k, v in errors.items() if k.startswith("labels")}
                for key, msgs in errors.items():
                    if not key.startswith("labels"):
                        form.add_error(key if key in form.fields else None, msgs)
                context = _create_context(request, form, specs, _row_errors(label_errors))
                return render(request, "labeling/job_create.html", context, status=400)
            messages.success(request, f'Labeling job "{job.name}" created.')
            return redirect("labeling:detail", job.pk)
        return render(request, "labeling/job_create.html", _create_context(request, form, specs), status=400)
    return render(request, "labeling/job_create.html", _create_context(request, form, []))


def _row_errors(errors: dict) -> dict:
    """{"labels.2.color": [...]} → {2: ["…"]} for the label rows; a list-wide error goes under -1."""
    out: dict[int, list[str]] = {}
    for key, msgs in errors.items():
        parts = key.split(".")
        index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        out.setdefault(index, []).extend(msgs)
    return out


def _tabs(job, current: str, counts: dict, request) -> list[dict]:
    out = []
    for key in TABS_BY_SCENE[SCENE_OF_TYPE[job.labeling_type]]:
        params = request.GET.copy()
        params["status"] = key
        params.pop("page", None)
        out.append({"label": TAB_LABELS[key], "url": "?" + params.urlencode(), "active": key == current,
                    "count": counts.get(key, 0), "key": key})
    if counts.get("to_confirm"):
        out.append({"label": TAB_LABELS["to_confirm"], "url": "?status=to_confirm", "active": current == "to_confirm",
                    "count": counts["to_confirm"], "key": "to_confirm"})
    return out


@login_required
@require_GET
def job_detail(request, pk):
    """Items 12–16, 19, 21: tabs per scene, label counts, filters, the samples of one tab."""
    job = _job(request, pk)
    scene = SCENE_OF_TYPE[job.labeling_type]
    status = request.GET.get("status") or TABS_BY_SCENE[scene][0]
    params = request.GET.copy()
    params["status"] = status
    filter_errors = []
    try:
        samples = selectors.samples_for_tab(job, params)
    except FilterError as exc:
        filter_errors = [m for msgs in exc.fields.values() for m in msgs]
        samples = selectors.samples_for_tab(job, {"status": status if status != "all" else ""})
    page_size = 48 if scene == Scene.IMAGE else 20
    page = Paginator(samples, page_size).get_page(request.GET.get("page"))
    counts = selectors.tab_counts(job)
    labels = selectors.label_stats(job)
    rows = [sample_payload(job, s, request, annotations=False) for s in page.object_list]
    label_names = {}
    if rows:
        from apps.datasets.models import Annotation

        for sample_id, name in Annotation.objects.filter(sample_id__in=[r["id"] for r in rows]).values_list(
                "sample_id", "label__name"):
            label_names.setdefault(sample_id, [])
            if name and name not in label_names[sample_id]:
                label_names[sample_id].append(name)
    for row in rows:
        row["labels"] = label_names.get(row["id"], [])
        row["workbench_url"] = reverse("labeling:workbench", args=[job.pk, row["id"]]) + f"?status={status}"
    context = {
        "job": job, "scene": scene, "status": status, "tabs": _tabs(job, status, counts, request),
        "page": page, "rows": rows, "labels": labels, "progress": selectors.progress(job),
        "filter_errors": filter_errors, "annotators": annotators_of(job.dataset) if scene == Scene.IMAGE else [],
        "is_class": job.labeling_type in CLASS_TYPES, "filters": request.GET,
        "can_update": has_perm(request.user, job.workspace, "labeling:update"),
        # Spec §3.6: text jobs add data from the Unlabeled tab only; other scenes from every tab.
        "can_add_data": scene != Scene.TEXT or status == LabelStatus.UNLABELED,
        "can_annotate": has_perm(request.user, job.workspace, "annotation:update"),
        "config": {"job": job.pk, "type": job.labeling_type, "labels": labels,
                   "api": reverse("labeling-api:job-detail", args=[job.pk]),
                   "can_annotate": has_perm(request.user, job.workspace, "annotation:update")},
        "first_url": reverse("labeling:workbench_start", args=[job.pk]) + f"?status={status}",
        "guide_html": guide.render(job.guide, job),
        # Spec §5.7: quick review sits on the Labeled tab of detection and segmentation jobs.
        # Selection serves batch labels (classification) and sample deletion (job managers).
        "can_select": (job.labeling_type in CLASS_TYPES and has_perm(request.user, job.workspace, "annotation:update"))
        or has_perm(request.user, job.workspace, "labeling:update"),
        "delete_text": {Scene.AUDIO: "Delete audio", Scene.VIDEO: "Delete video"}.get(
            scene, "Delete images" if job.labeling_type == LabelType.IMAGE_SEGMENTATION else "Delete"),
        "can_review": status == LabelStatus.LABELED and job.labeling_type in selectors.REVIEW_TYPES,
        # Datasets spec §8.2 / item 31: auto-grouping is started, and its history seen, from the All tab.
        "can_group": status == "all" and job.labeling_type in AUTO_GROUP_LABEL_TYPES,
        "grouping": selectors.auto_group_running(job) if status == "all" else None,
    }
    return render(request, "labeling/job_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def job_auto_group(request, pk):
    """Auto-grouping of the job's dataset (datasets spec §8.2, item 31), reached from the All tab:
    "Start task" (number of groups 2–200, a sample attribute or a result directory, advanced
    features) and the task history with Stop for a running task."""
    from apps.datasets.forms import AutoGroupForm
    from apps.datasets.grouping import auto_group_start
    from apps.datasets.services import operation_stop

    job = _job(request, pk)
    if job.labeling_type not in AUTO_GROUP_LABEL_TYPES:
        raise Http404("Auto-grouping is offered for image classification, detection and segmentation jobs only.")
    form = AutoGroupForm(request.POST if request.method == "POST" and "stop" not in request.POST else None,
                         user=request.user)
    if request.method == "POST":
        if "stop" in request.POST:
            operation = selectors.auto_group_history(job).filter(pk=request.POST.get("stop") or 0).first()
            if operation is None:
                raise Http404("No such auto-grouping task.")
            try:
                operation_stop(user=request.user, operation=operation)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, f"Stop of auto-grouping {operation.uid} requested.")
            return redirect("labeling:auto_group", job.pk)
        if form.is_valid():
            data = form.cleaned_data
            try:
                operation = auto_group_start(user=request.user, dataset=job.dataset, groups=data["groups"],
                                             handling=data["handling"], attribute=data["attribute"],
                                             result_path=data["result_path"], features=data["features"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Auto-grouping {operation.uid} started: its progress shows on the All tab.")
                return redirect(reverse("labeling:detail", args=[job.pk]) + "?status=all")
    context = {"job": job, "form": form, "history": selectors.auto_group_history(job)[:20],
               "can_update": has_perm(request.user, job.workspace, "dataset:update")}
    return render(request, "labeling/job_auto_group.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def job_edit(request, pk):
    """Name, description, remarks and the labeling guide (item 21)."""
    job = _job(request, pk, "labeling:update")
    form = JobEditForm(request.POST or None, initial={"name": job.name, "description": job.description,
                                                      "remarks": job.remarks, "guide": job.guide})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.job_update(user=request.user, job=job, name=data["name"], description=data["description"],
                                guide=data["guide"], remarks=data["remarks"])
        except ValidationError as exc:
            for key, msgs in first_error(exc).items():
                form.add_error(key if key in form.fields else None, msgs)
        else:
            messages.success(request, "Job saved.")
            return redirect("labeling:detail", job.pk)
    return render(request, "labeling/job_edit.html", {"job": job, "form": form, "guide_html": guide.render(job.guide, job)},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def guide_image_upload(request, pk):
    """Item 21: add an example image to the guide from the Modify page."""
    job = _job(request, pk, "labeling:update")
    upload = request.FILES.get("image")
    try:
        if upload is None:
            raise ValidationError({"image": ["Choose an image file to add to the guide."]})
        services.job_guide_image_add(user=request.user, job=job, data=upload.read(), filename=upload.name,
                                     caption=request.POST.get("caption", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(m for msgs in first_error(exc).values() for m in msgs))
    else:
        messages.success(request, "Image added at the end of the guide.")
    return redirect("labeling:edit", job.pk)


@login_required
@require_GET
def guide_image(request, pk, name):
    """An example image of the job's guide, for anyone who may view the job."""
    job = _job(request, pk)
    if not guide.NAME_RE.match(name):
        raise Http404("Not found.")
    return media.file_response(request, guide.image_folder(job).child(name))


@login_required
@require_http_methods(["GET", "POST"])
def job_delete(request, pk):
    """Item 11: deleting a job whose dataset holds annotations asks for the typed name."""
    job = _job(request, pk, "labeling:delete")
    form = DeleteJobForm(request.POST or None)
    count = services.job_annotation_count(job)
    if request.method == "POST" and form.is_valid():
        try:
            services.job_delete(user=request.user, job=job, confirm=form.cleaned_data["confirm"],
                                delete_annotations=form.cleaned_data["delete_annotations"])
        except ValidationError as exc:
            for key, msgs in first_error(exc).items():
                form.add_error(key if key in form.fields else None, msgs)
        else:
            messages.success(request, f'Labeling job "{job.name}" deleted.')
            return redirect("labeling:list")
    return render(request, "labeling/job_confirm_delete.html", {"job": job, "form": form, "annotations": count},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def job_copy(request, pk):
    """Item 10: `<name>-copy-xxxx` on the same dataset, labels and options, no annotations."""
    job = _job(request, pk)
    try:
        copy = services.job_copy(user=request.user, job=job, name=request.POST.get("name", "").strip())
    except ValidationError as exc:
        messages.error(request, " ".join(m for msgs in first_error(exc).values() for m in msgs))
        return redirect("labeling:list")
    messages.success(request, f'Copied to "{copy.name}" (labels and options; annotations are not copied).')
    return redirect("labeling:detail", copy.pk)


@login_required
@require_POST
def job_sync(request, pk):
    job = _job(request, pk)
    services.job_sync(user=request.user, job=job)
    messages.success(request, "Syncing the data source: new files appear here when the scan finishes.")
    return redirect("labeling:detail", job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def job_labels(request, pk):
    """Item 20: rename, recolour, shortcut, delete and batch delete of the job's labels."""
    job = _job(request, pk)
    form = LabelForm(request.POST or None, labeling_type=job.labeling_type)
    if request.method == "POST":
        require_perm(request.user, job.workspace, "labeling:update")
        action = request.POST.get("action", "create")
        try:
            if action == "create" and form.is_valid():
                services.job_label_create(user=request.user, job=job, spec=form.spec())
                messages.success(request, f'Label "{form.cleaned_data["name"]}" added.')
                return redirect("labeling:labels", job.pk)
            if action == "update":
                label = Label.objects.filter(dataset_id=job.dataset_id, pk=request.POST.get("label")).first()
                if label is None:
                    raise Http404("Not found.")
                services.job_label_update(user=request.user, job=job, label=label, name=request.POST.get("name", ""),
                                          color=request.POST.get("color", ""),
                                          shortcut=request.POST.get("shortcut", None))
                messages.success(request, "Label saved.")
                return redirect("labeling:labels", job.pk)
            if action == "delete":
                ids = [int(i) for i in request.POST.getlist("labels") if i.isdigit()]
                labels = list(Label.objects.filter(dataset_id=job.dataset_id, pk__in=ids))
                if not labels:
                    raise ValidationError({"labels": ["Select at least one label to delete."]})
                result = services.job_labels_delete(user=request.user, job=job, labels=labels,
                                                    with_objects=request.POST.get("with_objects") == "1")
                messages.success(request, f"{result['labels']} label(s) deleted"
                                          + (f", {result['samples_deleted']} sample(s) with them." if
                                             result["samples_deleted"] else "."))
                return redirect("labeling:labels", job.pk)
        except ValidationError as exc:
            for key, msgs in first_error(exc).items():
                target = key.split(".")[-1]
                form.add_error(target if target in form.fields and action == "create" else None, msgs)
    labels = selectors.label_stats(job)
    by_id = {row["id"]: row["name"] for row in labels}
    for row in labels:
        row["attributes_text"] = format_attributes(row["attributes"])
        row["from_name"], row["to_name"] = by_id.get(row["from_label"], ""), by_id.get(row["to_label"], "")
    context = {"job": job, "labels": labels, "form": form, "is_text": SCENE_OF_TYPE[job.labeling_type] == Scene.TEXT,
               "is_triplet": job.labeling_type == LabelType.TEXT_TRIPLET,
               "entities": [row for row in labels if row["kind"] == LabelKind.ENTITY],
               "has_shortcuts": job.labeling_type == LabelType.SOUND_CLASSIFICATION,
               "has_attributes": job.labeling_type in (LabelType.OBJECT_DETECTION, LabelType.VIDEO),
               "cap_left": services.label_cap_left(job.dataset),
               "can_update": has_perm(request.user, job.workspace, "labeling:update")}
    return render(request, "labeling/job_labels.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def job_data(request, pk):
    """Item 18, "Add data": import into the dataset from a storage path or an upload, labeled or
    not, and the dataset's import history (created, mode, path, total, imported, status)."""
    job = _job(request, pk)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        require_perm(request.user, job.workspace, "labeling:update")
        source = request.POST.get("source", "storage")
        try:
            operation = services.job_data_add(
                user=request.user, job=job, labeled=request.POST.get("labeled") == "labeled",
                path=request.POST.get("path", "").strip() if source == "storage" else "",
                files=request.FILES.getlist("files") if source == "upload" else None,
                import_format=request.POST.get("format", ""),
                upload_path=request.POST.get("upload_path", "").strip() if source == "upload" else "")
        except ValidationError as exc:
            errors = first_error(exc)
            errors["general"] = errors.pop("__all__", [])
        else:
            messages.success(request, f"Import {operation.uid} started: the new samples appear in this job when it "
                                      "finishes.")
            return redirect("labeling:data", job.pk)
    from apps.datasets.choices import FORMATS_BY_LABEL_TYPE, ImportFormat

    formats = [(v, ImportFormat(v).label) for v in [ImportFormat.RAW, *FORMATS_BY_LABEL_TYPE.get(job.dataset.label_type, [])]]
    upload_path = StoragePathWidget(kind="folder", attrs={"id": "id_upload_path",
                                                          "placeholder": job.dataset.input_location})
    # The import path may be a folder or a manifest file: browse without creating anything.
    import_path = StoragePathWidget(kind="folder", allow_create=False, attrs={"id": "id_path"})
    context = {"job": job, "errors": errors, "formats": formats, "form": request.POST,
               "import_path": import_path.render("path", request.POST.get("path", "")),
               "upload_path": upload_path.render("upload_path", request.POST.get("upload_path", "")),
               "picker_media": upload_path.media,
               "history": [selectors.import_row(op) | {"created": op.created_at}
                           for op in selectors.import_history(job)[:50]],
               "can_update": has_perm(request.user, job.workspace, "labeling:update")}
    return render(request, "labeling/job_data.html", context, status=400 if errors else 200)


@login_required
@require_GET
def job_review(request, pk):
    """Item 32, quick review: one label's labeled images sorted by area or aspect ratio, edited in
    a staging layer in the browser and applied with one atomic batch save (or discarded)."""
    job = _job(request, pk)
    if job.labeling_type not in selectors.REVIEW_TYPES:
        messages.info(request, "Quick review is offered for object detection and image segmentation jobs only.")
        return redirect("labeling:detail", job.pk)
    labels = selectors.label_stats(job)
    label_id = request.GET.get("label") or ""
    chosen = next((row for row in labels if str(row["id"]) == label_id), None)
    sort = request.GET.get("sort") if request.GET.get("sort") in selectors.REVIEW_SORTS else "area"
    order = selectors.review_order(job, label_id=chosen["id"] if chosen else None, sort=sort)
    page = Paginator(order, selectors.REVIEW_PAGE).get_page(request.GET.get("page"))
    items = selectors.review_items(job, list(page.object_list))
    for item in items:
        item["preview_url"] = reverse("labeling:sample_media", args=[job.pk, item["id"]]) + "?preview=1"
    detail_url = reverse("labeling:detail", args=[job.pk]) + "?status=labeled"
    config = {"job": job.pk, "api": reverse("labeling-api:job-detail", args=[job.pk]), "items": items,
              "labels": [{"id": row["id"], "name": row["name"], "color": row["color"]} for row in labels],
              "label": chosen["name"] if chosen else "", "detail_url": detail_url, "csrf": get_token(request),
              "can_annotate": has_perm(request.user, job.workspace, "annotation:update")}
    context = {"job": job, "labels": labels, "chosen": chosen, "sort": sort, "sorts": selectors.REVIEW_SORTS,
               "page": page, "config": config, "detail_url": detail_url}
    return render(request, "labeling/job_review.html", context)


@login_required
@require_GET
def workbench_start(request, pk):
    """Open the workbench on the first sample of the tab (the detail page's "Start labeling")."""
    job = _job(request, pk)
    status = request.GET.get("status") or LabelStatus.UNLABELED
    sample = selectors.next_sample(job, after=None, status=status if status in LabelStatus.values else "all")
    if sample is None:
        messages.info(request, "No sample is left in this tab.")
        return redirect("labeling:detail", job.pk)
    return redirect(reverse("labeling:workbench", args=[job.pk, sample.pk]) + f"?status={status}")


@login_required
@require_GET
def workbench(request, pk, sample_id):
    """The annotation workbench: one isolated client module over the JSON API (STYLE rule 11)."""
    job = _job(request, pk)
    sample = selectors.sample_get(job, sample_id)
    status = request.GET.get("status") or LabelStatus.UNLABELED
    config = {
        "job": {"id": job.pk, "name": job.name, "type": job.labeling_type, "kind": SCENE_OF_TYPE[job.labeling_type],
                "tool_mode": job.tool_mode, "speech_content": job.speech_content_enabled,
                "speech_label_mode": job.speech_label_mode, "guide": job.guide},
        "sample_id": sample.pk,
        "status": status if status in LabelStatus.values or status == "all" else LabelStatus.UNLABELED,
        "user": request.user.get_username(),
        "api": reverse("labeling-api:job-detail", args=[job.pk]),
        "detail_url": reverse("labeling:detail", args=[job.pk]) + f"?status={status}",
        "workbench_url": reverse("labeling:workbench", args=[job.pk, "SAMPLE"]),
        "presence_url": f"/ws/labeling/presence/{job.pk}/{sample.pk}/",
        "can_annotate": has_perm(request.user, job.workspace, "annotation:update"),
        "can_edit_labels": has_perm(request.user, job.workspace, "labeling:update"),
        "preview_edge": settings.ATELIER_LABELING_PREVIEW_EDGE,
        "canvas": job.labeling_type in CANVAS_TYPES,
        "csrf": get_token(request),
    }
    return render(request, "labeling/workbench.html", {"job": job, "sample": sample, "config": config,
                                                       "guide_html": guide.render(job.guide, job)})


@login_required
@require_GET
def sample_media(request, pk, sample_id):
    """The sample's file (ranges for audio/video), or with `?preview=1` a downscaled image."""
    job = _job(request, pk)
    sample = selectors.sample_get(job, sample_id)
    if request.GET.get("preview"):
        return media.preview_response(request, sample)
    return media.media_response(request, sample)
