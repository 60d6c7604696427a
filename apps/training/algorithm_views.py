"""Algorithm pages: create (also "Save as algorithm" from a job), edit, and the tabbed detail page;
plus the job form's "get input data size" check. Views are thin: services validate and save."""
from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from apps.core.permissions import has_perm, require_perm
from apps.core.storage import get_storage

from . import selectors, services
from .choices import PRESET_MODES, BootMode
from .forms import AlgorithmForm
from .tables import TrainingJobTable

EDITABLE = ("description", "boot_mode", "engine", "image", "code_dir", "boot_file", "boot_command", "inputs",
            "outputs", "hyperparameters", "policies", "resource_types", "multi_card", "distributed")


def _initial_from(values: dict) -> dict:
    """Form initial values from an algorithm's (or a job's) stored values; JSON fields as text."""
    initial = {k: values.get(k) for k in ("name", *EDITABLE) if k in values}
    for key in ("inputs", "outputs", "hyperparameters"):
        initial[key] = json.dumps(values.get(key) or [])
    initial["policies"] = json.dumps(values["policies"]) if values.get("policies") else ""
    if initial.get("boot_mode") not in (*PRESET_MODES, BootMode.CUSTOM):
        initial["boot_mode"] = BootMode.PRESET
    return initial


def _save(request, form, algorithm=None):
    """Create or update from a valid form; returns the algorithm or None (errors put on the form)."""
    data = dict(form.cleaned_data)
    values = {k: data[k] for k in EDITABLE}
    values["code_dir"] = data["code_dir"].uri if data["code_dir"] else ""
    values["engine"] = data["engine"] or ("python" if data["boot_mode"] in PRESET_MODES else "")
    try:
        if algorithm is None:
            return services.algorithm_create(user=request.user, workspace=request.workspace, name=data["name"],
                                             **values)
        return services.algorithm_update(user=request.user, algorithm=algorithm, **values)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None,
                           errors if field in form.fields else [f"{field}: {e}" for e in errors])
    return None


