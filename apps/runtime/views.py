"""Resources pages: overview, pools, flavors, worker nodes, runs (list and detail), monitoring.

Views are thin: services apply rules and audit; runs come through the scoped accessor
(another workspace → 404), the same one the log WebSocket uses.
"""
from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.core.permissions import has_perm
from apps.core.selectors import timeline_for
from apps.core.tables import render_table

from . import charts, selectors, services
from .choices import ACTIVE_STATUSES, PoolStatus, RunStatus
from .exitcodes import exit_code_label
from .forms import FlavorForm, PoolForm
from .downloads import log_download_response
from .models import Flavor, Pool
from .scheduling import flavors_with_availability
from .tables import RunTable

# Time windows of the monitoring page, in hours (the samples are kept 72 h by default).
MONITORING_WINDOWS = (1, 6, 24, 72)


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, msgs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, msgs)
    else:
        form.add_error(None, exc.messages)


def _tabs(active: str) -> list[dict]:
    entries = [("overview", "Overview", "runtime:overview"), ("pools", "Pools", "runtime:pool_list"),
               ("flavors", "Flavors", "runtime:flavor_list"), ("workers", "Worker nodes", "runtime:worker_list"),
               ("runs", "Runs", "runtime:run_list"), ("monitoring", "Monitoring", "runtime:monitoring")]
    return [{"label": label, "url": reverse(name), "active": key == active} for key, label, name in entries]


def _resources_page(request) -> None:
    selectors.require_resource_view(request.user)


@login_required
@require_GET
def overview(request):
    _resources_page(request)
    workers = list(selectors.workers_list())
    online = [w for w in workers if selectors.worker_is_online(w)]
    gpu_total = sum(w.gpu_count for w in online)
    gpu_leased = sum(w.gpus_leased for w in online)
    runs = selectors.runs_in(request.workspace)
    counts = dict(runs.values_list("status").annotate(n=Count("id")).order_by())
    flavors = flavors_with_availability(selectors.flavors_list())
    context = {
        "tabs": _tabs("overview"),
        "cards": [
            {"label": "Pools", "value": Pool.objects.filter(status=PoolStatus.ENABLED).count(), "icon": "layers",
             "url": reverse("runtime:pool_list")},
            {"label": "Workers online", "value": f"{len(online)} / {len(workers)}", "icon": "server",
             "url": reverse("runtime:worker_list")},
            {"label": "GPUs in use", "value": f"{gpu_leased} / {gpu_total}", "icon": "cpu",
             "url": reverse("runtime:monitoring")},
            {"label": "Active runs", "value": sum(counts.get(s, 0) for s in ACTIVE_STATUSES), "icon": "activity",
             "url": reverse("runtime:run_list") + "?status=running"},
        ],
        "queued": counts.get(RunStatus.QUEUED, 0),
        "recent_runs": list(runs.order_by("-created_at")[:8]),
        "flavors": flavors,
        "workers": workers[:8],
    }
    return render(request, "runtime/overview.html", context)


# ---- pools -------------------------------------------------------------------------------------


