"""Read queries of the deployment section, always scoped to the user's workspaces."""
from __future__ import annotations

from django.db.models import Count, Max, OuterRef, Prefetch, Subquery

from apps.core.scoping import get_for_user

from .choices import ModelStatus, ServiceKind
from .models import AiApp, AiAppVersion, AlarmRule, InferenceService, ServiceApiKey, ServiceInstance, ServiceVersion


def ai_apps_in(workspace):
    """AI applications of one workspace with their version count, latest version and its status."""
    if workspace is None:
        return AiApp.objects.none()
    latest = AiAppVersion.objects.filter(app=OuterRef("pk")).order_by("-created_at", "-id")
    return (AiApp.objects.in_workspace(workspace).select_related("created_by")
            .annotate(version_count=Count("versions", distinct=True), last_version_at=Max("versions__created_at"),
                      latest_version=Subquery(latest.values("version")[:1]),
                      latest_status=Subquery(latest.values("status")[:1]),
                      latest_deploy_types=Subquery(latest.values("deploy_types")[:1])))


def ai_app_get_for_user(user, pk) -> AiApp:
    return get_for_user(AiApp.objects.select_related("workspace", "created_by"), user, pk=pk)


def ai_app_versions(app: AiApp):
    return app.versions.select_related("app", "created_by").order_by("-created_at", "-id")


def ai_app_version_get_for_user(user, pk) -> AiAppVersion:
    return get_for_user(AiAppVersion.objects.select_related("app", "workspace", "created_by"), user, pk=pk)


def deployable_versions(workspace, kind: str = ServiceKind.ONLINE):
    """Versions in status Normal whose deploy types include `kind`, for the deploy forms."""
    if workspace is None:
        return AiAppVersion.objects.none()
    versions = (AiAppVersion.objects.in_workspace(workspace).filter(status=ModelStatus.NORMAL)
                .select_related("app").order_by("app__name", "-created_at"))
    return [v for v in versions if kind in v.deploy_types]


def version_services(version: AiAppVersion):
    """Services that deploy this version (the "Associated services" tab)."""
    return (InferenceService.objects.filter(versions__model_version=version).distinct()
            .order_by("name"))


def app_services(app: AiApp):
    return InferenceService.objects.filter(versions__model_version__app=app).distinct().order_by("name")


def services_in(workspace, kind: str | None = None):
    if workspace is None:
        return InferenceService.objects.none()
    qs = InferenceService.objects.in_workspace(workspace).select_related("created_by")
    if kind:
        qs = qs.filter(kind=kind)
    return qs.prefetch_related(Prefetch("versions", queryset=ServiceVersion.objects.select_related(
        "model_version__app", "flavor", "pool")))


def service_get_for_user(user, pk) -> InferenceService:
    return get_for_user(InferenceService.objects.select_related("workspace", "created_by"), user, pk=pk)


def service_versions(service: InferenceService):
    return service.versions.select_related("model_version__app", "flavor", "pool").order_by("position", "id")


def service_instances(service: InferenceService):
    return (ServiceInstance.objects.filter(service=service)
            .select_related("run", "run__worker", "model_version__app").order_by("created_at", "id"))


def service_api_keys(service: InferenceService):
    return ServiceApiKey.objects.filter(service=service).select_related("created_by")


def service_alarm_rules(service: InferenceService):
    return AlarmRule.objects.filter(service=service).select_related("model_version__app")


def alarm_rule_get_for_user(user, pk) -> AlarmRule:
    return get_for_user(AlarmRule.objects.select_related("service", "workspace"), user, pk=pk)
