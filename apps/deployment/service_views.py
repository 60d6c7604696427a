"""Services pages: online and batch lists, deploy forms, the service detail tabs (call guide,
prediction test page, configuration records, monitoring, events, instances, log search, API keys,
alarm rules), the lifecycle buttons and modify/upgrade."""
from __future__ import annotations

import json
import random
import time
import uuid

import httpx
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.forms import ConfirmNameForm
from apps.core.permissions import has_perm, require_perm
from apps.core.selectors import timeline_for
from apps.core.tables import render_table

from . import batch, keys, logsearch, monitoring, selectors, serving
from .charts import monitoring_figures
from .edge.views import edge_tabs
from .choices import RESTARTABLE, STARTABLE, STOPPABLE, ServiceKind, ServiceStatus
from .forms import AlarmRuleForm, ApiKeyForm, BatchServiceForm, ServiceForm, flavor_choices
from .models import AiAppVersion, ServiceApiKey
from .tables import ServiceTable
from .views import _apply_errors, _confirm_delete

ONLINE_TABS = [("guide", "Call guide"), ("predict", "Prediction"), ("config", "Config update records"),
               ("monitoring", "Monitoring"), ("events", "Events"), ("instances", "Instances and logs"),
               ("logs", "Logs"), ("keys", "API keys"), ("alarms", "Alarm rules")]
BATCH_TABS = [("overview", "Overview"), ("config", "Config update records"), ("events", "Events"),
              ("instances", "Instances and logs"), ("logs", "Logs")]
# File types the test page accepts for upload (seed-06 §3.5).
IMAGE_SUFFIXES = (".png", ".psd", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".svg", ".tiff", ".tif")


@login_required
@require_GET
def service_list(request):
    """Online or batch services of the current workspace (`?kind=`)."""
    workspace = request.workspace
    if workspace is not None:
        require_perm(request.user, workspace, "service:view")
    kind = request.GET.get("kind", ServiceKind.ONLINE)
    if kind not in ServiceKind.values:
        kind = ServiceKind.ONLINE
    table = ServiceTable(selectors.services_in(workspace, kind), request.GET, id="services")
    base = reverse("deployment:service_list")
    context = {"table": table, "kind": kind, "can_create": has_perm(request.user, workspace, "service:create"),
               "can_delete": has_perm(request.user, workspace, "service:delete"),
               "tabs": [{"label": label, "url": f"{base}?kind={value}", "active": value == kind}
                        for value, label in (("online", "Online services"), ("batch", "Batch services"))]}
    context["tabs"] += edge_tabs("")[2:]  # the edge pages share the section's tabs
    return render_table(request, "deployment/service_list.html", context, table)


def _version_options(workspace, kind) -> list[dict]:
    return [{"id": v.pk, "label": v.label, "app": v.app.name, "version": v.version}
            for v in selectors.deployable_versions(workspace, kind)]


def _service_form_context(request, form, *, service=None, rows=None, rules=None, serving_rows=None) -> dict:
    workspace = service.workspace if service else request.workspace
    return {"form": form, "service": service,
            "options": {"versions": _version_options(workspace, ServiceKind.ONLINE), "pools": flavor_choices(),
                        "rows": rows or [], "rules": rules or [], "serving_rows": serving_rows}}


@login_required
@require_http_methods(["GET", "POST"])
def service_create(request):
    """Deploy an online service; `?version=<pk>` pre-selects a version."""
    workspace = request.workspace
    require_perm(request.user, workspace, "service:create")
    form = ServiceForm(request.POST or None)
    rows = []
    if request.method == "GET" and request.GET.get("version", "").isdigit():
        rows = [{"model_version": int(request.GET["version"]), "weight": 100, "instance_count": 1}]
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            rows = data["versions_json"]
            try:
                service = serving.service_create(
                    user=request.user, workspace=workspace, name=data["name"], description=data["description"],
                    versions=rows, auto_stop_hours=form.auto_stop_hours(),
                    deploy_timeout_minutes=data["deploy_timeout_minutes"], traffic_limit=data["traffic_limit"],
                    websocket=data["websocket"], rules=data["rules_json"], max_unavailable=data["max_unavailable"],
                    mounts=form.mounts())
            except ValidationError as exc:
                _apply_errors(form, exc, {"mounts": "mount_path"})
            else:
                messages.success(request, f'Service "{service.name}" is deploying.')
                return redirect("deployment:service_detail", service.pk)
        rows = _posted_rows(request)
    context = _service_form_context(request, form, rows=rows, rules=_posted_rules(request))
    return render(request, "deployment/service_form.html", context, status=400 if request.method == "POST" else 200)


