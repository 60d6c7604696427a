"""Training pages: jobs (list, create, detail with events, logs, metrics, resources, evaluation),
experiments (list, detail, compare) and algorithms. Views are thin: services do the work."""
from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.paths import parse
from apps.core.permissions import has_perm, require_perm
from apps.core.services import events_for
from apps.core.tables import render_table

from . import charts, dataset_picker, selectors, services
from .builtins import builtin_definitions
from .choices import LIVE_JOB_STATUSES, TERMINAL_JOB_STATUSES, Builtin, TrainingStatus
from .codedirs import code_upload
from .forms import TrainingJobForm
from .tables import AlgorithmTable, ExperimentTable, TrainingJobTable


def _require_view(request):
    if request.workspace is None:
        raise Http404("No workspace.")
    require_perm(request.user, request.workspace, "trainjob:view")


@login_required
@require_GET
def job_list(request):
    """Training jobs of the current workspace ("only mine" = ?mine=<your username>)."""
    _require_view(request)
    table = TrainingJobTable(selectors.training_jobs_in(request.workspace), request.GET, id="jobs")
    return render_table(request, "training/trainingjob_list.html", {
        "table": table, "can_create": has_perm(request.user, request.workspace, "trainjob:create"),
        "tab": "jobs"}, table)


def _editor_data(request) -> dict:
    """What the form's editor module needs: algorithms' and built-ins' definitions, flavors per pool."""
    from apps.runtime.scheduling import flavor_availability

    from .models import Algorithm

    algorithms = {str(a.pk): {"inputs": a.inputs, "outputs": a.outputs, "hyperparameters": a.hyperparameters,
                              "boot_mode": a.boot_mode, "distributed": a.distributed,
                              # Shown greyed out on the form: the algorithm fixes them (item 8).
                              "boot": {"boot_mode": a.boot_mode, "engine": a.engine, "image": a.image,
                                       "code_dir": a.code_dir, "boot_file": a.boot_file,
                                       "boot_command": a.boot_command}}
                  for a in Algorithm.objects.in_workspace(request.workspace)}
    builtins = {}
    for key in Builtin.values:
        inputs, outputs, hps = builtin_definitions(key)
        builtins[key] = {"inputs": inputs, "outputs": outputs, "hyperparameters": hps}
    from apps.runtime.models import Flavor

    flavors = []
    for flavor in Flavor.objects.prefetch_related("pools"):
        ok, reason = flavor_availability(flavor)
        flavors.append({"id": flavor.pk, "label": f"{flavor.name} ({flavor.summary})", "pools": [p.pk for p in
                                                                                                 flavor.pools.all()],
                        "available": ok, "reason": reason})
    return {"algorithms": algorithms, "builtins": builtins, "flavors": flavors,
            "dataset_picker": dataset_picker.picker_boot(request.user, request.workspace),
            "pools": selectors.pool_overview()}


@login_required
@require_GET
def dataset_versions(request):
    """The job form's dataset-version picker: published versions of this workspace matching
    ?label_type=&format=&split= (datasets item 48), as JSON; a bad filter answers 400 with the reason."""
    _require_view(request)
    require_perm(request.user, request.workspace, "trainjob:create")
    try:
        filters = dataset_picker.picker_filters_clean(request.GET)
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    versions, truncated = dataset_picker.picker_versions(request.user, request.workspace, **filters)
    return JsonResponse({"versions": versions, "truncated": truncated, "limit": dataset_picker.PICKER_LIMIT})


