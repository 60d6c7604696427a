"""Runtime REST API: pools, flavors, workers, runs (submit, stop, restart), logs, metrics, events.

Runs are workspace objects: another workspace's run answers 404. Pools, flavors and
workers are platform objects that members with resource:view may read and staff may change.
Every refusal uses the error format of `apps.core.api`.
"""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current, workspace_get_for_user
from apps.core.api import Pagination
from apps.core.services import events_for
from apps.core.tables import TableParamsError

from .. import selectors, services
from ..downloads import log_download_response
from ..logstream import log_read
from ..models import Flavor, Pool
from ..tables import RunTable
from .serializers import (
    EventSerializer,
    FlavorSerializer,
    FlavorWriteSerializer,
    LogSliceSerializer,
    MetricSeriesSerializer,
    PoolSerializer,
    PoolWriteSerializer,
    RunSerializer,
    RunSubmitSerializer,
    WorkerSerializer,
)

# Most log lines one JSON request returns; download the file for more.
MAX_LOG_LINES = 10000


def _paginated(request, view, rows, serializer_class, **kwargs):
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, **kwargs).data)


def _pool(name: str, field: str = "pool") -> Pool:
    pool = Pool.objects.filter(name=name).first()
    if pool is None:
        raise exceptions.ValidationError({field: [f'There is no pool named "{name}".']})
    return pool


def _flavor(name: str) -> Flavor:
    flavor = Flavor.objects.filter(name=name).first()
    if flavor is None:
        raise exceptions.ValidationError({"flavor": [f'There is no flavor named "{name}".']})
    return flavor


