"""Deployment REST API: AI applications and versions, online and batch services, lifecycle
actions, API keys, alarm rules, call metrics and the direct-access endpoint list.

Objects outside the caller's workspaces answer 404; refusals use the error format of
`apps.core.api`. Inference calls themselves go through the gateway at /infer/<service>/.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current, workspace_get_for_user
from apps.core.api import Pagination
from apps.core.permissions import require_perm
from apps.core.services import events_for

from .. import batch, keys, monitoring, selectors, serving, services
from ..models import AiAppVersion, ServiceApiKey
from .serializers import (
    AiAppCreateSerializer,
    AiAppSerializer,
    AiAppVersionSerializer,
    AlarmRuleCreateSerializer,
    AlarmRuleSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    BatchServiceCreateSerializer,
    DeploymentEventSerializer,
    ServiceCreateSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    VersionInputSerializer,
)


def _workspace(request, raw):
    if raw is not None:
        try:
            return workspace_get_for_user(request.user, raw)
        except Http404:
            raise exceptions.ValidationError({"workspace": [f"You are not a member of a workspace with id {raw}."]}) \
                from None
    workspace = workspace_current(request)
    if workspace is None:
        raise exceptions.ValidationError({"workspace": ["You belong to no workspace; join one first."]})
    return workspace


def _page(request, view, queryset, serializer, **kwargs):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, **kwargs).data)


class AiAppListView(APIView):
    """GET: AI applications of the current workspace (`?q=` searches names). POST: create one with its
    first version (storage path, training job, container image or custom command)."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=AiAppSerializer(many=True), parameters=[OpenApiParameter("q", str)])
    def get(self, request):
        workspace = workspace_current(request)
        if workspace is not None:
            require_perm(request.user, workspace, "model:view")
        apps = selectors.ai_apps_in(workspace).order_by("-created_at", "-id")
        if search := (request.query_params.get("q") or "").strip():
            apps = apps.filter(name__icontains=search)
        return _page(request, self, apps, AiAppSerializer)

    @extend_schema(request=AiAppCreateSerializer, responses={201: AiAppVersionSerializer})
    def post(self, request):
        data = AiAppCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kwargs = data.service_kwargs()
        workspace = _workspace(request, kwargs.pop("workspace", None))
        version = services.ai_app_create(user=request.user, workspace=workspace, name=kwargs.pop("name"),
                                         request_mode=kwargs.pop("request_mode"), **kwargs)
        return Response(AiAppVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class AiAppDetailView(APIView):
    """GET: one AI application. PATCH: its description. DELETE: it and every version (refused while deployed)."""

    @extend_schema(responses=AiAppSerializer)
    def get(self, request, pk):
        app = selectors.ai_app_get_for_user(request.user, pk)
        require_perm(request.user, app.workspace, "model:view")
        return Response(AiAppSerializer(selectors.ai_apps_in(app.workspace).get(pk=app.pk)).data)

    @extend_schema(request=None, responses=AiAppSerializer)
    def patch(self, request, pk):
        app = selectors.ai_app_get_for_user(request.user, pk)
        services.ai_app_update(user=request.user, app=app, description=str(request.data.get("description", "")))
        return Response(AiAppSerializer(selectors.ai_apps_in(app.workspace).get(pk=app.pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        app = selectors.ai_app_get_for_user(request.user, pk)
        services.ai_app_delete(user=request.user, app=app)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AiAppVersionListView(APIView):
    """GET: the versions of one AI application. POST: create a new version."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=AiAppVersionSerializer(many=True))
    def get(self, request, pk):
        app = selectors.ai_app_get_for_user(request.user, pk)
        require_perm(request.user, app.workspace, "model:view")
        return _page(request, self, selectors.ai_app_versions(app), AiAppVersionSerializer)

    @extend_schema(request=VersionInputSerializer, responses={201: AiAppVersionSerializer})
    def post(self, request, pk):
        app = selectors.ai_app_get_for_user(request.user, pk)
        data = VersionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.ai_app_version_create(user=request.user, app=app, **data.service_kwargs())
        return Response(AiAppVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class AiAppVersionDetailView(APIView):
    """GET: one version (status, config, source). DELETE: it (refused while a service deploys it)."""

    @extend_schema(responses=AiAppVersionSerializer)
    def get(self, request, pk):
        version = selectors.ai_app_version_get_for_user(request.user, pk)
        require_perm(request.user, version.workspace, "model:view")
        return Response(AiAppVersionSerializer(version).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        version = selectors.ai_app_version_get_for_user(request.user, pk)
        services.ai_app_version_delete(user=request.user, version=version)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventListView(APIView):
    """GET: the events of a version or a service, oldest first."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=DeploymentEventSerializer(many=True))
    def get(self, request, pk=None, service_pk=None):
        if service_pk is not None:
            obj = selectors.service_get_for_user(request.user, service_pk)
            require_perm(request.user, obj.workspace, "service:view")
        else:
            obj = selectors.ai_app_version_get_for_user(request.user, pk)
            require_perm(request.user, obj.workspace, "model:view")
        rows = [{"level": e.level, "message": e.message, "created_at": e.created_at.isoformat()}
                for e in events_for(obj).order_by("created_at", "id")]
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(page)


class ServiceListView(APIView):
    """GET: services of the current workspace (`?kind=online|batch`, `?status=`). POST: deploy an online service."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=ServiceSerializer(many=True),
                   parameters=[OpenApiParameter("kind", str), OpenApiParameter("status", str)])
    def get(self, request):
        workspace = workspace_current(request)
        if workspace is not None:
            require_perm(request.user, workspace, "service:view")
        kind = request.query_params.get("kind") or None
        if kind not in (None, "online", "batch"):
            raise exceptions.ValidationError({"kind": [f'"{kind}" is not online or batch.']})
        services_qs = selectors.services_in(workspace, kind).order_by("-created_at")
        if status_filter := request.query_params.get("status"):
            services_qs = services_qs.filter(status=status_filter)
        return _page(request, self, services_qs, ServiceSerializer, context={"request": request})

    @extend_schema(request=ServiceCreateSerializer, responses={201: ServiceSerializer})
    def post(self, request):
        data = ServiceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        workspace = _workspace(request, values.pop("workspace", None))
        service = serving.service_create(user=request.user, workspace=workspace,
                                         versions=[dict(v) for v in values.pop("versions")], **values)
        return Response(ServiceSerializer(service, context={"request": request}).data, status=status.HTTP_201_CREATED)


class BatchServiceListView(APIView):
    """POST: deploy a batch service over a folder or a .manifest file."""

    @extend_schema(request=BatchServiceCreateSerializer, responses={201: ServiceSerializer})
    def post(self, request):
        data = BatchServiceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        workspace = _workspace(request, values.pop("workspace", None))
        service = batch.batch_service_create(user=request.user, workspace=workspace, **values)
        return Response(ServiceSerializer(service, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ServiceDetailView(APIView):
    """GET: one service. PATCH: modify/upgrade it (see serving.service_update). DELETE: delete it."""

    @extend_schema(responses=ServiceSerializer)
    def get(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        require_perm(request.user, service.workspace, "service:view")
        return Response(ServiceSerializer(service, context={"request": request}).data)

    @extend_schema(request=ServiceUpdateSerializer, responses=ServiceSerializer)
    def patch(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        data = ServiceUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "versions" in values:
            values["versions"] = [dict(v) for v in values["versions"]]
        for field in ("auto_stop_hours", "traffic_limit"):
            values.setdefault(field, "unchanged")
        outcome = serving.service_update(user=request.user, service=service, **values)
        service.refresh_from_db()
        return Response({"outcome": outcome, **ServiceSerializer(service, context={"request": request}).data})

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        serving.service_delete(user=request.user, service=service)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceActionView(APIView):
    """POST: start, stop or restart a service (each allowed only in the statuses of seed-06 §3.7)."""

    @extend_schema(operation_id="v1_deployment_services_action", request=None, responses=ServiceSerializer,
                   parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH,
                                                enum=["start", "stop", "restart"])])
    def post(self, request, pk, action):
        service = selectors.service_get_for_user(request.user, pk)
        handler = {"start": serving.service_start, "stop": serving.service_stop,
                   "restart": serving.service_restart}.get(action)
        if handler is None:
            raise exceptions.NotFound("Not found.")
        handler(user=request.user, service=service)
        service.refresh_from_db()
        return Response(ServiceSerializer(service, context={"request": request}).data)


class ApiKeyListView(APIView):
    """GET: the service's API keys (never their secrets). POST: create one; the secret is in this answer only."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        require_perm(request.user, service.workspace, "service:view")
        return _page(request, self, selectors.service_api_keys(service), ApiKeySerializer)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeySerializer})
    def post(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if values.pop("kind") == "app":
            key, secret = keys.service_app_create(user=request.user, service=service, **values)
            return Response({**ApiKeySerializer(key).data, "app_key": key.prefix, "app_secret": secret},
                            status=status.HTTP_201_CREATED)
        key, secret = keys.service_key_create(user=request.user, service=service, **values)
        return Response({**ApiKeySerializer(key).data, "key": secret}, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    """DELETE: revoke the key at once."""

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        key = ServiceApiKey.objects.select_related("service__workspace").filter(pk=pk).first()
        if key is None:
            raise exceptions.NotFound("Not found.")
        selectors.service_get_for_user(request.user, key.service_id)
        keys.service_key_revoke(user=request.user, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlarmRuleListView(APIView):
    """GET: the service's alarm rules. POST: add one (on the service, or `model_version` for one version)."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=AlarmRuleSerializer(many=True))
    def get(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        require_perm(request.user, service.workspace, "service:view")
        return _page(request, self, selectors.service_alarm_rules(service), AlarmRuleSerializer)

    @extend_schema(request=AlarmRuleCreateSerializer, responses={201: AlarmRuleSerializer})
    def post(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        data = AlarmRuleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version_id = values.pop("model_version", None)
        version = AiAppVersion.objects.filter(pk=version_id, workspace=service.workspace).first() if version_id else None
        if version_id and version is None:
            raise exceptions.ValidationError({"model_version": ["Choose a version the service deploys."]})
        rule = monitoring.alarm_rule_create(user=request.user, service=service, model_version=version, **values)
        return Response(AlarmRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class AlarmRuleDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        rule = selectors.alarm_rule_get_for_user(request.user, pk)
        monitoring.alarm_rule_delete(user=request.user, rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetricsView(APIView):
    """GET: calls per minute per version and for the service (`?range=1h|3h|12h`), with totals.

    Dimensions as seed-06 §10.1: the service, and each version (`model_id`) inside it.
    """

    @extend_schema(responses=None, parameters=[OpenApiParameter("range", str)])
    def get(self, request, pk):
        service = selectors.service_get_for_user(request.user, pk)
        require_perm(request.user, service.workspace, "service:view")
        span = request.query_params.get("range", "1h")
        if span not in monitoring.RANGES:
            raise exceptions.ValidationError({"range": [f'"{span}" is not one of {", ".join(monitoring.RANGES)}.']})
        minutes = monitoring.RANGES[span]
        series = monitoring.call_series(service, minutes=minutes)
        return Response({"service_id": str(service.pk), "range": span,
                         "minutes": [m.isoformat() for m in series["minutes"]],
                         "service": series["service"], "versions": series["versions"],
                         "totals": monitoring.call_totals(service, minutes=minutes)})


class MetricQueryView(APIView):
    """GET: one metric of one service version per minute, ModelArts style (seed-06 §10.1).

    `?metric_name=cpu_usage&dim.0=service_id,<service id>&dim.1=model_id,<version id>&from=<ms>&to=<ms>`;
    both dimensions are required; `from`/`to` are epoch milliseconds (default: the last hour).
    """

    @extend_schema(responses=None, parameters=[OpenApiParameter(name, str) for name in
                                               ("metric_name", "dim.0", "dim.1", "from", "to")])
    def get(self, request):
        params = request.query_params
        metric = params.get("metric_name", "")
        if metric not in monitoring.QUERY_METRICS:
            raise exceptions.ValidationError({"metric_name": [
                f'"{metric}" is not one of {", ".join(monitoring.QUERY_METRICS)}.']})
        dims = {}
        for key in ("dim.0", "dim.1"):
            name, _, value = params.get(key, "").partition(",")
            if name in ("service_id", "model_id") and value:
                dims[name] = value
        if set(dims) != {"service_id", "model_id"}:
            raise exceptions.ValidationError({"dim": [
                "Give both dimensions: dim.0=service_id,<service id> and dim.1=model_id,<AI application version id>."]})
        try:
            service = selectors.service_get_for_user(request.user, dims["service_id"])
        except ValidationError:
            raise Http404("Not found.") from None
        require_perm(request.user, service.workspace, "service:view")
        version = service.versions.filter(model_version_id=dims["model_id"]).first() if dims["model_id"].isdigit() \
            else None
        if version is None:
            raise Http404("The model_id is not a version of this service.")
        now = timezone.now()
        try:
            until = datetime.fromtimestamp(int(params.get("to", now.timestamp() * 1000)) / 1000, tz=dt_timezone.utc)
            since = datetime.fromtimestamp(int(params.get("from", (now - timedelta(hours=1)).timestamp() * 1000)) / 1000,
                                           tz=dt_timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            raise exceptions.ValidationError({"from": ["from and to are times in epoch milliseconds."]}) from None
        if since >= until or until - since > timedelta(days=7):
            raise exceptions.ValidationError({"from": ["from must come before to, at most 7 days apart."]})
        points = monitoring.metric_query(service, version.model_version, metric, since, until)
        return Response({"metric_name": metric, "unit": monitoring.QUERY_METRICS[metric], "period": 60,
                         "dimensions": [{"name": "service_id", "value": str(service.pk)},
                                        {"name": "model_id", "value": str(version.model_version_id)}],
                         "datapoints": points})


class EndpointsView(APIView):
    """GET `?type=host_endpoints`: the instances' host:port for direct access (seed-06 §3.9).

    Direct calls bypass the gateway: no authentication, traffic split, load balancing or statistics.
    Also at the ModelArts address `/v1/<project id>/services/<id>/predict/endpoints`, where the
    project id is the workspace id (another workspace's id answers 404).
    """

    @extend_schema(responses=None, parameters=[OpenApiParameter("type", str)])
    def get(self, request, pk, project_id: int | None = None):
        service = selectors.service_get_for_user(request.user, pk)
        if project_id is not None and project_id != service.workspace_id:
            raise exceptions.NotFound("Not found.")
        require_perm(request.user, service.workspace, "service:update")
        if request.query_params.get("type") != "host_endpoints":
            raise exceptions.ValidationError({"type": ["Only type=host_endpoints is supported."]})
        endpoints = []
        for instance in selectors.service_instances(service):
            run = instance.run
            if run.endpoint and run.ready_at and not instance.draining_since:
                host, _, port = run.endpoint.rpartition(":")
                version = instance.model_version
                endpoints.append({"scheme": "https" if version and version.protocol == "https"
                                  and not version.serves_package else "http", "ip": host, "port": int(port),
                                  "model_version": version.label if version else ""})
        return Response({"service_id": str(service.pk), "endpoints": endpoints})