@login_required
@require_http_methods(["GET", "POST"])
def job_create(request):
    """The create form; ?from=<job id> pre-fills it from that job (rebuild)."""
    _require_view(request)
    require_perm(request.user, request.workspace, "trainjob:create")
    initial = {"name": services.job_name_suggest(), "experiment_name": f"exp-{services.job_name_suggest()[4:]}"}
    if request.GET.get("algorithm", "").isdigit():  # "Create training job" from an algorithm's page
        initial["algorithm"] = selectors.algorithm_get_for_user(request.user, request.GET["algorithm"]).pk
    if request.GET.get("from"):
        source = selectors.training_job_get_for_user(request.user, request.GET["from"])
        initial = services.training_job_initial_from(source)
        initial["inputs"] = json.dumps(initial["inputs"])
        initial["outputs"] = json.dumps(initial["outputs"])
        initial["hyperparameters"] = json.dumps(initial["hyperparameters"])
        initial["env"] = "\n".join(f"{k}={v}" for k, v in initial["env"].items())
        initial["mounts"] = "\n".join(f"{m['source']} => {m['path']}" for m in initial["mounts"])
        custom = initial.pop("custom_flavor") or {}
        if custom:
            initial.update(custom_flavor_on=True, custom_cpus=custom["cpus"], custom_memory_mb=custom["memory_mb"],
                           custom_gpus=custom["gpus"])
        initial["experiment_name"] = f"exp-{services.job_name_suggest()[4:]}"
    form = TrainingJobForm(request.POST or None, request.FILES or None, initial=initial, user=request.user,
                           workspace=request.workspace,
                           can_high_priority=has_perm(request.user, request.workspace, "trainjob:set_high_priority"))
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            upload = data.pop("code_files")
            if upload:
                if not data["code_dir"]:
                    raise ValidationError({"code_dir": ["Choose the code folder the upload is stored in."]})
                require_perm(request.user, request.workspace, "storage:create")
                code_upload(destination=data["code_dir"], files=[upload])
            algorithm = None
            if data.get("algorithm"):
                algorithm = selectors.algorithm_get_for_user(request.user, data["algorithm"])
            job = services.training_job_create(
                user=request.user, workspace=request.workspace, name=data["name"],
                description=data["description"], algorithm=algorithm, experiment=data["experiment"],
                experiment_name=data["experiment_name"], experiment_description=data["experiment_description"],
                experiment_id=data["experiment_id"], boot_mode=data["boot_mode"], engine=data["engine"] or "python",
                builtin=data["builtin"], image=data["image"], code_dir=data["code_dir"].uri if data["code_dir"] else "",
                boot_file=data["boot_file"], boot_command=data["boot_command"],
                local_code_dir=data["local_code_dir"], working_dir=data["working_dir"], inputs=data["inputs"],
                outputs=data["outputs"], hyperparameters=data["hyperparameters"], env=data["env"],
                pool=data["pool"], flavor=data["flavor"], node_count=data["node_count"], priority=data["priority"],
                auto_restart=data["auto_restart"], max_runtime_hours=data["max_runtime_hours"],
                run_as_uid=data["run_as_uid"],
                custom_flavor=form.custom_flavor(), mounts=data["mounts"], persist_logs=data["persist_logs"],
                log_path=data["log_path"].uri if data["log_path"] else "", notify_channel=data["notify_channel"],
                notify_target=data["notify_target"], notify_events=data["notify_events"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None,
                               errors if field in form.fields else [f"{field}: {e}" for e in errors])
        else:
            messages.success(request, f'Training job "{job.name}" submitted.')
            return redirect("training:detail", job.pk)
    return render(request, "training/trainingjob_form.html", {
        "form": form, "editor": _editor_data(request), "tab": "jobs"}, status=400 if form.errors else 200)


TABS = [("overview", "Overview"), ("events", "Events"), ("logs", "Logs"), ("metrics", "Metrics"),
        ("resources", "Resource usage"), ("evaluation", "Evaluation"), ("recovery", "Fault recovery")]


@login_required
@require_GET
def job_detail(request, pk):
    """A job's page; ?tab= selects the panel. The status card alone is its htmx partial."""
    job = selectors.training_job_get_for_user(request.user, pk)
    runs = list(selectors.job_runs(job))
    tab = request.GET.get("tab", "overview")
    # The fault-recovery tab exists only once a recovery happened (as ModelArts shows it).
    shown = [(key, label) for key, label in TABS if key != "recovery" or job.restart_count]
    if tab not in dict(shown):
        tab = "overview"
    context = {"job": job, "runs": runs, "tab": tab,
               "tabs": [{"label": label, "url": f"?tab={key}", "active": key == tab} for key, label in shown],
               "can_stop": job.status in LIVE_JOB_STATUSES and has_perm(request.user, job.workspace, "trainjob:stop"),
               "can_delete": job.status in TERMINAL_JOB_STATUSES and has_perm(request.user, job.workspace,
                                                                              "trainjob:delete"),
               "can_create": has_perm(request.user, job.workspace, "trainjob:create"),
               "can_update": has_perm(request.user, job.workspace, "trainjob:update"),
               # Item 24: the code folder is opened for editing only while no node can be reading it.
               "can_edit_code": bool(job.code_dir) and job.status not in LIVE_JOB_STATUSES}
    if request.htmx and request.htmx.target == "job-status":
        return render(request, "training/trainingjob_detail.html#status-card", context)
    _shell_tab(request, job, runs, context)
    if tab == "events":
        events = list(events_for(job).order_by("-created_at", "-id")[:500])[::-1]
        context["timeline"] = {"source": "training.trainingjob", "pk": job.pk, "events": events,
                               "truncated": len(events) == 500}
        context["node_events"] = _node_events(runs)
    elif tab == "metrics":
        context["figures"] = charts.metric_figures({"worker-0": selectors.job_metric_series(job)})
    elif tab == "resources":
        from .log_views import resource_nodes

        context["usage"] = resource_nodes(job, runs)
        context["usage_figures"] = [u["figure"] for u in context["usage"]]
    elif tab == "recovery":
        from .recovery import job_attempts

        context["attempts"] = job_attempts(job)
        context["restart_wait_minutes"] = settings.ATELIER_TRAINING_RESTART_WAIT_SECONDS // 60
    elif tab == "evaluation":
        context["evaluation"] = _evaluation(job)
    else:
        from .notifications import EVENT_LABELS

        context["notify_events"] = [EVENT_LABELS.get(e, e) for e in job.notify_events]
        context["log_retention_days"] = settings.ATELIER_TRAINING_LOG_RETENTION_DAYS
    return render(request, "training/trainingjob_detail.html", context)


def _shell_tab(request, job, runs, context) -> None:
    """The Shell tab: a terminal into a node (seed-05 §17 items 24, 41), listed only while the job
    is Running and the role allows run:exec (the WebSocket checks both again)."""
    if job.status != TrainingStatus.RUNNING or not has_perm(request.user, job.workspace, "run:exec"):
        return
    from apps.runtime.shell import shell_panel

    active = request.GET.get("tab") == "shell"
    for item in context["tabs"]:
        item["active"] = item["active"] and not active
    context["tabs"].append({"label": "Shell", "url": "?tab=shell", "active": active})
    if active:
        context["tab"] = "shell"
        context["shell"] = shell_panel(runs, node_label="Node")


def _node_events(runs):
    from apps.core.services import events_for as run_events

    out = []
    for run in runs:
        out.extend((e.created_at, f"[{run.task_name}] {e.message.removeprefix(f'[{run.task_name}] ')}", e.level)
                   for e in run_events(run))
    return sorted(out)


def _evaluation(job) -> dict | None:
    from apps.core.storage import NotFound, get_storage

    for channel in job.outputs:
        path = parse(channel["uri"]).child("eval_result.json")
        try:
            with get_storage().open(path) as fh:
                return json.loads(fh.read(10 * 1024 * 1024))
        except (NotFound, FileNotFoundError, ValueError):
            continue
        except Exception:  # unreadable storage: the tab says there is nothing to show
            continue
    return None


@login_required
@require_POST
def job_stop(request, pk):
    job = selectors.training_job_get_for_user(request.user, pk)
    try:
        services.training_job_stop(user=request.user, job=job)
        messages.success(request, f'Terminating "{job.name}".')
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("training:detail", job.pk)


@login_required
@require_POST
def job_description(request, pk):
    """Edit a job's description (seed-05 §17 item 28); every other field is fixed after creation."""
    job = selectors.training_job_get_for_user(request.user, pk)
    try:
        services.training_job_update(user=request.user, job=job, description=request.POST.get("description", ""))
        messages.success(request, "Description saved.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("training:detail", job.pk)


@login_required
@require_POST
def job_delete(request, pk):
    job = selectors.training_job_get_for_user(request.user, pk)
    try:
        services.training_job_delete(user=request.user, job=job)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("training:detail", job.pk)
    messages.success(request, f'Training job "{job.name}" deleted.')
    return redirect("training:list")


@login_required
@require_GET
def experiment_list(request):
    _require_view(request)
    table = ExperimentTable(selectors.experiments_in(request.workspace), request.GET, id="experiments")
    return render_table(request, "training/experiment_list.html", {"table": table, "tab": "experiments"}, table)


@login_required
@require_http_methods(["GET", "POST"])
def experiment_detail(request, pk):
    experiment = selectors.experiment_get_for_user(request.user, pk)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "delete":
                count = services.experiment_delete(user=request.user, experiment=experiment,
                                                   confirm=request.POST.get("confirm", ""))
                messages.success(request, f'Experiment "{experiment.name}" and its {count} jobs deleted.')
                return redirect("training:experiment_list")
            services.experiment_update(user=request.user, experiment=experiment, name=request.POST.get("name"),
                                       description=request.POST.get("description"))
            messages.success(request, "Experiment saved.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("training:experiment_detail", experiment.pk)
    table = TrainingJobTable(selectors.training_jobs_in(experiment.workspace).filter(experiment=experiment),
                             request.GET, id="jobs")
    return render_table(request, "training/experiment_detail.html", {"experiment": experiment, "table": table,
                                                                     "tab": "experiments"}, table)


@login_required
@require_GET
def compare(request):
    """Jobs side by side: ?experiment=<id> (its jobs) or ?jobs=1,2,3 — hyperparameters, final metrics, curves."""
    _require_view(request)
    jobs_qs = selectors.training_jobs_in(request.workspace)
    experiment = None
    if request.GET.get("experiment"):
        experiment = selectors.experiment_get_for_user(request.user, request.GET["experiment"])
        jobs = list(jobs_qs.filter(experiment=experiment).order_by("created_at"))
    else:
        ids = [int(x) for x in request.GET.get("jobs", "").split(",") if x.strip().isdigit()][:20]
        jobs = list(jobs_qs.filter(pk__in=ids).order_by("created_at"))
    hp_names = sorted({h["name"] for job in jobs for h in job.hyperparameters})
    finals = {job.pk: selectors.job_final_metrics(job) for job in jobs}
    metric_names = sorted({name for values in finals.values() for name in values})
    rows = [{"job": job, "hyperparameters": [next((h["value"] for h in job.hyperparameters if h["name"] == n), None)
                                             for n in hp_names],
             "metrics": [finals[job.pk].get(n) for n in metric_names]} for job in jobs]
    figures = charts.metric_figures({job.name: selectors.job_metric_series(job) for job in jobs})
    return render(request, "training/experiment_compare.html", {
        "experiment": experiment, "rows": rows, "hp_names": hp_names, "metric_names": metric_names,
        "figures": figures, "tab": "experiments"})


@login_required
@require_GET
def algorithm_list(request):
    _require_view(request)
    table = AlgorithmTable(selectors.algorithms_in(request.workspace), request.GET, id="algorithms")
    return render_table(request, "training/algorithm_list.html", {
        "table": table, "tab": "algorithms",
        "can_create": has_perm(request.user, request.workspace, "algorithm:create")}, table)


@login_required
@require_http_methods(["GET", "POST"])
def save_as_algorithm(request, pk):
    """"Save as algorithm": open the create-algorithm form pre-filled from the job."""
    job = selectors.training_job_get_for_user(request.user, pk)
    return redirect(f"{reverse('training:algorithm_create')}?from_job={job.pk}")