def _int_param(request, name: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or int(raw) < minimum or (maximum is not None and int(raw) > maximum):
        upper = f" to {maximum}" if maximum is not None else " or more"
        raise exceptions.ValidationError({name: [f'"{raw}" is not a whole number from {minimum}{upper}.']})
    return int(raw)


# ---- pools ------------------------------------------------------------------------------------


class PoolListView(APIView):
    """GET: every pool. POST (staff): create one; its queue is `pool.<name>`."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=PoolSerializer(many=True))
    def get(self, request):
        selectors.require_resource_view(request.user)
        return _paginated(request, self, selectors.pools_list(), PoolSerializer)

    @extend_schema(request=PoolWriteSerializer, responses={201: PoolSerializer})
    def post(self, request):
        data = PoolWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "name" not in values:
            raise exceptions.ValidationError({"name": ["This field is required."]})
        pool = services.pool_create(actor=request.user, **values)
        return Response(PoolSerializer(pool).data, status=status.HTTP_201_CREATED)


class PoolDetailView(APIView):
    """GET: one pool. PATCH (staff): description, job types, status. DELETE (staff): an unused pool."""

    def _get(self, request, name) -> Pool:
        selectors.require_resource_view(request.user)
        pool = Pool.objects.filter(name=name).first()
        if pool is None:
            raise Http404
        return pool

    @extend_schema(responses=PoolSerializer)
    def get(self, request, name):
        return Response(PoolSerializer(self._get(request, name)).data)

    @extend_schema(request=PoolWriteSerializer, responses=PoolSerializer)
    def patch(self, request, name):
        pool = self._get(request, name)
        data = PoolWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "name" in values and values.pop("name") != pool.name:
            raise exceptions.ValidationError({"name": ["A pool cannot be renamed: its name is its queue."]})
        pool = services.pool_update(actor=request.user, pool=pool, **values)
        return Response(PoolSerializer(pool).data)

    @extend_schema(responses={204: None})
    def delete(self, request, name):
        services.pool_delete(actor=request.user, pool=self._get(request, name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---- flavors ----------------------------------------------------------------------------------


class FlavorListView(APIView):
    """GET: every flavor, with whether an online worker can serve it (and why not). POST (staff): create."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=FlavorSerializer(many=True))
    def get(self, request):
        selectors.require_resource_view(request.user)
        return _paginated(request, self, selectors.flavors_list(), FlavorSerializer)

    @extend_schema(request=FlavorWriteSerializer, responses={201: FlavorSerializer})
    def post(self, request):
        data = FlavorWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        missing = [f for f in ("name", "cpus", "memory_mb") if f not in values]
        if missing:
            raise exceptions.ValidationError({f: ["This field is required."] for f in missing})
        pools = [_pool(name, "pools") for name in values.pop("pools", [])]
        flavor = services.flavor_create(actor=request.user, pools=pools, **values)
        return Response(FlavorSerializer(flavor).data, status=status.HTTP_201_CREATED)


class FlavorDetailView(APIView):
    """GET: one flavor. PATCH (staff): resources, description, pools. DELETE (staff): an unused flavor."""

    def _get(self, request, name) -> Flavor:
        selectors.require_resource_view(request.user)
        flavor = Flavor.objects.filter(name=name).first()
        if flavor is None:
            raise Http404
        return flavor

    @extend_schema(responses=FlavorSerializer)
    def get(self, request, name):
        return Response(FlavorSerializer(self._get(request, name)).data)

    @extend_schema(request=FlavorWriteSerializer, responses=FlavorSerializer)
    def patch(self, request, name):
        flavor = self._get(request, name)
        data = FlavorWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "name" in values and values.pop("name") != flavor.name:
            raise exceptions.ValidationError({"name": ["A flavor cannot be renamed; create a new one."]})
        if "pools" in values:
            values["pools"] = [_pool(name, "pools") for name in values["pools"]]
        flavor = services.flavor_update(actor=request.user, flavor=flavor, **values)
        return Response(FlavorSerializer(flavor).data)

    @extend_schema(responses={204: None})
    def delete(self, request, name):
        services.flavor_delete(actor=request.user, flavor=self._get(request, name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---- workers ----------------------------------------------------------------------------------


class WorkerListView(APIView):
    """GET: worker nodes with capacity, pools, online state and load."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=WorkerSerializer(many=True))
    def get(self, request):
        selectors.require_resource_view(request.user)
        return _paginated(request, self, selectors.workers_list(), WorkerSerializer)


class WorkerDetailView(APIView):
    """GET: one worker node, with the active runs on it that the caller may see."""

    @extend_schema(responses=WorkerSerializer)
    def get(self, request, pk):
        selectors.require_resource_view(request.user)
        node = selectors.worker_get(pk)
        data = WorkerSerializer(node).data
        data["runs"] = RunSerializer(selectors.worker_runs(node, request.user), many=True).data
        return Response(data)


# ---- runs -------------------------------------------------------------------------------------


def _run_detail(run) -> dict:
    data = RunSerializer(run).data
    data["nodes"] = [{"id": node.pk, "node_rank": node.node_rank, "status": node.status,
                      "worker": node.worker.hostname if node.worker else ""} for node in selectors.run_group(run)]
    return data


class RunListView(APIView):
    """GET: runs in the caller's workspaces; filters `status`, `job_type`, `pool`, `worker`, `owner_type`,
    `since`, `until`, `workspace`, `owner_id`, search `q`, `sort`. POST: submit a run (run:create)."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(
        parameters=[OpenApiParameter(name, str) for name in
                    ("status", "job_type", "pool", "worker", "owner_type", "owner_id", "since", "until", "q", "sort")]
        + [OpenApiParameter("workspace", int)],
        responses=RunSerializer(many=True),
    )
    def get(self, request):
        runs = selectors.runs_visible(request.user)
        workspace = _int_param(request, "workspace", minimum=1)
        if workspace is not None:
            runs = runs.filter(workspace_id=workspace)
        if owner_id := request.query_params.get("owner_id"):
            runs = runs.filter(owner_id=owner_id)
        try:
            rows = RunTable(runs, request.query_params).filtered()
        except TableParamsError as exc:
            raise exceptions.ValidationError(exc.fields) from None
        return _paginated(request, self, rows, RunSerializer)

    @extend_schema(request=RunSubmitSerializer, responses={201: RunSerializer})
    def post(self, request):
        data = RunSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "workspace" in values:
            try:
                workspace = workspace_get_for_user(request.user, values.pop("workspace"))
            except Http404:
                raise exceptions.ValidationError(
                    {"workspace": ["You are not a member of a workspace with this id."]}) from None
        else:
            workspace = workspace_current(request)
            if workspace is None:
                raise exceptions.ValidationError({"workspace": ["You belong to no workspace; join one first."]})
        values["flavor"] = _flavor(values["flavor"])
        values["pool"] = _pool(values["pool"])
        runs = services.run_submit(user=request.user, workspace=workspace, **values)
        return Response(_run_detail(runs[0]), status=status.HTTP_201_CREATED)


class RunDetailView(APIView):
    """GET: one run, with the nodes of its group."""

    @extend_schema(responses=RunSerializer)
    def get(self, request, pk):
        return Response(_run_detail(selectors.run_get_for_user(request.user, pk)))


class RunStopView(APIView):
    """POST: stop the run and every node of its group (run:stop)."""

    @extend_schema(request=None, responses=RunSerializer)
    def post(self, request, pk):
        run = services.run_stop(user=request.user, run=selectors.run_get_for_user(request.user, pk))
        return Response(_run_detail(run))


class RunRestartView(APIView):
    """POST: run a finished run again as a new attempt (run:restart)."""

    @extend_schema(request=None, responses=RunSerializer)
    def post(self, request, pk):
        run = services.run_restart(user=request.user, run=selectors.run_get_for_user(request.user, pk))
        return Response(_run_detail(run))


class RunLogView(APIView):
    """GET: the whole log as a text file download."""

    @extend_schema(responses={(200, "text/plain"): str})
    def get(self, request, pk):
        run = selectors.run_get_for_user(request.user, pk)
        return log_download_response(request, run)


class RunLogLinesView(APIView):
    """GET: log lines as JSON: after line `after`, or the last `limit` lines (default and most: 10000)."""

    @extend_schema(parameters=[OpenApiParameter("after", int), OpenApiParameter("limit", int)],
                   responses=LogSliceSerializer)
    def get(self, request, pk):
        run = selectors.run_get_for_user(request.user, pk)
        after = _int_param(request, "after")
        limit = _int_param(request, "limit", minimum=1, maximum=MAX_LOG_LINES) or MAX_LOG_LINES
        piece = log_read(run, after=after, limit=limit)
        return Response({"first": piece.first, "total": piece.total, "lines": piece.lines})


class RunMetricsView(APIView):
    """GET: metric series of the run, `{"series": {name: [{"step", "value"}, …]}}`; `?name=` picks one."""

    @extend_schema(parameters=[OpenApiParameter("name", str)], responses=MetricSeriesSerializer)
    def get(self, request, pk):
        run = selectors.run_get_for_user(request.user, pk)
        series = selectors.run_metric_series(run, name=request.query_params.get("name") or None)
        return Response({"series": {name: [{"step": step, "value": value} for step, value in points]
                                    for name, points in series.items()}})


class RunEventsView(APIView):
    """GET: the run's events, oldest first."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=EventSerializer(many=True))
    def get(self, request, pk):
        run = selectors.run_get_for_user(request.user, pk)
        return _paginated(request, self, events_for(run).order_by("created_at", "id"), EventSerializer)
