"""Training pages: jobs (list, create, detail with events, logs, metrics, resources, evaluation),
experiments (list, detail, compare) and algorithms. Views are thin: services do the work."""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.paths import parse
from apps.core.permissions import has_perm, require_perm
from apps.core.services import events_for
from apps.core.tables import render_table

from . import charts, selectors, services
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
                              "boot_mode": a.boot_mode, "distributed": a.distributed}
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
    return {"algorithms": algorithms, "builtins": builtins, "flavors": flavors}


@login_required
@require_http_methods(["GET", "POST"])
def job_create(request):
    """The create form; ?from=<job id> pre-fills it from that job (rebuild)."""
    _require_view(request)
    require_perm(request.user, request.workspace, "trainjob:create")
    initial = {"name": services.job_name_suggest(), "experiment_name": f"exp-{services.job_name_suggest()[4:]}"}
    if request.GET.get("from"):
        source = selectors.training_job_get_for_user(request.user, request.GET["from"])
        initial = services.training_job_initial_from(source)
        initial["inputs"] = json.dumps(initial["inputs"])
        initial["outputs"] = json.dumps(initial["outputs"])
        initial["hyperparameters"] = json.dumps(initial["hyperparameters"])
        initial["env"] = "\n".join(f"{k}={v}" for k, v in initial["env"].items())
        initial["experiment_name"] = f"exp-{services.job_name_suggest()[4:]}"
    form = TrainingJobForm(request.POST or None, request.FILES or None, initial=initial, user=request.user,
                           workspace=request.workspace)
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
                builtin=data["builtin"], code_dir=data["code_dir"].uri if data["code_dir"] else "",
                boot_file=data["boot_file"], boot_command=data["boot_command"],
                local_code_dir=data["local_code_dir"], working_dir=data["working_dir"], inputs=data["inputs"],
                outputs=data["outputs"], hyperparameters=data["hyperparameters"], env=data["env"],
                pool=data["pool"], flavor=data["flavor"], node_count=data["node_count"], priority=data["priority"],
                auto_restart=data["auto_restart"], max_runtime_hours=data["max_runtime_hours"],
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
        ("resources", "Resource usage"), ("evaluation", "Evaluation")]


@login_required
@require_GET
def job_detail(request, pk):
    """A job's page; ?tab= selects the panel. The status card alone is its htmx partial."""
    job = selectors.training_job_get_for_user(request.user, pk)
    runs = list(selectors.job_runs(job))
    tab = request.GET.get("tab", "overview")
    if tab not in dict(TABS):
        tab = "overview"
    context = {"job": job, "runs": runs, "tab": tab,
               "tabs": [{"label": label, "url": f"?tab={key}", "active": key == tab} for key, label in TABS],
               "can_stop": job.status in LIVE_JOB_STATUSES and has_perm(request.user, job.workspace, "trainjob:stop"),
               "can_delete": job.status in TERMINAL_JOB_STATUSES and has_perm(request.user, job.workspace,
                                                                              "trainjob:delete"),
               "can_create": has_perm(request.user, job.workspace, "trainjob:create")}
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
        context["usage"] = [{"run": run, "figure": charts.usage_figure(_samples(run))} for run in runs]
        context["usage_figures"] = [u["figure"] for u in context["usage"]]
    elif tab == "evaluation":
        context["evaluation"] = _evaluation(job)
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


def _samples(run):
    from apps.runtime.models import NodeSample

    if run.worker_id is None or run.started_at is None:
        return []
    qs = NodeSample.objects.filter(node_id=run.worker_id, at__gte=run.started_at)
    if run.finished_at:
        qs = qs.filter(at__lte=run.finished_at)
    return list(qs.order_by("at")[:5000])


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
def node_log(request, pk, rank):
    """The whole log of one node as text (download)."""
    from apps.runtime.logstream import log_chunks

    job = selectors.training_job_get_for_user(request.user, pk)
    run = next((r for r in selectors.job_runs(job) if r.node_rank == int(rank)), None)
    if run is None:
        raise Http404("No such node.")
    response = StreamingHttpResponse(log_chunks(run), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{job.name}-worker-{rank}.log"'
    return response


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
    return render_table(request, "training/algorithm_list.html", {"table": table, "tab": "algorithms"}, table)


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_detail(request, pk):
    algorithm = selectors.algorithm_get_for_user(request.user, pk)
    if request.method == "POST":
        try:
            services.algorithm_delete(user=request.user, algorithm=algorithm)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("training:algorithm_detail", algorithm.pk)
        messages.success(request, f'Algorithm "{algorithm.name}" deleted.')
        return redirect("training:algorithm_list")
    jobs = selectors.training_jobs_in(algorithm.workspace).filter(algorithm=algorithm)[:200]
    preview = _runtime_preview(algorithm)
    return render(request, "training/algorithm_detail.html", {"algorithm": algorithm, "jobs": jobs,
                                                              "preview": preview, "tab": "algorithms"})


def _runtime_preview(algorithm) -> list[tuple[str, str]]:
    """Where code, boot file and channels sit in the run directory ($MA_MOUNT_PATH)."""
    rows = []
    if algorithm.code_dir:
        folder = algorithm.code_dir.rstrip("/").rpartition("/")[2]
        rows.append(("Code folder", f"$MA_JOB_DIR/{folder}  ($MA_MOUNT_PATH/user-job-dir/{folder})"))
        if algorithm.boot_file:
            rows.append(("Boot file", f"$MA_JOB_DIR/{folder}/{algorithm.boot_file}"))
    for channel in algorithm.inputs:
        rows.append((f"Input {channel['name']}", f"$MA_MOUNT_PATH/inputs/{channel['name']}_0/"))
    for channel in algorithm.outputs:
        rows.append((f"Output {channel['name']}", f"$MA_MOUNT_PATH/outputs/{channel['name']}_0/"))
    return rows


@login_required
@require_POST
def save_as_algorithm(request, pk):
    """"Save as algorithm": create an algorithm from the job's settings, then open it."""
    job = selectors.training_job_get_for_user(request.user, pk)
    values = services.algorithm_initial_from_job(job)
    name = request.POST.get("name") or values.pop("name")
    values.pop("name", None)
    try:
        algorithm = services.algorithm_create(user=request.user, workspace=job.workspace, name=name, **values)
    except ValidationError as exc:
        messages.error(request, " ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items()))
        return redirect("training:detail", job.pk)
    messages.success(request, f'Algorithm "{algorithm.name}" created from the job.')
    return redirect(reverse("training:algorithm_detail", args=[algorithm.pk]))