def _posted_rows(request) -> list:
    try:
        value = json.loads(request.POST.get("versions_json") or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _posted_rules(request) -> list:
    try:
        value = json.loads(request.POST.get("rules_json") or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


@login_required
@require_http_methods(["GET", "POST"])
def service_edit(request, pk):
    """Modify / upgrade: versions, weights, counts, rules, limits. The WebSocket flag is fixed."""
    service = selectors.service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:update")
    if service.kind != ServiceKind.ONLINE:
        raise Http404("Not found.")
    current_rows = [{"model_version": sv.model_version_id, "weight": sv.weight, "pool": sv.pool_id,
                     "flavor": sv.flavor_id, "instance_count": sv.instance_count,
                     "env": "\n".join(f"{k}={v}" for k, v in sv.env.items())}
                    for sv in selectors.service_versions(service)]
    auto = str(service.auto_stop_hours or "")
    initial = {"name": service.name, "description": service.description,
               "auto_stop": auto if auto in ("", "1", "2", "4", "6") else "custom",
               "auto_stop_custom": service.auto_stop_hours, "deploy_timeout_minutes": service.deploy_timeout_minutes,
               "traffic_limit": service.traffic_limit, "websocket": service.websocket,
               "max_unavailable": service.max_unavailable,
               "mount_source": service.mounts[0]["source"] if service.mounts else "",
               "mount_path": service.mounts[0]["mount_path"] if service.mounts else ""}
    form = ServiceForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            outcome = serving.service_update(
                user=request.user, service=service, versions=data["versions_json"], description=data["description"],
                auto_stop_hours=form.auto_stop_hours(), deploy_timeout_minutes=data["deploy_timeout_minutes"],
                traffic_limit=data["traffic_limit"], rules=data["rules_json"], max_unavailable=data["max_unavailable"])
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, {"rolling": "Updating: new instances start and replace the current ones once "
                                                  "ready.",
                                       "scaled": "Instance count changed.",
                                       "updated": "Service updated."}[outcome])
            return redirect("deployment:service_detail", service.pk)
    rows = _posted_rows(request) if request.method == "POST" else current_rows
    rules = _posted_rules(request) if request.method == "POST" else service.rules
    serving_rows = current_rows if service.status in (ServiceStatus.RUNNING, ServiceStatus.ALARM) else None
    context = _service_form_context(request, form, service=service, rows=rows, rules=rules, serving_rows=serving_rows)
    return render(request, "deployment/service_form.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def batch_create(request):
    """Deploy a batch service over a folder or a .manifest file."""
    workspace = request.workspace
    require_perm(request.user, workspace, "service:create")
    versions = selectors.deployable_versions(workspace, ServiceKind.BATCH)
    initial = {"model_version": request.GET.get("version", "")}
    form = BatchServiceForm(request.POST or None, initial=initial, versions=versions)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            service = batch.batch_service_create(
                user=request.user, workspace=workspace, name=data["name"], description=data["description"],
                model_version=int(data["model_version"]), input_uri=data["input_uri"], output_uri=data["output_uri"],
                flavor=data["flavor"], pool=data["pool"], instance_count=data["instance_count"], env=data["env"],
                deploy_timeout_minutes=data["deploy_timeout_minutes"], mapping=data.get("mapping") or None)
        except ValidationError as exc:
            _apply_errors(form, exc, aliases={"versions": "model_version"})
        else:
            messages.success(request, f'Batch service "{service.name}" is deploying.')
            return redirect("deployment:service_detail", service.pk)
    mappings = {str(v.pk): batch.mapping_default(v.api) for v in versions
                if (v.api.get("request") or {}).get("Content-type") == "application/json"}
    return render(request, "deployment/batch_form.html", {"form": form, "mappings": mappings},
                  status=400 if request.method == "POST" else 200)


def _call_url(request, service) -> str:
    return request.build_absolute_uri(f"/infer/{service.pk}/").rstrip("/")


@login_required
@require_GET
def service_detail(request, pk):
    """One service with its tabs (`?tab=`)."""
    service = selectors.service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:view")
    tabs = ONLINE_TABS if service.is_online else BATCH_TABS
    tab = request.GET.get("tab", tabs[0][0])
    if tab not in dict(tabs):
        tab = tabs[0][0]
    base = reverse("deployment:service_detail", args=[service.pk])
    versions = list(selectors.service_versions(service))
    ws = service.workspace
    context = {
        "service": service, "tab": tab, "versions": versions,
        "tabs": [{"label": label, "url": f"{base}?tab={key}", "active": key == tab} for key, label in tabs],
        "can_start": has_perm(request.user, ws, "service:start") and service.status in STARTABLE,
        "can_stop": has_perm(request.user, ws, "service:stop") and service.status in STOPPABLE,
        "can_restart": has_perm(request.user, ws, "service:restart") and service.is_online
                       and service.status in RESTARTABLE,
        "can_update": has_perm(request.user, ws, "service:update"),
        "can_modify": has_perm(request.user, ws, "service:update") and service.is_online
                      and service.status not in (ServiceStatus.DEPLOYING, ServiceStatus.WAITING, ServiceStatus.STOPPING)
                      and not service.pending_config,
        "can_delete": has_perm(request.user, ws, "service:delete"),
        "can_invoke": has_perm(request.user, ws, "service:invoke"),
        "call_url": _call_url(request, service),
        "instances": serving.instance_stats(service),
    }
    if request.htmx and request.htmx.target == "service-status":
        return render(request, "deployment/service_detail.html#service-status", context)
    _cloudshell_tab(request, service, context)
    if tab == "guide":
        version = versions[0].model_version if versions else None
        context["api"] = version.api if version else {}
        context["api_content_type"] = (context["api"].get("request") or {}).get("Content-type", "application/json")
        context["api_url"] = context["call_url"] + ((version.api.get("url", "/") if version else "/").rstrip("/"))
        context["request_params"] = schema_rows(((context["api"].get("request") or {}).get("data")) or {})
        context["response_params"] = schema_rows(((context["api"].get("response") or {}).get("data")) or {})
        context["async_labels"] = [sv.model_version.label for sv in versions if sv.model_version.app.request_mode == "async"]
        context["async_timeout"] = settings.ATELIER_GATEWAY_ASYNC_TIMEOUT_SECONDS
        context["async_days"] = settings.ATELIER_GATEWAY_ASYNC_RESULT_DAYS
        context["param_tables"] = [("Input parameters", context["request_params"], "input-params"),
                                   ("Output parameters", context["response_params"], "output-params")]
    elif tab == "predict":
        version = versions[0].model_version if versions else None
        context["predict"] = {"url": reverse("deployment:service_predict", args=[service.pk]),
                              "file": bool(version and version.input_is_file),
                              "field": _file_field(version) if version else "images",
                              "max_bytes": settings.ATELIER_GATEWAY_CONSOLE_MAX_BODY_BYTES,
                              "example": _example_body(version) if version else "{}"}
    elif tab == "config":
        context["records"] = service.config_records.select_related("created_by")[:50]
    elif tab == "monitoring":
        context["charts"] = monitoring_figures(service, calls=not service.websocket)
        context["data_url"] = reverse("deployment:service_monitoring", args=[service.pk])
        context["totals"] = monitoring.call_totals(service)
        context["allocation"] = monitoring.resource_allocation(service)
        context["alarms"] = service.alarms.select_related("rule")[:20]
    elif tab == "events":
        context["timeline"] = timeline_for(service)
    elif tab == "instances":
        context["instance_rows"] = rows = list(selectors.service_instances(service))
        usage = monitoring.instance_usage_latest(i.run_id for i in rows)
        for row in rows:
            row.usage = usage.get(row.run_id, {})
    elif tab == "keys":
        context["keys"] = selectors.service_api_keys(service)
        context["key_form"] = ApiKeyForm()
        context["new_key"] = request.session.pop(f"deployment-new-key-{service.pk}", None)
    elif tab == "alarms":
        context["rules"] = selectors.service_alarm_rules(service)
        context["rule_form"] = AlarmRuleForm(service=service)
    elif tab == "logs":
        context.update(_log_context(request, service))
        if request.htmx and request.htmx.target == "log-results":
            return render(request, "deployment/service_detail.html#log-results", context)
    elif tab == "overview":
        context["progress"] = batch.batch_progress(service)
        context["mapping_json"] = json.dumps(service.mapping, indent=2) if service.mapping else ""
    return render(request, "deployment/service_detail.html", context)


def _log_context(request, service) -> dict:
    """The Logs tab: the search form's values, the instance runs to choose from, and the matches
    (or the reason the search could not run)."""
    params = request.GET
    window = params.get("window", "5m")
    runs = list(logsearch.service_log_runs(service)[:50])
    chosen = params.get("run", "")
    run_id = int(chosen) if chosen.isdigit() and any(r.pk == int(chosen) for r in runs) else None
    context = {"log_window": window, "log_query": params.get("q", ""), "log_start": params.get("start", ""),
               "log_end": params.get("end", ""), "log_run": run_id,
               "log_runs": [(r.pk, logsearch.run_label(r), r.get_status_display()) for r in runs],
               "log_windows": [("5m", "Last 5 minutes"), ("30m", "Last 30 minutes"), ("1h", "Last hour"),
                               ("custom", "Custom")]}
    try:
        since, until = logsearch.window_bounds(window, context["log_start"], context["log_end"])
        context["log"] = logsearch.service_log_search(service, query=context["log_query"], since=since,
                                                      until=until, run_id=run_id)
        context["log_since"], context["log_until"] = since, until
    except logsearch.QueryError as exc:
        context["log_error"] = f"Search: {exc}"
    except ValidationError as exc:
        context["log_error"] = "; ".join(f"{'Time' if k == 'window' else k.capitalize()}: {' '.join(v)}"
                                         for k, v in exc.message_dict.items())
    return context


def _cloudshell_tab(request, service, context) -> None:
    """The CloudShell tab: a terminal into a chosen instance (seed-06 §12 item 22), listed while an
    online service is Running and the role allows run:exec (the WebSocket checks both again)."""
    if not service.is_online or service.status not in (ServiceStatus.RUNNING, ServiceStatus.ALARM) \
            or not has_perm(request.user, service.workspace, "run:exec"):
        return
    from apps.runtime.shell import shell_panel

    active = request.GET.get("tab") == "cloudshell"
    for item in context["tabs"]:
        item["active"] = item["active"] and not active
    base = reverse("deployment:service_detail", args=[service.pk])
    context["tabs"].append({"label": "CloudShell", "url": f"{base}?tab=cloudshell", "active": active})
    if active:
        context["tab"] = "cloudshell"
        instances = [i for i in selectors.service_instances(service) if i.run.is_active]
        labels = {i.run_id: f"{i.model_version.label if i.model_version else 'version ?'} · instance #{i.pk}"
                  for i in instances}
        context["shell"] = shell_panel([i.run for i in instances], node_label="Version · instance", noun="instance",
                                       label=lambda run: labels[run.pk],
                                       empty="A shell opens while an instance of the service is Running.")


def schema_rows(schema: dict, prefix: str = "") -> list[dict]:
    """The call guide's parameter table: one row per field of a config.json body schema
    (`data.req_data[].x`), with its type and whether it is required."""
    rows = []
    required = set(schema.get("required") or []) if isinstance(schema, dict) else set()
    for name, sub in ((schema.get("properties") or {}).items() if isinstance(schema, dict) else []):
        path = f"{prefix}.{name}" if prefix else name
        kind = sub.get("type", "") if isinstance(sub, dict) else ""
        rows.append({"name": path, "type": kind, "required": name in required})
        if kind == "object":
            rows += schema_rows(sub, path)
        elif kind == "array":
            item = sub.get("items")
            item = item[0] if isinstance(item, list) and item else item
            if isinstance(item, dict):
                rows[-1]["type"] = f"array of {item.get('type', 'any')}"
                if item.get("type") == "object":
                    rows += schema_rows(item, f"{path}[]")
    return rows


def _file_field(version: AiAppVersion) -> str:
    props = ((version.api.get("request") or {}).get("data") or {}).get("properties") or {}
    return next((name for name, schema in props.items() if isinstance(schema, dict) and schema.get("type") == "file"),
                "images")


def _example_body(version: AiAppVersion) -> str:
    """A JSON request following the request schema, for the test page's editor."""

    def sample(schema):
        if not isinstance(schema, dict):
            return None
        kind = schema.get("type")
        if kind == "object":
            return {name: sample(sub) for name, sub in (schema.get("properties") or {}).items()}
        if kind == "array":
            item = schema.get("items")
            return [sample(item[0] if isinstance(item, list) and item else item)]
        return {"number": 0, "integer": 0, "boolean": False, "string": ""}.get(kind)

    body = sample(((version.api.get("request") or {}).get("data")) or {})
    return json.dumps(body if body is not None else {}, indent=2)


@login_required
@require_POST
def service_action(request, pk, action):
    """Start, stop or restart from the detail page or the list."""
    service = selectors.service_get_for_user(request.user, pk)
    actions = {"start": serving.service_start, "stop": serving.service_stop, "restart": serving.service_restart}
    if action not in actions:
        raise Http404("Not found.")
    try:
        actions[action](user=request.user, service=service)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, {"start": "Starting the service.", "stop": "Stopping the service.",
                                   "restart": "Restarting: new instances replace the current ones once ready."}[action])
    return redirect(request.POST.get("next") or reverse("deployment:service_detail", args=[service.pk]))


@login_required
@require_http_methods(["GET", "POST"])
def service_delete(request, pk):
    service = selectors.service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:delete")
    return _confirm_delete(request, name=service.name, label="service",
                           action=reverse("deployment:service_delete", args=[service.pk]),
                           cancel_url=reverse("deployment:service_detail", args=[service.pk]),
                           consequences="Its instances stop, its API address stops answering and its keys, statistics "
                                        "and alarm rules are deleted.",
                           do_delete=lambda: serving.service_delete(user=request.user, service=service),
                           done_url=reverse("deployment:service_list") + f"?kind={service.kind}")


@login_required
@require_POST
def service_description(request, pk):
    """Edit the description from the detail header (allowed in any status)."""
    service = selectors.service_get_for_user(request.user, pk)
    serving.service_description_update(user=request.user, service=service,
                                       description=request.POST.get("description", ""))
    messages.success(request, "Description updated.")
    return redirect("deployment:service_detail", service.pk)


@login_required
@require_http_methods(["GET", "POST"])
def service_bulk_delete(request):
    """Delete the services ticked on the list (`?ids=`), after typing the confirmation phrase."""
    workspace = request.workspace
    require_perm(request.user, workspace, "service:delete")
    wanted = []
    for value in request.GET.getlist("ids"):
        try:
            wanted.append(uuid.UUID(value))
        except ValueError:
            continue
    chosen = list(selectors.services_in(workspace, None).filter(pk__in=wanted).order_by("name"))
    back = reverse("deployment:service_list")
    if not chosen:
        messages.error(request, "Select at least one service to delete.")
        return redirect(back)
    phrase = f"delete {len(chosen)} service{'s' if len(chosen) != 1 else ''}"
    form = ConfirmNameForm(request.POST or None, expected=phrase)
    if request.method == "POST" and form.is_valid():
        try:
            serving.services_delete(user=request.user, services=chosen)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect(back)
        messages.success(request, f"{len(chosen)} service{'s' if len(chosen) != 1 else ''} deleted.")
        return redirect(back)
    context = {"services": chosen, "phrase": phrase, "form": form, "action": request.get_full_path(),
               "cancel_url": back}
    return render(request, "deployment/service_bulk_delete.html", context,
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def service_predict(request, pk):
    """The Prediction tab's call: JSON or one file, at most 8 MB, through a ready instance.

    Answers {"status", "elapsed_ms", "version", "body"} as JSON; refusals use the gateway's
    error format with the HTTP status the API would have given.
    """
    service = selectors.service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:invoke")
    limit = settings.ATELIER_GATEWAY_CONSOLE_MAX_BODY_BYTES
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        return _refuse(413, "APIG.0201", f"Request entity too large: the test page takes at most "
                                         f"{limit / 1024 / 1024:g} MB.")
    upload = request.FILES.get("file")
    if upload is not None:
        if not upload.name.lower().endswith(IMAGE_SUFFIXES):
            return _refuse(400, "APIG.0203", f"{upload.name}: the test page accepts png, psd, jpg, jpeg, bmp, gif, "
                                             "webp, svg and tiff files.")
        if upload.size >= limit:
            return _refuse(413, "APIG.0201", f"{upload.name} is {upload.size / 1024 / 1024:.1f} MB; an image must be "
                                             f"under {limit / 1024 / 1024:g} MB.")
        field = request.POST.get("field") or "images"
        kwargs = {"files": {field: (upload.name, upload.read(), upload.content_type or "application/octet-stream")}}
    else:
        text = request.POST.get("body", "")
        try:
            json.loads(text)
        except ValueError as exc:
            return _refuse(400, "APIG.0203", f"The request body is not valid JSON: {exc}.")
        kwargs = {"content": text.encode(), "headers": {"content-type": "application/json"}}
    from .gateway import gateway_current, route_load

    route = route_load(str(service.pk))
    choices = [v for v in (route.versions.values() if route else []) if v.endpoints and v.weight > 0]
    if not choices:
        return _refuse(503, "ModelArts.4503", f'No instance of "{service.name}" is ready (status: '
                                              f"{service.get_status_display().lower()}).")
    version = random.choices(choices, weights=[v.weight for v in choices])[0]
    endpoint = random.choice(version.endpoints)
    timeout = settings.ATELIER_GATEWAY_TIMEOUT_SECONDS
    started = time.perf_counter()
    try:
        response = httpx.request(version.api_method, f"{version.scheme}://{endpoint}{version.api_url}",
                                 timeout=httpx.Timeout(timeout, connect=5.0), verify=False, trust_env=False, **kwargs)
    except httpx.TimeoutException:
        return _refuse(504, "ModelArts.4503", f"Backend service respond timeout: no answer within {timeout:g} s.")
    except httpx.HTTPError as exc:
        return _refuse(502, "ModelArts.4302", f"Gateway forwarding error: {exc}.")
    elapsed = (time.perf_counter() - started) * 1000
    gateway = gateway_current()
    if gateway is not None:
        gateway.stats.record(str(service.pk), version.model_version_id, version.label, response.status_code < 400,
                             elapsed)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return JsonResponse({"status": response.status_code, "elapsed_ms": round(elapsed, 1), "version": version.label,
                         "body": body})


def _refuse(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "body": {"error_code": code, "error_msg": message}}, status=status)


@login_required
@require_GET
def service_monitoring(request, pk):
    """The monitoring figures as JSON (`?range=1h|3h|12h`), for the tab's refresh."""
    service = selectors.service_get_for_user(request.user, pk)
    require_perm(request.user, service.workspace, "service:view")
    minutes = monitoring.RANGES.get(request.GET.get("range", "1h"), 60)
    return JsonResponse({"charts": monitoring_figures(service, minutes=minutes, calls=not service.websocket),
                         "totals": monitoring.call_totals(service, minutes=minutes)})


@login_required
@require_POST
def key_create(request, pk):
    service = selectors.service_get_for_user(request.user, pk)
    form = ApiKeyForm(request.POST)
    url = reverse("deployment:service_detail", args=[service.pk]) + "?tab=keys"
    if form.is_valid():
        create = keys.service_app_create if form.cleaned_data.get("kind") == "app" else keys.service_key_create
        try:
            key, secret = create(user=request.user, service=service, name=form.cleaned_data["name"],
                                 rate_limit=form.cleaned_data["rate_limit"])
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            # Shown once, on the next page only; never stored in clear.
            request.session[f"deployment-new-key-{service.pk}"] = {
                "name": key.name, "secret": secret, "app_key": key.prefix if key.kind == "app" else ""}
    else:
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
    return redirect(url)


@login_required
@require_POST
def key_revoke(request, pk):
    key = ServiceApiKey.objects.select_related("service__workspace").filter(pk=pk).first()
    if key is None:
        raise Http404("Not found.")
    service = selectors.service_get_for_user(request.user, key.service_id)
    try:
        keys.service_key_revoke(user=request.user, key=key)
        messages.success(request, f'Key "{key.name}" revoked.')
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect(reverse("deployment:service_detail", args=[service.pk]) + "?tab=keys")


@login_required
@require_POST
def alarm_create(request, pk):
    service = selectors.service_get_for_user(request.user, pk)
    form = AlarmRuleForm(request.POST, service=service)
    url = reverse("deployment:service_detail", args=[service.pk]) + "?tab=alarms"
    if form.is_valid():
        data = form.cleaned_data
        version = service.versions.filter(model_version_id=data["model_version"] or None).first() \
            if data["model_version"] else None
        try:
            monitoring.alarm_rule_create(user=request.user, service=service, name=data["name"], metric=data["metric"],
                                         comparison=data["comparison"], threshold=data["threshold"],
                                         period_minutes=data["period_minutes"],
                                         model_version=version.model_version if version else None,
                                         notify=data["notify"], notify_target=data["notify_target"])
            messages.success(request, f'Alarm rule "{data["name"]}" added.')
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
    else:
        for field, errors in form.errors.items():
            for message in errors:
                messages.error(request, f"{form.fields[field].label if field in form.fields else ''}: {message}")
    return redirect(url)


@login_required
@require_POST
def alarm_delete(request, pk):
    rule = selectors.alarm_rule_get_for_user(request.user, pk)
    monitoring.alarm_rule_delete(user=request.user, rule=rule)
    messages.success(request, f'Alarm rule "{rule.name}" deleted.')
    return redirect(reverse("deployment:service_detail", args=[rule.service_id]) + "?tab=alarms")
