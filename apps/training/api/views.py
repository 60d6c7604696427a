"""Training REST API: jobs (list, create, detail, stop, delete, priority, metrics), experiments
(list, detail, compare) and algorithms (list, create, detail, update, delete)."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current
from apps.core.api import Pagination, error_response
from apps.core.permissions import require_perm
from apps.core.tables import TableParamsError
from apps.runtime.models import Flavor, Pool

from .. import selectors, services
from ..tables import AlgorithmTable, TrainingJobTable
from .serializers import (
    AlgorithmSerializer,
    ExperimentDeletedSerializer,
    ExperimentDeleteSerializer,
    ExperimentDetailSerializer,
    ExperimentSerializer,
    ExperimentUpdatedSerializer,
    ExperimentUpdateSerializer,
    TrainingJobCreateSerializer,
    TrainingJobSerializer,
    TrainingJobUpdateSerializer,
    TrainingMetricsSerializer,
)


def _workspace(request):
    # Token-authenticated clients are known only after DRF authenticates, past the middleware that sets
    # request.workspace: resolve it here then (X-Atelier-Workspace header or the user's default).
    workspace = getattr(request._request, "workspace", None) or workspace_current(request)
    if workspace is None:
        raise Http404("No workspace.")
    return workspace


def _paginate(request, view, queryset, serializer):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class JobListView(APIView):
    pagination_class = Pagination  # the schema documents the page wrapper
    serializer_class = TrainingJobSerializer

    @extend_schema(operation_id="v1_training_jobs_list", responses=TrainingJobSerializer(many=True))
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "trainjob:view")
        table = TrainingJobTable(selectors.training_jobs_in(workspace), request.query_params)
        try:
            rows = table.filtered()
        except TableParamsError as exc:
            return error_response("invalid", str(exc), fields=exc.fields)
        return _paginate(request, self, rows, TrainingJobSerializer)

    @extend_schema(request=TrainingJobCreateSerializer, responses={201: TrainingJobSerializer})
    def post(self, request):
        workspace = _workspace(request)
        data = TrainingJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        pool = Pool.objects.filter(name=values.pop("pool")).first()
        flavor = Flavor.objects.filter(name=values.pop("flavor")).first()
        if pool is None or flavor is None:
            field = "pool" if pool is None else "flavor"
            return error_response("invalid", f"{field}: no such {field}.", fields={field: [f"No such {field}."]})
        algorithm_id = values.pop("algorithm", None)
        algorithm = selectors.algorithm_get_for_user(request.user, algorithm_id) if algorithm_id else None
        job = services.training_job_create(user=request.user, workspace=workspace, pool=pool, flavor=flavor,
                                           algorithm=algorithm, **values)
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    serializer_class = TrainingJobSerializer

    def get(self, request, pk):
        return Response(TrainingJobSerializer(selectors.training_job_get_for_user(request.user, pk)).data)

    @extend_schema(request=TrainingJobUpdateSerializer, responses=TrainingJobSerializer)
    def patch(self, request, pk):
        job = selectors.training_job_get_for_user(request.user, pk)
        changes = dict(request.data)
        if "priority" in changes:
            job = services.training_job_set_priority(user=request.user, job=job, priority=changes.pop("priority"))
        if changes:
            job = services.training_job_update(user=request.user, job=job, **changes)
        return Response(TrainingJobSerializer(job).data)

    def delete(self, request, pk):
        services.training_job_delete(user=request.user, job=selectors.training_job_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobStopView(APIView):
    serializer_class = TrainingJobSerializer

    @extend_schema(request=None, responses=TrainingJobSerializer)
    def post(self, request, pk):
        job = services.training_job_stop(user=request.user, job=selectors.training_job_get_for_user(request.user, pk))
        return Response(TrainingJobSerializer(job).data)


class JobMetricsView(APIView):
    @extend_schema(responses=TrainingMetricsSerializer)
    def get(self, request, pk):
        job = selectors.training_job_get_for_user(request.user, pk)
        series = selectors.job_metric_series(job)
        return Response({"final": selectors.job_final_metrics(job),
                         "series": {name: [{"step": s, "value": v} for s, v in points]
                                    for name, points in series.items()}})


class ExperimentListView(APIView):
    pagination_class = Pagination  # the schema documents the page wrapper
    serializer_class = ExperimentSerializer

    @extend_schema(operation_id="v1_training_experiments_list", responses=ExperimentSerializer(many=True))
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "trainjob:view")
        return _paginate(request, self, selectors.experiments_in(workspace).order_by("-modified_at", "-id"),
                         ExperimentSerializer)


class ExperimentDetailView(APIView):
    serializer_class = ExperimentSerializer

    @extend_schema(responses=ExperimentDetailSerializer)
    def get(self, request, pk):
        experiment = selectors.experiment_get_for_user(request.user, pk)
        jobs = selectors.training_jobs_in(experiment.workspace).filter(experiment=experiment)
        rows = []
        for job in jobs:
            rows.append({"job": TrainingJobSerializer(job).data, "final_metrics": selectors.job_final_metrics(job)})
        return Response({**ExperimentSerializer(selectors.experiments_in(experiment.workspace).get(pk=pk)).data,
                         "jobs": rows})

    @extend_schema(request=ExperimentUpdateSerializer, responses=ExperimentUpdatedSerializer)
    def patch(self, request, pk):
        experiment = selectors.experiment_get_for_user(request.user, pk)
        experiment = services.experiment_update(user=request.user, experiment=experiment,
                                                name=request.data.get("name"),
                                                description=request.data.get("description"))
        return Response({"id": experiment.pk, "name": experiment.name, "description": experiment.description})

    @extend_schema(request=ExperimentDeleteSerializer, responses=ExperimentDeletedSerializer)
    def delete(self, request, pk):
        experiment = selectors.experiment_get_for_user(request.user, pk)
        count = services.experiment_delete(user=request.user, experiment=experiment,
                                           confirm=str(request.data.get("confirm", "")))
        return Response({"deleted_jobs": count})


class AlgorithmListView(APIView):
    pagination_class = Pagination  # the schema documents the page wrapper
    serializer_class = AlgorithmSerializer

    @extend_schema(operation_id="v1_training_algorithms_list", responses=AlgorithmSerializer(many=True))
    def get(self, request):
        workspace = _workspace(request)
        require_perm(request.user, workspace, "algorithm:view")
        table = AlgorithmTable(selectors.algorithms_in(workspace), request.query_params)
        try:
            rows = table.filtered()
        except TableParamsError as exc:
            return error_response("invalid", str(exc), fields=exc.fields)
        return _paginate(request, self, rows, AlgorithmSerializer)

    def post(self, request):
        values = dict(request.data)
        algorithm = services.algorithm_create(user=request.user, workspace=_workspace(request),
                                              name=str(values.pop("name", "")), **values)
        return Response(AlgorithmSerializer(algorithm).data, status=status.HTTP_201_CREATED)


class AlgorithmDetailView(APIView):
    serializer_class = AlgorithmSerializer

    def get(self, request, pk):
        return Response(AlgorithmSerializer(selectors.algorithm_get_for_user(request.user, pk)).data)

    def patch(self, request, pk):
        algorithm = services.algorithm_update(user=request.user,
                                              algorithm=selectors.algorithm_get_for_user(request.user, pk),
                                              **dict(request.data))
        return Response(AlgorithmSerializer(algorithm).data)

    def delete(self, request, pk):
        services.algorithm_delete(user=request.user, algorithm=selectors.algorithm_get_for_user(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
