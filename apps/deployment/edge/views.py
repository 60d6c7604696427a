"""Edge pages under /services/edge/: edge services (list, deploy, detail), edge nodes (list with
the enrol dialog, detail with log settings and monitoring, freeze, activate, delete), edge pools,
load balancers and access ports. Thin: forms parse, services decide, selectors scope."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.permissions import has_perm, require_perm
from apps.core.selectors import timeline_for
from apps.core.tables import render_table
from apps.runtime.models import Flavor

from ..choices import DeployType, ModelStatus
from ..models import AiAppVersion
from ..views import _apply_errors, _confirm_delete
from . import charts, selectors, serving, services
from .forms import AccessPortForm, EdgeNodeForm, EdgePoolForm, EdgeServiceForm, LoadBalancerForm, LogSettingsForm
from .tables import EdgeNodeTable, EdgePoolTable, EdgeServiceTable, LoadBalancerTable

TABS = [("deployment:edge_service_list", "Edge services"), ("deployment:edge_node_list", "Edge nodes"),
        ("deployment:edge_pool_list", "Edge pools"), ("deployment:edge_lb_list", "Load balancers and ports")]
# Why the lifecycle buttons are off (seed-06 §5: not offered for ModelArts edge node/pool deployments).
NO_LIFECYCLE = ("Start, stop and restart are not available for services deployed on edge nodes or edge pools: "
                "the agent keeps the instances running; delete the service and deploy again to change it.")


def edge_tabs(current: str) -> list[dict]:
    """The Services section's tabs: online and batch lists, then the edge pages."""
    base = reverse("deployment:service_list")
    tabs = [{"label": "Online services", "url": f"{base}?kind=online", "active": False},
            {"label": "Batch services", "url": f"{base}?kind=batch", "active": False}]
    return tabs + [{"label": label, "url": reverse(name), "active": name == current} for name, label in TABS]


def _workspace(request):
    workspace = request.workspace
    if workspace is None:
        raise Http404("No workspace.")
    require_perm(request.user, workspace, "service:view")
    return workspace


def _target(request, value: str):
    kind, _, pk = (value or "").partition(":")
    if kind == "node":
        return {"node": selectors.edge_node_get_for_user(request.user, pk)}
    if kind == "pool":
        return {"edge_pool": selectors.edge_pool_get_for_user(request.user, pk)}
    return {}


# ---- edge services ----------------------------------------------------------------------------


@login_required
@require_GET
def edge_service_list(request):
    workspace = _workspace(request)
    table = EdgeServiceTable(selectors.edge_services_in(workspace), request.GET, id="edge-services")
    return render_table(request, "deployment/edgeservice_list.html", {
        "tabs": edge_tabs("deployment:edge_service_list"),
        "can_create": has_perm(request.user, workspace, "service:create")}, table)


def _service_form(request, workspace, data=None):
    # deploy_types is a JSON list; filtering in Python keeps SQLite and PostgreSQL alike.
    versions = [v for v in AiAppVersion.objects.filter(app__workspace=workspace, status=ModelStatus.NORMAL)
                .select_related("app") if DeployType.EDGE in v.deploy_types]
    form = EdgeServiceForm(data, nodes=list(selectors.edge_nodes_in(workspace)),
                           pools=list(selectors.edge_pools_in(workspace)), versions=versions,
                           flavors=list(Flavor.objects.filter(gpus=0)))
    form.versions_facts = form.version_facts(versions)
    return form