def _size_warning(request, algorithm) -> None:
    """The > 50 MB code folder warning (the folder is copied to every node at every start)."""
    from apps.core.paths import parse

    from .codedirs import code_dir_stats

    if algorithm.code_dir:
        try:
            warning = code_dir_stats(parse(algorithm.code_dir)).warning
        except ValidationError:
            return
        if warning:
            messages.warning(request, warning)


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_create(request):
    """The create page; ?from_job=<id> pre-fills it from that job ("Save as algorithm")."""
    if request.workspace is None:
        raise Http404("No workspace.")
    require_perm(request.user, request.workspace, "algorithm:create")
    initial = {"boot_mode": BootMode.PRESET}
    source = None
    if request.GET.get("from_job"):
        source = selectors.training_job_get_for_user(request.user, request.GET["from_job"])
        if source.boot_mode == BootMode.BUILTIN:
            messages.error(request, "A built-in algorithm cannot be saved as your own algorithm.")
            return redirect("training:detail", source.pk)
        initial = _initial_from(services.algorithm_initial_from_job(source))
    form = AlgorithmForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        algorithm = _save(request, form)
        if algorithm is not None:
            messages.success(request, f'Algorithm "{algorithm.name}" created.')
            _size_warning(request, algorithm)
            return redirect("training:algorithm_detail", algorithm.pk)
    return render(request, "training/algorithm_form.html", {
        "form": form, "algorithm": None, "source_job": source, "tab": "algorithms"},
        status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_edit(request, pk):
    """Edit everything but the name and ID."""
    algorithm = selectors.algorithm_get_for_user(request.user, pk)
    require_perm(request.user, algorithm.workspace, "algorithm:update")
    values = {k: getattr(algorithm, k) for k in ("name", *EDITABLE)}
    form = AlgorithmForm(request.POST or None, initial=_initial_from(values), user=request.user, editing=True)
    if request.method == "POST" and form.is_valid():
        saved = _save(request, form, algorithm)
        if saved is not None:
            messages.success(request, f'Algorithm "{saved.name}" saved.')
            _size_warning(request, saved)
            return redirect("training:algorithm_detail", saved.pk)
    return render(request, "training/algorithm_form.html", {
        "form": form, "algorithm": algorithm, "tab": "algorithms"}, status=400 if form.errors else 200)


ALGORITHM_TABS = [("basic", "Basic info"), ("jobs", "Training jobs")]


def runtime_preview(algorithm, local_code_dir: str = "user-job-dir") -> list[tuple[str, str]]:
    """Where code, boot file and channels sit inside the run ($MA_MOUNT_PATH is the run directory)."""
    rows = [("Run directory", "$MA_MOUNT_PATH"), ("Local code folder", f"$MA_JOB_DIR = $MA_MOUNT_PATH/{local_code_dir}")]
    if algorithm.code_dir:
        folder = algorithm.code_dir.rstrip("/").rpartition("/")[2]
        rows.append(("Code folder", f"$MA_MOUNT_PATH/{local_code_dir}/{folder}"))
        if algorithm.boot_file:
            rows.append(("Boot file", f"$MA_MOUNT_PATH/{local_code_dir}/{folder}/{algorithm.boot_file}"))
    for channel in algorithm.inputs:
        rows.append((f"Input {channel['name']}", f"$MA_MOUNT_PATH/inputs/{channel['name']}_0/"))
    for channel in algorithm.outputs:
        rows.append((f"Output {channel['name']}", f"$MA_MOUNT_PATH/outputs/{channel['name']}_0/"))
    rows.append(("Scratch", "$MA_MOUNT_PATH/cache"))
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_detail(request, pk):
    """Tabs "Basic info" (every field, inline description edit: POST `description`) and "Training jobs"."""
    algorithm = selectors.algorithm_get_for_user(request.user, pk)
    if request.method == "POST":
        try:
            services.algorithm_update(user=request.user, algorithm=algorithm,
                                      description=request.POST.get("description", ""))
            messages.success(request, "Description saved.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("training:algorithm_detail", algorithm.pk)
    tab = request.GET.get("tab", "basic")
    tab = tab if tab in dict(ALGORITHM_TABS) else "basic"
    context = {"algorithm": algorithm, "tab_key": tab, "tab": "algorithms", "preview": runtime_preview(algorithm),
               "tabs": [{"label": label, "url": f"?tab={key}", "active": key == tab} for key, label in ALGORITHM_TABS],
               "can_update": has_perm(request.user, algorithm.workspace, "algorithm:update"),
               "can_delete": has_perm(request.user, algorithm.workspace, "algorithm:delete"),
               "can_create_job": has_perm(request.user, algorithm.workspace, "trainjob:create")}
    if tab == "jobs":
        from apps.core.tables import render_table

        table = TrainingJobTable(selectors.training_jobs_in(algorithm.workspace).filter(algorithm=algorithm),
                                 request.GET, id="algorithm-jobs")
        return render_table(request, "training/algorithm_detail.html", context, table)
    return render(request, "training/algorithm_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_delete(request, pk):
    """Delete after typing the algorithm's name; jobs made from it keep their own copy of its settings."""
    from apps.core.forms import ConfirmNameForm

    algorithm = selectors.algorithm_get_for_user(request.user, pk)
    require_perm(request.user, algorithm.workspace, "algorithm:delete")
    form = ConfirmNameForm(request.POST or None, expected=algorithm.name)
    if request.method == "POST" and form.is_valid():
        services.algorithm_delete(user=request.user, algorithm=algorithm)
        messages.success(request, f'Algorithm "{algorithm.name}" deleted.')
        return redirect("training:algorithm_list")
    return render(request, "training/algorithm_confirm_delete.html", {
        "algorithm": algorithm, "form": form, "tab": "algorithms",
        "action": reverse("training:algorithm_delete", args=[algorithm.pk]),
        "consequences": f"The algorithm is removed. The {algorithm.jobs.count()} training job(s) made from it keep "
                        f"their own copy of its settings; its code folder stays in storage."},
        status=400 if form.errors else 200)


@login_required
@require_GET
def input_size(request):
    """"Get input data size": total bytes of the given input paths against a node's scratch disk."""
    if request.workspace is None:
        raise Http404("No workspace.")
    require_perm(request.user, request.workspace, "trainjob:create")
    from apps.storage.selectors import storage_path_resolve

    total, errors = 0, []
    for uri in [u.strip() for u in request.GET.getlist("uri") if u.strip()][:20]:
        try:
            path = storage_path_resolve(request.user, uri, "storage:view", must_exist=True)
        except ValidationError as exc:
            errors.append(f"{uri}: {' '.join(exc.messages)}")
            continue
        total += sum(info.size for info in get_storage().walk(path))
    scratch = settings.ATELIER_TRAINING_SCRATCH_BYTES
    fits = total <= scratch
    message = (f"Inputs: {total / 1024 ** 2:.1f} MiB of {scratch / 1024 ** 3:.0f} GiB scratch disk."
               if fits else f"Inputs need {total / 1024 ** 3:.1f} GiB, more than the {scratch / 1024 ** 3:.0f} GiB "
                            f"scratch disk of a node; choose smaller inputs.")
    return JsonResponse({"bytes": total, "scratch_bytes": scratch, "fits": fits, "message": message,
                         "errors": errors}, status=400 if errors and not total else 200)


def algorithm_edit_url(algorithm) -> str:
    return reverse("training:algorithm_edit", args=[algorithm.pk])