@login_required
def pool_list(request):
    _resources_page(request)
    form = PoolForm()
    if request.method == "POST":
        form = PoolForm(request.POST)
        if form.is_valid():
            try:
                pool = services.pool_create(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Pool {pool.name} created; start workers with -Q {pool.queue}.")
                return redirect("runtime:pool_list")
    pools = list(selectors.pools_list())
    return render(request, "runtime/pool_list.html", {
        "tabs": _tabs("pools"), "pools": pools, "form": form, "is_staff": request.user.is_staff,
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def pool_status(request, name):
    pool = Pool.objects.filter(name=name).first()
    if pool is None:
        raise Http404
    # One form per change: either "status" (enable/disable) or "dedicated" (1/0).
    dedicated = request.POST.get("dedicated")
    try:
        if dedicated is not None:
            services.pool_update(actor=request.user, pool=pool, dedicated=dedicated == "1")
        else:
            services.pool_update(actor=request.user, pool=pool, status=request.POST.get("status", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if dedicated is not None:
            kind = "dedicated" if pool.dedicated else "shared"
            messages.success(request, f"Pool {pool.name} is now {kind}.")
        else:
            messages.success(request, f"Pool {pool.name} is now {pool.get_status_display().lower()}.")
    return redirect("runtime:pool_list")


# ---- flavors -----------------------------------------------------------------------------------


@login_required
def flavor_list(request):
    _resources_page(request)
    form = FlavorForm()
    if request.method == "POST":
        form = FlavorForm(request.POST)
        if form.is_valid():
            try:
                flavor = services.flavor_create(actor=request.user, **form.service_values())
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Flavor {flavor.name} created.")
                return redirect("runtime:flavor_list")
    flavors = flavors_with_availability(selectors.flavors_list())
    return render(request, "runtime/flavor_list.html", {
        "tabs": _tabs("flavors"), "flavors": flavors, "form": form, "is_staff": request.user.is_staff,
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def flavor_delete(request, name):
    flavor = Flavor.objects.filter(name=name).first()
    if flavor is None:
        raise Http404
    try:
        services.flavor_delete(actor=request.user, flavor=flavor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Flavor {name} deleted.")
    return redirect("runtime:flavor_list")


# ---- worker nodes ------------------------------------------------------------------------------


@login_required
@require_GET
def worker_list(request):
    _resources_page(request)
    workers = [(w, selectors.worker_is_online(w)) for w in selectors.workers_list()]
    context = {"tabs": _tabs("workers"), "workers": workers}
    # The table refreshes itself every few seconds (hx-trigger="every 5s"): answer with the partial.
    if getattr(request, "htmx", None) and request.htmx.target == "worker-rows":
        return render(request, "runtime/worker_list.html#worker-rows", context)
    return render(request, "runtime/worker_list.html", context)


@login_required
@require_GET
def worker_detail(request, pk):
    _resources_page(request)
    node = selectors.worker_get(pk)
    visible = {run.pk: run for run in selectors.worker_runs(node, request.user)}
    leases = [(lease, visible.get(lease.run_id)) for lease in selectors.gpu_leases_of(node)]
    return render(request, "runtime/worker_detail.html", {
        "tabs": _tabs("workers"), "node": node, "online": selectors.worker_is_online(node),
        "runs": list(visible.values()), "hidden_runs": node.running - len(visible), "leases": leases,
        "leased": {lease.index for lease, _ in leases}, "timeline": timeline_for(node),
    })


# ---- runs --------------------------------------------------------------------------------------


@login_required
@require_GET
def run_list(request):
    if request.workspace is None or not has_perm(request.user, request.workspace, "run:view"):
        raise PermissionDenied("Your role does not allow run:view.")
    table = RunTable(selectors.runs_in(request.workspace), request.GET, id="runs")
    return render_table(request, "runtime/run_list.html", {"tabs": _tabs("runs")}, table)


@login_required
@require_GET
def run_detail(request, pk):
    run = selectors.run_get_for_user(request.user, pk)
    series, metric_after = selectors.run_metric_snapshot(run)
    nodes = selectors.run_group(run) if run.node_count > 1 else []
    return render(request, "runtime/run_detail.html", {
        "tabs": _tabs("runs"),
        "run": run,
        "nodes": nodes,
        "exit_text": exit_code_label(run.exit_code),
        "can_stop": has_perm(request.user, run.workspace, "run:stop") and not run.is_terminal,
        "can_restart": has_perm(request.user, run.workspace, "run:restart") and run.is_terminal,
        "timeline": timeline_for(run),
        "viewer": {
            "socket": f"/ws/runtime/runs/{run.pk}/",
            "metric_after": metric_after,
            "download": reverse("runtime:run_log", args=[run.pk]),
            "status": services.run_status_payload(run),
        },
        "metric_charts": charts.metric_figures(series),
    })


@login_required
@require_POST
def run_stop(request, pk):
    run = selectors.run_get_for_user(request.user, pk)
    try:
        services.run_stop(user=request.user, run=run)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Stop requested: the process gets SIGTERM, then SIGKILL after the grace period.")
    return redirect("runtime:run_detail", pk=run.pk)


@login_required
@require_POST
def run_restart(request, pk):
    run = selectors.run_get_for_user(request.user, pk)
    try:
        services.run_restart(user=request.user, run=run)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Restarted as a new attempt; the log continues below.")
    return redirect("runtime:run_detail", pk=run.pk)


@login_required
@require_GET
def run_log(request, pk):
    run = selectors.run_get_for_user(request.user, pk)
    return log_download_response(request, run)


# ---- monitoring --------------------------------------------------------------------------------


def _window(request) -> int:
    raw = request.GET.get("hours", "1")
    return int(raw) if raw.isdigit() and int(raw) in MONITORING_WINDOWS else 1


def _node_charts(hours: int) -> tuple[list[dict], bool]:
    samples = selectors.node_samples(since=timezone.now() - timedelta(hours=hours))
    return charts.node_figures(samples), any(rows for _node, rows in samples)


@login_required
@require_GET
def monitoring(request):
    _resources_page(request)
    hours = _window(request)
    node_charts, has_samples = _node_charts(hours)
    return render(request, "runtime/monitoring.html", {
        "tabs": _tabs("monitoring"), "hours": hours, "windows": MONITORING_WINDOWS, "node_charts": node_charts,
        "has_samples": has_samples, "data_url": reverse("runtime:monitoring_data") + f"?hours={hours}",
    })


@login_required
@require_GET
def monitoring_data(request):
    _resources_page(request)
    node_charts, _ = _node_charts(_window(request))
    return JsonResponse({"charts": node_charts})