@login_required
@require_http_methods(["GET", "POST"])
def edge_service_create(request):
    workspace = _workspace(request)
    require_perm(request.user, workspace, "service:create")
    form = _service_form(request, workspace, request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            service = serving.edge_service_deploy(
                user=request.user, workspace=workspace, name=d["name"], description=d["description"],
                model_version=AiAppVersion.objects.select_related("app").get(pk=d["model_version"]),
                flavor=Flavor.objects.get(name=d["flavor"]), instance_count=d["instance_count"],
                port_mappings=form.mappings(), volumes=form.volume_rows(), start_params=form.params(),
                stream_count=d.get("stream_count"), **_target(request, d["target"]))
        except ValidationError as exc:
            _apply_errors(form, exc, {"port_mappings": "container_port"})
        else:
            messages.success(request, f'Edge service "{service.name}" is deploying.')
            if service.instance_count > serving.RECOMMENDED_INSTANCES:
                messages.warning(request, f"{service.instance_count} instances in one deployment: at most "
                                          f"{serving.RECOMMENDED_INSTANCES} are recommended, to avoid throttling.")
            return redirect("deployment:edge_service_detail", service.pk)
    return render(request, "deployment/edgeservice_form.html",
                  {"form": form, "tabs": edge_tabs("deployment:edge_service_list"),
                   "versions_facts": form.versions_facts, "recommended_instances": serving.RECOMMENDED_INSTANCES},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def edge_service_detail(request, pk):
    service = selectors.edge_service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:view")
    return render(request, "deployment/edgeservice_detail.html", {
        "service": service, "instances": selectors.edge_service_instances(service),
        "events": timeline_for(service), "no_lifecycle": NO_LIFECYCLE,
        "can_delete": has_perm(request.user, service.workspace, "service:delete")})


@login_required
@require_http_methods(["GET", "POST"])
def edge_service_delete(request, pk):
    service = selectors.edge_service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:delete")
    return _confirm_delete(
        request, name=service.name, label="edge service", action=request.path,
        cancel_url=reverse("deployment:edge_service_detail", args=[service.pk]),
        consequences=["Its instances stop on the edge node."],
        do_delete=lambda: serving.edge_service_delete(user=request.user, service=service),
        done_url=reverse("deployment:edge_service_list"))


# ---- edge nodes -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def edge_node_list(request):
    """Nodes with the enrol dialog; a created node's token is shown once, on the answer to the POST."""
    workspace = _workspace(request)
    can_create = has_perm(request.user, workspace, "service:create")
    form = EdgeNodeForm(request.POST or None)
    created = token = None
    if request.method == "POST":
        require_perm(request.user, workspace, "service:create")
        if form.is_valid():
            try:
                created, token = services.edge_node_create(user=request.user, workspace=workspace,
                                                           **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                form = EdgeNodeForm()
    return _node_list_page(request, workspace, form=form, created=created, token=token,
                           open_dialog=request.method == "POST" and created is None,
                           status=400 if request.method == "POST" and created is None else 200)


def _node_list_page(request, workspace, *, form, created=None, token=None, open_dialog=False, status=200):
    """The node list (a shared table, its results refreshed by polling) with the enrol dialog; `token`
    is shown once."""
    can_admin = has_perm(request.user, workspace, "workspace:update")
    # A POST (enrol, new token) renders the page at its list URL, with the default table state.
    table = EdgeNodeTable(selectors.edge_nodes_in(workspace), request.GET if request.method == "GET" else {},
                          id="edge-nodes", can_select=can_admin)
    return render_table(request, "deployment/edgenode_list.html", {
        "tabs": edge_tabs("deployment:edge_node_list"), "form": form, "created": created, "token": token,
        "can_create": has_perm(request.user, workspace, "service:create"), "open_dialog": open_dialog,
        "can_admin": can_admin, "console_url": request.build_absolute_uri("/").rstrip("/")}, table, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def edge_node_detail(request, pk):
    node = selectors.edge_node_get_for_user(request.user, pk)
    require_perm(request.user, node.workspace, "service:view")
    form = LogSettingsForm(request.POST or None, initial={
        "log_retention_days": node.log_retention_days, "system_log_level": node.system_log_level,
        "app_log_level": node.app_log_level, "log_rotate_days": node.log_rotate_days})
    if request.method == "POST" and form.is_valid():
        try:
            services.edge_node_log_settings_update(user=request.user, node=node, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Log settings saved; the agent applies them on its next heartbeat.")
            return redirect("deployment:edge_node_detail", node.pk)
    return render(request, "deployment/edgenode_detail.html", {
        "node": node, "form": form, "tabs": edge_tabs("deployment:edge_node_list"),
        "charts": charts.node_figures(node), "ranges": charts.RANGES,
        "accelerators": charts.node_accelerators(node), "agent_version_current": services.agent_version_current(),
        "sample_minutes": max(1, settings.ATELIER_EDGE_SAMPLE_SECONDS // 60),
        "services": node.services.select_related("model_version__app"), "events": timeline_for(node),
        "can_admin": has_perm(request.user, node.workspace, "workspace:update"),
        "can_update": has_perm(request.user, node.workspace, "service:update"),
        "can_delete": has_perm(request.user, node.workspace, "service:delete")},
        status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def edge_node_monitoring(request, pk):
    """JSON {"charts"} for the node page's range select and refresh (?range=24h|12h|3h; other values: 24h)."""
    node = selectors.edge_node_get_for_user(request.user, pk)
    require_perm(request.user, node.workspace, "service:view")
    hours = charts.RANGES.get(request.GET.get("range", ""), charts.RANGES[charts.DEFAULT_RANGE])
    return JsonResponse({"charts": charts.node_figures(node, hours=hours)})


@login_required
@require_POST
def edge_node_action(request, pk, action):
    """freeze | unfreeze | upgrade (the agent) | token (show a fresh enrolment token once) | activate (this node)."""
    node = selectors.edge_node_get_for_user(request.user, pk)
    try:
        if action in ("freeze", "unfreeze"):
            services.edge_node_freeze(user=request.user, node=node, frozen=action == "freeze")
            messages.success(request, f'Node "{node.name}" {"frozen" if action == "freeze" else "unfrozen"}.')
        elif action == "upgrade":
            services.edge_node_upgrade_request(user=request.user, node=node)
            messages.success(request, f'Upgrade requested: the agent of "{node.name}" upgrades on its next heartbeat.')
        elif action == "token":
            token = services.edge_node_token_renew(user=request.user, node=node)
            return _node_list_page(request, node.workspace, form=EdgeNodeForm(), created=node, token=token)
        elif action == "activate":
            services.edge_nodes_activate(user=request.user, workspace=node.workspace, nodes=[node],
                                         months=request.POST.get("months"))
            messages.success(request, f'Node "{node.name}" activated.')
        else:
            raise Http404("Unknown action.")
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect("deployment:edge_node_detail", node.pk)


@login_required
@require_POST
def edge_nodes_activate(request):
    """Activate the nodes ticked on the list (≤ 50) for 1 or 3 months."""
    workspace = _workspace(request)
    ids = [i for i in request.POST.getlist("nodes") if i.isdigit()]
    nodes = list(selectors.edge_nodes_in(workspace).filter(pk__in=ids))
    try:
        services.edge_nodes_activate(user=request.user, workspace=workspace,
                                     nodes=nodes if len(ids) <= services.MAX_ACTIVATE else ids,
                                     months=request.POST.get("months"))
        messages.success(request, f"{len(nodes)} node{'s' if len(nodes) != 1 else ''} activated.")
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect("deployment:edge_node_list")


@login_required
@require_http_methods(["GET", "POST"])
def edge_node_delete(request, pk):
    node = selectors.edge_node_get_for_user(request.user, pk)
    require_perm(request.user, node.workspace, "service:delete")
    return _confirm_delete(
        request, name=node.name, label="edge node", action=request.path,
        cancel_url=reverse("deployment:edge_node_detail", args=[node.pk]),
        consequences=["Its agent can no longer heartbeat and stops taking work."],
        do_delete=lambda: services.edge_node_delete(user=request.user, node=node),
        done_url=reverse("deployment:edge_node_list"))


# ---- edge pools -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def edge_pool_list(request):
    workspace = _workspace(request)
    nodes = list(selectors.edge_nodes_in(workspace))
    form = EdgePoolForm(request.POST or None, nodes=nodes)
    if request.method == "POST":
        require_perm(request.user, workspace, "service:create")
        if form.is_valid():
            try:
                pool = services.edge_pool_create(user=request.user, workspace=workspace, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f'Edge pool "{pool.name}" created.')
                return redirect("deployment:edge_pool_list")
    table = EdgePoolTable(selectors.edge_pools_in(workspace).prefetch_related("nodes"),
                          request.GET if request.method == "GET" else {}, id="edge-pools")
    return render_table(request, "deployment/edgepool_list.html", {
        "tabs": edge_tabs("deployment:edge_pool_list"), "form": form,
        "free_nodes": [n for n in nodes if not n.edge_pool_id],
        "can_create": has_perm(request.user, workspace, "service:create"),
        "can_delete": has_perm(request.user, workspace, "service:delete")}, table,
        status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def edge_pool_delete(request, pk):
    pool = selectors.edge_pool_get_for_user(request.user, pk)
    require_perm(request.user, pool.workspace, "service:delete")
    return _confirm_delete(
        request, name=pool.name, label="edge pool", action=request.path,
        cancel_url=reverse("deployment:edge_pool_list"), consequences=["Its nodes are unbound and stay."],
        do_delete=lambda: services.edge_pool_delete(user=request.user, pool=pool),
        done_url=reverse("deployment:edge_pool_list"))


@login_required
@require_POST
def edge_pool_workers(request, pk):
    """Add the ticked free nodes as workers (`add`), or remove one worker (`remove=<node id>`)."""
    pool = selectors.edge_pool_get_for_user(request.user, pk)
    try:
        if request.POST.get("remove"):
            node = selectors.edge_node_get_for_user(request.user, request.POST["remove"])
            services.edge_pool_worker_remove(user=request.user, pool=pool, node=node)
            messages.success(request, f'"{node.name}" removed from pool "{pool.name}".')
        else:
            services.edge_pool_workers_add(user=request.user, pool=pool, node_ids=request.POST.getlist("nodes"))
            messages.success(request, f'Workers added to pool "{pool.name}".')
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect("deployment:edge_pool_list")


# ---- load balancers and access ports ----------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def edge_lb_list(request):
    workspace = _workspace(request)
    nodes, pools = list(selectors.edge_nodes_in(workspace)), list(selectors.edge_pools_in(workspace))
    edge_services = list(selectors.edge_services_in(workspace))
    which = request.POST.get("form")
    lb_form = LoadBalancerForm(request.POST if which == "lb" else None, nodes=nodes, pools=pools)
    port_form = AccessPortForm(request.POST if which == "port" else None, services=edge_services)
    if request.method == "POST":
        require_perm(request.user, workspace, "service:create")
        form = lb_form if which == "lb" else port_form
        if form.is_valid():
            d = form.cleaned_data
            try:
                if which == "lb":
                    by_name = {s.name: s.pk for s in edge_services}
                    rules = []
                    for line in d["rules"].splitlines():
                        parts = line.split()
                        if parts:
                            rules.append({"match": parts[0], "path": parts[1] if len(parts) > 1 else "",
                                          "service": by_name.get(parts[2]) if len(parts) > 2 else None})
                    serving.load_balancer_create(user=request.user, workspace=workspace, name=d["name"],
                                                 description=d["description"], listen_port=d["listen_port"],
                                                 sticky=d["sticky"], rules=rules, **_target(request, d["target"]))
                else:
                    serving.access_port_create(
                        user=request.user, workspace=workspace, name=d["name"],
                        service=selectors.edge_service_get_for_user(request.user, d["service"]),
                        ports=[{"protocol": "TCP", "port": d["port"], "container_port": d["container_port"]}])
            except ValidationError as exc:
                _apply_errors(form, exc, {"ports": "port"})
            else:
                messages.success(request, f'"{d["name"]}" created.')
                return redirect("deployment:edge_lb_list")
    # Access ports stay a plain table under it: one shared table per page owns the query parameters.
    table = LoadBalancerTable(selectors.load_balancers_in(workspace), request.GET if request.method == "GET" else {},
                              id="load-balancers")
    return render_table(request, "deployment/loadbalancer_list.html", {
        "tabs": edge_tabs("deployment:edge_lb_list"),
        "ports": selectors.access_ports_in(workspace), "lb_form": lb_form, "port_form": port_form,
        "services_by_id": {s.pk: s for s in edge_services},
        "can_create": has_perm(request.user, workspace, "service:create"),
        "can_delete": has_perm(request.user, workspace, "service:delete")}, table,
        status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def edge_lb_delete(request, pk):
    lb = selectors.load_balancer_get_for_user(request.user, pk)
    serving.load_balancer_delete(user=request.user, lb=lb)
    messages.success(request, f'Load balancer "{lb.name}" deleted.')
    return redirect("deployment:edge_lb_list")


@login_required
@require_POST
def edge_port_delete(request, pk):
    port = selectors.access_port_get_for_user(request.user, pk)
    serving.access_port_delete(user=request.user, port=port)
    messages.success(request, f'Access port "{port.name}" deleted.')
    return redirect("deployment:edge_lb_list")

