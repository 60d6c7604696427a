"""Data section REST API under /api/v1/datasets/.

Every dataset comes through `dataset_get_for_user` (another workspace's dataset is a 404);
writes call the same services as the pages; long work answers 202 with the operation record,
whose progress and error report are readable here while it runs.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current, workspace_get_for_user
from apps.core.api import Pagination, error_response
from apps.core.permissions import require_perm

from .. import selectors, services
from ..analysis import analysis_results, analysis_start
from ..choices import OperationKind
from ..exports import export_start
from ..grouping import auto_group_start
from ..models import Dataset, Label
from ..processing import processing_start
from ..uploads import dataset_upload
from ..versions import version_publish
from .serializers import (
    AnnotationsReplaceSerializer,
    AutoGroupSerializer,
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetUpdateSerializer,
    ExportSerializer,
    ImportSerializer,
    LabelSerializer,
    LabelWriteSerializer,
    OperationErrorSerializer,
    OperationSerializer,
    ProcessingSerializer,
    PublishSerializer,
    SampleDetailSerializer,
    SampleSerializer,
    VersionAnalysisSerializer,
    VersionSerializer,
    sample_list_data,
)


def _dataset(request, pk, action: str = "dataset:view") -> Dataset:
    dataset = selectors.dataset_get_for_user(request.user, pk)
    require_perm(request.user, dataset.workspace, action)
    return dataset


def _resolve(request, raw: str, field: str, action: str = "storage:view"):
    """A path the caller may use (bucket in one of their workspaces, role allows `action`)."""
    from apps.storage.selectors import storage_path_resolve

    if not raw:
        raise exceptions.ValidationError({field: ["This field is required: a path like storage://bucket/folder."]})
    try:
        return storage_path_resolve(request.user, raw, action)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({field: exc.messages}) from None


def _accepted(operation) -> Response:
    return Response(OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


class DatasetListView(APIView):
    """GET: datasets in the caller's workspaces (`?workspace=`, `?q=`, `?data_type=`). POST: create one."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=DatasetSerializer(many=True), parameters=[
        OpenApiParameter("workspace", int), OpenApiParameter("q", str), OpenApiParameter("data_type", str)])
    def get(self, request):
        datasets = Dataset.objects.visible_to(request.user).select_related("current_version").order_by("-created_at",
                                                                                                          "-id")
        workspace = request.query_params.get("workspace")
        if workspace:
            if not workspace.isdigit():
                raise exceptions.ValidationError({"workspace": [f'"{workspace}" is not a workspace id.']})
            datasets = datasets.filter(workspace_id=int(workspace))
        if search := (request.query_params.get("q") or "").strip():
            datasets = datasets.filter(name__icontains=search)
        if data_type := request.query_params.get("data_type"):
            datasets = datasets.filter(data_type=data_type)
        paginator = Pagination()
        page = paginator.paginate_queryset(datasets, request, view=self)
        return paginator.get_paginated_response(DatasetSerializer(page, many=True).data)

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def post(self, request):
        data = DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "workspace" in values:
            try:
                workspace = workspace_get_for_user(request.user, values.pop("workspace"))
            except Http404:
                raise exceptions.ValidationError({"workspace": ["You are not a member of that workspace."]}) from None
        else:
            workspace = workspace_current(request)
        input_location = _resolve(request, values.pop("input_location"), "input_location")
        output_location = _resolve(request, values.pop("output_location"), "output_location", "storage:create")
        dataset = services.dataset_create(user=request.user, workspace=workspace, input_location=input_location,
                                          output_location=output_location, **values)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(APIView):
    """GET one dataset; PATCH its name or description; DELETE it (files in storage stay)."""

    @extend_schema(responses=DatasetSerializer)
    def get(self, request, pk):
        return Response(DatasetSerializer(_dataset(request, pk)).data)

    @extend_schema(request=DatasetUpdateSerializer, responses=DatasetSerializer)
    def patch(self, request, pk):
        dataset = _dataset(request, pk)
        data = DatasetUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_update(user=request.user, dataset=dataset,
                                          name=data.validated_data.get("name", dataset.name),
                                          description=data.validated_data.get("description", dataset.description))
        return Response(DatasetSerializer(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        services.dataset_delete(user=request.user, dataset=_dataset(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SamplePagination(Pagination):
    """30 a page; the total is cached per dataset revision and filter (see CountCachedPaginator)."""

    page_size = 30

    def __init__(self, dataset=None, flt=None):
        # Without a dataset (the schema generator's instance) nothing is paginated or counted.
        self.count_key = selectors.sample_count_key(dataset, flt) if dataset is not None else None

    def django_paginator_class(self, object_list, per_page):
        return selectors.CountCachedPaginator(object_list, per_page, cache_key=self.count_key)


SAMPLE_PARAMS = [OpenApiParameter(n, str) for n in ("status", "label", "usage", "hard", "name", "annotator", "attr",
                                                     "time", "since", "until", "ids", "page", "page_size")] + [
    OpenApiParameter("version", str, description="A published version's id: only the samples it contains, "
                                                 "filtered and reported by the usage, label status, hard flag and "
                                                 "labels it was published with; omit, or `working`, for the "
                                                 "working data.")]


class SampleListView(APIView):
    """GET: the dataset's samples, newest first, with the browser's filters (status, label (repeatable),
    usage, hard, name, annotator, attr=name=value, time=1d|1m, since, until, ids, version)."""
    pagination_class = SamplePagination  # the schema documents the page wrapper

    @extend_schema(parameters=SAMPLE_PARAMS, responses=SampleSerializer(many=True))
    def get(self, request, pk):
        dataset = _dataset(request, pk)
        try:
            flt = selectors.SampleFilter.from_params(request.query_params)
            selectors.version_for_browsing(dataset, flt)
        except selectors.FilterError as exc:
            raise exceptions.ValidationError(exc.fields) from None
        samples = selectors.samples_page_source(dataset, flt)
        paginator = SamplePagination(dataset, flt)
        page = paginator.paginate_queryset(samples, request, view=self)
        return paginator.get_paginated_response(sample_list_data(page))


class SampleDetailView(APIView):
    @extend_schema(responses=SampleDetailSerializer)
    def get(self, request, pk, sample_id):
        dataset = _dataset(request, pk)
        sample = selectors.sample_get(dataset, sample_id)
        return Response(SampleDetailSerializer(sample).data)


class SampleAnnotationsView(APIView):
    """PUT: replace the sample's annotations if `expected_version` is still its annotation_version
    (409 when someone else changed it meanwhile)."""

    @extend_schema(request=AnnotationsReplaceSerializer, responses=SampleDetailSerializer)
    def put(self, request, pk, sample_id):
        dataset = _dataset(request, pk)
        sample = selectors.sample_get(dataset, sample_id)
        data = AnnotationsReplaceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            sample = services.sample_annotations_replace(user=request.user, sample=sample,
                                                         expected_version=data.validated_data["expected_version"],
                                                         annotations=data.validated_data["annotations"])
        except services.StaleSampleError as exc:
            return error_response("conflict", str(exc), status.HTTP_409_CONFLICT)
        return Response(SampleDetailSerializer(sample).data)


class LabelListView(APIView):
    @extend_schema(responses=LabelSerializer(many=True))
    def get(self, request, pk):
        dataset = _dataset(request, pk)
        return Response(LabelSerializer(dataset.labels.all(), many=True).data)

    @extend_schema(request=LabelWriteSerializer, responses={201: LabelSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        data = LabelWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        for end in ("from_label", "to_label"):
            if end in values:
                values[end] = Label.objects.filter(dataset=dataset, pk=values[end]).first()
                if values[end] is None:
                    raise exceptions.ValidationError({end: ["No label with that id in this dataset."]})
        label = services.label_create(user=request.user, dataset=dataset, **values)
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class LabelDetailView(APIView):
    def _label(self, request, pk, label_id):
        dataset = _dataset(request, pk)
        label = Label.objects.filter(dataset=dataset, pk=label_id).first()
        if label is None:
            raise Http404("Not found.")
        return label

    @extend_schema(request=LabelWriteSerializer, responses=LabelSerializer)
    def patch(self, request, pk, label_id):
        label = self._label(request, pk, label_id)
        data = LabelWriteSerializer(data={"name": label.name, **request.data})
        data.is_valid(raise_exception=True)
        label = services.label_update(user=request.user, label=label, name=data.validated_data["name"],
                                      color=data.validated_data.get("color") or label.color,
                                      attributes=request.data.get("attributes"))
        return Response(LabelSerializer(label).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk, label_id):
        services.label_delete(user=request.user, label=self._label(request, pk, label_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImportView(APIView):
    """POST: import from a storage path in a format; 202 with the operation."""

    @extend_schema(request=ImportSerializer, responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["path"] = _resolve(request, values["path"], "path").uri
        return _accepted(services.operation_start(user=request.user, dataset=dataset, kind=OperationKind.IMPORT,
                                                  params=values))


class UploadView(APIView):
    """POST multipart: `files` (repeatable; zips are unpacked safely) and `format`; 202 with the import."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}, "format": {"type": "string"}}}},
        responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        fmt = request.data.get("format") or "raw"
        return _accepted(dataset_upload(user=request.user, dataset=dataset, files=request.FILES.getlist("files"),
                                        import_format=fmt))


class SyncView(APIView):
    """POST: re-read the input location (adds new files; removes samples whose files are gone, never files)."""

    @extend_schema(request=None, responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        return _accepted(services.operation_start(user=request.user, dataset=dataset, kind=OperationKind.SYNC,
                                                  params={}))


class VersionListView(APIView):
    @extend_schema(responses=VersionSerializer(many=True))
    def get(self, request, pk):
        dataset = _dataset(request, pk)
        return Response(VersionSerializer(dataset.versions.select_related("dataset"), many=True).data)

    @extend_schema(request=PublishSerializer, responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        data = PublishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _accepted(version_publish(user=request.user, dataset=dataset, **data.validated_data))


class VersionDetailView(APIView):
    @extend_schema(responses=VersionSerializer)
    def get(self, request, pk, version_id):
        return Response(VersionSerializer(selectors.version_get(_dataset(request, pk), version_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk, version_id):
        services.version_delete(user=request.user, version=selectors.version_get(_dataset(request, pk), version_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionCurrentView(APIView):
    @extend_schema(request=None, responses=DatasetSerializer)
    def post(self, request, pk, version_id):
        version = selectors.version_get(_dataset(request, pk), version_id)
        return Response(DatasetSerializer(services.version_set_current(user=request.user, version=version)).data)


class VersionAnalysisView(APIView):
    """POST: start feature analysis of the version. GET: its histograms (`?usage=`, `?metric=` repeatable)."""

    @extend_schema(request=None, responses={202: OperationSerializer})
    def post(self, request, pk, version_id):
        version = selectors.version_get(_dataset(request, pk), version_id)
        return _accepted(analysis_start(user=request.user, version=version))

    @extend_schema(parameters=[OpenApiParameter("usage", str, enum=["all", "train", "eval", "inference"]),
                               OpenApiParameter("metric", str, many=True)],
                   responses=VersionAnalysisSerializer)
    def get(self, request, pk, version_id):
        version = selectors.version_get(_dataset(request, pk), version_id)
        return Response({"figures": analysis_results([version], usage=request.query_params.get("usage", "all"),
                                                     metrics=request.query_params.getlist("metric") or None)})


class ExportView(APIView):
    @extend_schema(request=ExportSerializer, responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        data = ExportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        output = _resolve(request, values["output_path"], "output_path", "storage:create") \
            if values["output_path"] else None
        qd = QueryDict(mutable=True)
        for key, value in values["filter"].items():
            for item in value if isinstance(value, list) else [value]:
                qd.appendlist(key, str(item))
        return _accepted(export_start(user=request.user, dataset=dataset, method=values["method"],
                                      path=_resolve(request, values["path"], "path", "storage:create"),
                                      format=values["format"], filter_params=qd, name=values["name"],
                                      output_path=output))


class AutoGroupView(APIView):
    @extend_schema(request=AutoGroupSerializer, responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        data = AutoGroupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["result_path"] = _resolve(request, values["result_path"], "result_path", "storage:create") \
            if values["result_path"] else None
        return _accepted(auto_group_start(user=request.user, dataset=dataset, **values))


class ProcessingView(APIView):
    @extend_schema(request=ProcessingSerializer, responses={202: OperationSerializer})
    def post(self, request, pk):
        dataset = _dataset(request, pk)
        data = ProcessingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _accepted(processing_start(user=request.user, dataset=dataset, **data.validated_data))


class OperationListView(APIView):
    pagination_class = Pagination  # the schema documents the page wrapper
    @extend_schema(parameters=[OpenApiParameter("kind", str)], responses=OperationSerializer(many=True))
    def get(self, request, pk):
        dataset = _dataset(request, pk)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.operations_of(dataset, request.query_params.get("kind")),
                                           request, view=self)
        return paginator.get_paginated_response(OperationSerializer(page, many=True).data)


def _operation(request, pk, operation_id):
    dataset = _dataset(request, pk)
    operation = selectors.operations_of(dataset).filter(pk=operation_id).first()
    if operation is None:
        raise Http404("Not found.")
    return operation


class OperationDetailView(APIView):
    @extend_schema(responses=OperationSerializer)
    def get(self, request, pk, operation_id):
        return Response(OperationSerializer(_operation(request, pk, operation_id)).data)


class OperationErrorsView(APIView):
    """GET: the per-item error report (file, line, rule, message), paginated."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=OperationErrorSerializer(many=True))
    def get(self, request, pk, operation_id):
        operation = _operation(request, pk, operation_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(operation.errors.all(), request, view=self)
        return paginator.get_paginated_response(OperationErrorSerializer(page, many=True).data)


class OperationStopView(APIView):
    @extend_schema(request=None, responses=OperationSerializer)
    def post(self, request, pk, operation_id):
        operation = services.operation_stop(user=request.user, operation=_operation(request, pk, operation_id))
        return Response(OperationSerializer(operation).data)

