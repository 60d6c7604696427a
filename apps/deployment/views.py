"""Models pages: the AI application list, create, detail, versions (create, detail tabs, delete).

Thin views: objects come from scoped accessors (another workspace's is a 404), writes go through
`services`, refusals come back as field errors or messages. Services pages: `service_views.py`.
"""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.forms import ConfirmNameForm
from apps.core.permissions import has_perm, require_perm
from apps.core.selectors import timeline_for
from apps.core.tables import render_table

from . import selectors, services
from .choices import DeployType, ModelSource, ModelStatus
from .forms import ModelCreateForm
from .tables import AiAppTable

VERSION_TABS = [("info", "Basic information"), ("accuracy", "Model accuracy"), ("parameters", "Parameter configuration"),
                ("dependencies", "Runtime dependencies"), ("events", "Events"), ("constraints", "Usage constraints"),
                ("services", "Associated services")]


def _apply_errors(form, exc: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form: known fields inline (`aliases` maps a service's
    field name to the form's), the rest on top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            field = (aliases or {}).get(field, field)
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
@require_GET
def model_list(request):
    """The AI applications of the current workspace (seed-06 Table 8-9)."""
    workspace = request.workspace
    if workspace is not None:
        require_perm(request.user, workspace, "model:view")
    table = AiAppTable(selectors.ai_apps_in(workspace), request.GET, id="apps")
    context = {"table": table, "can_create": has_perm(request.user, workspace, "model:create"),
               "can_delete": has_perm(request.user, workspace, "model:delete")}
    return render_table(request, "deployment/aiapp_list.html", context, table)


def _initial_from(version) -> dict:
    """The form values of an existing version ("Create new version" pre-fills every field but the version)."""
    initial = {"description": version.description, "source_type": version.source_type,
               "source_uri": version.source_uri, "training_job": version.training_job_id, "image": version.image,
               "image_copy": version.image_copy, "command": " ".join(version.command), "protocol": version.protocol,
               "port": version.port, "deploy_types": version.deploy_types,
               "docs": "\n".join(f"{d['name']} | {d['url']}" for d in version.docs),
               "start_params": "\n".join(p["name"] + ("" if p["required"] else f"={p['default']}")
                                         + (f" # {p['description']}" if p["description"] else "")
                                         for p in version.start_params)}
    api = version.api
    initial.update(api_url=api.get("url", "/"), api_method=api.get("method", "POST"),
                   api_content_type=(api.get("request") or {}).get("Content-type", "application/json"))
    health = version.health or {}
    if health:
        initial.update(health_method=health.get("check_method", ""), health_url=health.get("url", "/health"),
                       health_command=health.get("command", ""), health_period=health.get("period_seconds"),
                       health_delay=health.get("initial_delay_seconds"), health_failures=health.get("failure_threshold"))
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def model_create(request):
    """Create an AI application and its first version."""
    workspace = request.workspace
    require_perm(request.user, workspace, "model:create")
    form = ModelCreateForm(request.POST or None, user=request.user, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.ai_app_create(user=request.user, workspace=workspace, name=form.cleaned_data["name"],
                                             request_mode=form.cleaned_data["request_mode"], **form.service_kwargs())
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f'AI application "{version.app.name}" created; version {version.version} is '
                                      "being imported.")
            return redirect("deployment:version_detail", version.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "deployment/aiapp_form.html", {"form": form, "app": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def version_create(request, pk):
    """"Create new version": the form pre-filled from the latest version, except the version number."""
    app = selectors.ai_app_get_for_user(request.user, pk)
    require_perm(request.user, app.workspace, "model:create")
    latest = selectors.ai_app_versions(app).first()
    initial = _initial_from(latest) if latest else {}
    form = ModelCreateForm(request.POST or None, initial=initial, user=request.user, workspace=app.workspace, app=app)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.ai_app_version_create(user=request.user, app=app, **form.service_kwargs())
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Version {version.version} of \"{app.name}\" is being imported.")
            return redirect("deployment:version_detail", version.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "deployment/aiapp_form.html", {"form": form, "app": app}, status=status)


@login_required
@require_GET
def model_detail(request, pk):
    """One AI application: its versions (deploy, delete) and the services using them."""
    app = selectors.ai_app_get_for_user(request.user, pk)
    require_perm(request.user, app.workspace, "model:view")
    versions = list(selectors.ai_app_versions(app))
    context = {"app": app, "versions": versions, "services": selectors.app_services(app),
               "can_create": has_perm(request.user, app.workspace, "model:create"),
               "can_update": has_perm(request.user, app.workspace, "model:update"),
               "can_delete": has_perm(request.user, app.workspace, "model:delete"),
               "can_deploy": has_perm(request.user, app.workspace, "service:create")}
    return render(request, "deployment/aiapp_detail.html", context)


@login_required
@require_POST
def model_update(request, pk):
    app = selectors.ai_app_get_for_user(request.user, pk)
    services.ai_app_update(user=request.user, app=app, description=request.POST.get("description", ""))
    messages.success(request, "Description updated.")
    return redirect("deployment:model_detail", app.pk)


@login_required
@require_GET
def version_detail(request, pk):
    """One version with the tabs of seed-06 §2.7 (`?tab=`)."""
    version = selectors.ai_app_version_get_for_user(request.user, pk)
    require_perm(request.user, version.workspace, "model:view")
    tab = request.GET.get("tab", "info")
    if tab not in dict(VERSION_TABS):
        tab = "info"
    base = reverse("deployment:version_detail", args=[version.pk])
    context = {
        "version": version, "app": version.app, "tab": tab,
        "tabs": [{"label": label, "url": f"{base}?tab={key}", "active": key == tab} for key, label in VERSION_TABS],
        "can_update": has_perm(request.user, version.workspace, "model:update"),
        "can_delete": has_perm(request.user, version.workspace, "model:delete"),
        "can_deploy": has_perm(request.user, version.workspace, "service:create") and version.is_normal,
        "deployable_online": DeployType.ONLINE in version.deploy_types,
        "deployable_batch": DeployType.BATCH in version.deploy_types,
        "is_building": version.status in (ModelStatus.IMPORTING, ModelStatus.BUILDING),
        "build_failed": version.status == ModelStatus.BUILD_FAILED,
        "is_package": version.source_type in (ModelSource.STORAGE, ModelSource.TRAINING),
    }
    if request.htmx and request.htmx.target == "version-status":
        return render(request, "deployment/aiappversion_detail.html#version-status", context)
    if tab == "events":
        context["timeline"] = timeline_for(version)
    elif tab == "services":
        context["services"] = selectors.version_services(version)
    elif tab == "dependencies":
        context["dependencies_json"] = json.dumps(version.config.get("dependencies", []), indent=2)
    elif tab == "parameters":
        context["api_json"] = json.dumps(version.api, indent=2, ensure_ascii=False)
        context["content_type"] = (version.api.get("request") or {}).get("Content-type", "application/json")
    return render(request, "deployment/aiappversion_detail.html", context)


@login_required
@require_POST
def version_update(request, pk):
    version = selectors.ai_app_version_get_for_user(request.user, pk)
    services.ai_app_version_update(user=request.user, version=version, description=request.POST.get("description", ""))
    messages.success(request, "Description updated.")
    return redirect("deployment:version_detail", version.pk)


@login_required
@require_POST
def version_dependencies(request, pk):
    """Edit the pip dependencies after a failed build; saving rebuilds."""
    version = selectors.ai_app_version_get_for_user(request.user, pk)
    url = reverse("deployment:version_detail", args=[version.pk]) + "?tab=dependencies"
    try:
        dependencies = json.loads(request.POST.get("dependencies") or "[]")
        services.ai_app_version_dependencies_update(user=request.user, version=version, dependencies=dependencies)
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.error(request, f"The dependencies are not valid JSON: {exc}.")
        return redirect(url)
    messages.success(request, "Runtime dependencies saved; the image is rebuilt.")
    return redirect(url)


def _confirm_delete(request, *, name, label, action, cancel_url, consequences, do_delete, done_url):
    form = ConfirmNameForm(request.POST or None, expected=name)
    if request.method == "POST" and form.is_valid():
        try:
            do_delete()
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect(cancel_url)
        messages.success(request, f'{label.capitalize()} "{name}" deleted.')
        return redirect(done_url)
    context = {"name": name, "label": label, "action": action, "cancel_url": cancel_url, "consequences": consequences,
               "form": form}
    return render(request, "deployment/confirm_delete.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def model_delete(request, pk):
    app = selectors.ai_app_get_for_user(request.user, pk)
    require_perm(request.user, app.workspace, "model:delete")
    return _confirm_delete(request, name=app.name, label="AI application",
                           action=reverse("deployment:model_delete", args=[app.pk]),
                           cancel_url=reverse("deployment:model_detail", args=[app.pk]),
                           consequences="Every version and its imported files are deleted.",
                           do_delete=lambda: services.ai_app_delete(user=request.user, app=app),
                           done_url=reverse("deployment:model_list"))


@login_required
@require_http_methods(["GET", "POST"])
def version_delete(request, pk):
    version = selectors.ai_app_version_get_for_user(request.user, pk)
    require_perm(request.user, version.workspace, "model:delete")
    return _confirm_delete(request, name=version.version, label="version",
                           action=reverse("deployment:version_delete", args=[version.pk]),
                           cancel_url=reverse("deployment:version_detail", args=[version.pk]),
                           consequences=f"Version {version.version} of {version.app.name} and its imported files are "
                                        "deleted.",
                           do_delete=lambda: services.ai_app_version_delete(user=request.user, version=version),
                           done_url=reverse("deployment:model_detail", args=[version.app_id]))
