"""Storage REST API: buckets, folder listings, folders, uploads, downloads and deletes.

Paths travel as `storage://bucket/key` in the `path` parameter. A bucket outside the
caller's workspaces answers 404 like a missing one; every refusal uses the error format
of `apps.core.api`.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current, workspace_get_for_user
from apps.core.api import Pagination
from apps.core.paths import StoragePath, parse
from apps.core.permissions import require_perm
from apps.core.storage import NotFound, get_storage

from .. import selectors, services
from ..downloads import download_response
from ..uploads import limit_uploads
from .serializers import (
    BucketCreateSerializer,
    BucketSerializer,
    EntrySerializer,
    FolderCreateSerializer,
    ObjectInfoSerializer,
    UploadSerializer,
)

PATH_PARAM = OpenApiParameter("path", str, description="storage://bucket/key", required=True)
RECURSIVE_PARAM = OpenApiParameter("recursive", bool, description="Delete a non-empty folder or bucket with "
                                                                  "everything in it.")


def _path(raw: str | None, field: str = "path") -> StoragePath:
    if not raw:
        raise exceptions.ValidationError({field: ["This field is required: a path like storage://bucket/folder."]})
    try:
        return parse(raw)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({field: exc.messages}) from None


def _visible(request, path: StoragePath, action: str):
    """The path's bucket if the caller may do `action` there: 404 outside their workspaces, else 403."""
    bucket = selectors.bucket_get_for_user(request.user, path.bucket)
    require_perm(request.user, bucket.workspace, action)
    return bucket


def _flag(request, name: str) -> bool:
    raw = (request.query_params.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise exceptions.ValidationError({name: [f'"{raw}" is not true or false.']})


class BucketListView(APIView):
    """GET: buckets in the caller's workspaces (`?workspace=<id>` narrows, `?q=` searches names).
    POST: create a bucket in `workspace` (default: the current workspace)."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=BucketSerializer(many=True),
                   parameters=[OpenApiParameter("workspace", int), OpenApiParameter("q", str)])
    def get(self, request):
        buckets = selectors.buckets_visible_to(request.user)
        workspace = request.query_params.get("workspace")
        if workspace:
            if not workspace.isdigit():
                raise exceptions.ValidationError({"workspace": [f'"{workspace}" is not a workspace id.']})
            buckets = buckets.filter(workspace_id=int(workspace))
        if search := (request.query_params.get("q") or "").strip():
            buckets = buckets.filter(name__icontains=search)
        paginator = Pagination()
        page = paginator.paginate_queryset(buckets.order_by("name"), request, view=self)
        return paginator.get_paginated_response(BucketSerializer(page, many=True).data)

    @extend_schema(request=BucketCreateSerializer, responses={201: BucketSerializer})
    def post(self, request):
        data = BucketCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "workspace" in data.validated_data:
            try:
                workspace = workspace_get_for_user(request.user, data.validated_data["workspace"])
            except Http404:
                raise exceptions.ValidationError(
                    {"workspace": [f"You are not a member of a workspace with id {data.validated_data['workspace']}."]}
                ) from None
        else:
            workspace = workspace_current(request)
            if workspace is None:
                raise exceptions.ValidationError({"workspace": ["You belong to no workspace; join one first."]})
        bucket = services.bucket_create(user=request.user, workspace=workspace, name=data.validated_data["name"])
        return Response(BucketSerializer(bucket).data, status=status.HTTP_201_CREATED)


class BucketDetailView(APIView):
    """GET: one bucket. DELETE: delete it (`?recursive=true` when it is not empty)."""

    @extend_schema(responses=BucketSerializer)
    def get(self, request, name):
        return Response(BucketSerializer(selectors.bucket_get_for_user(request.user, name)).data)

    @extend_schema(parameters=[RECURSIVE_PARAM], responses={204: None})
    def delete(self, request, name):
        bucket = selectors.bucket_get_for_user(request.user, name)
        services.bucket_delete(user=request.user, bucket=bucket, recursive=_flag(request, "recursive"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FolderPagination(Pagination):
    """The page wrapper plus the listed folder (`path`) and its parent (null at a bucket's root)."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        wrapper = super().get_paginated_response_schema(schema)
        wrapper["properties"] = {"path": {"type": "string"}, "parent": {"type": "string", "nullable": True},
                                 **wrapper["properties"]}
        wrapper["required"] = ["path", "parent", *wrapper["required"]]
        return wrapper


class ObjectListView(APIView):
    """GET: the folders and files directly in `?path=` (`?q=` filters by name, `?sort=name|size|modified`,
    `-` prefix for descending). DELETE: delete the file or folder at `?path=` (`?recursive=true` for a
    folder that is not empty)."""
    pagination_class = FolderPagination  # the schema documents the page wrapper with path and parent

    @extend_schema(parameters=[PATH_PARAM, OpenApiParameter("q", str), OpenApiParameter("sort", str)],
                   responses=EntrySerializer(many=True))
    def get(self, request):
        path = _path(request.query_params.get("path"))
        _visible(request, path, "storage:view")
        sort = request.query_params.get("sort") or "name"
        if sort.lstrip("-") not in selectors.SORT_KEYS:
            raise exceptions.ValidationError({"sort": [f'Cannot sort by "{sort}"; use name, size or modified.']})
        try:
            entries = selectors.folder_entries(path, search=request.query_params.get("q") or "",
                                               sort=sort.lstrip("-"), descending=sort.startswith("-"))
        except NotFound as exc:
            raise exceptions.NotFound(str(exc)) from None
        paginator = FolderPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        response = paginator.get_paginated_response(EntrySerializer(page, many=True).data)
        parent = path.parent.uri if path.key else None
        response.data = {"path": path.uri, "parent": parent, **response.data}
        return response

    @extend_schema(parameters=[PATH_PARAM, RECURSIVE_PARAM], responses={204: None})
    def delete(self, request):
        path = _path(request.query_params.get("path"))
        _visible(request, path, "storage:view")
        recursive = _flag(request, "recursive")
        storage = get_storage()
        if not path.key:
            raise exceptions.ValidationError({"path": ["This is a bucket; delete it at /buckets/<name>/."]})
        if storage.is_folder(path):
            services.folder_delete(user=request.user, path=path, recursive=recursive)
        elif storage.exists(path):
            services.object_delete(user=request.user, path=path)
        else:
            raise exceptions.NotFound(f"{path.uri} does not exist.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class FolderCreateView(APIView):
    """POST {path, name}: create folder `name` in `path`; "a/b/c" creates three nested levels."""

    @extend_schema(request=FolderCreateSerializer, responses={201: EntrySerializer})
    def post(self, request):
        data = FolderCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = _path(data.validated_data["path"])
        _visible(request, parent, "storage:view")
        if not get_storage().is_folder(parent):
            raise exceptions.NotFound(f"{parent.uri} does not exist.")
        created = services.folder_create(user=request.user, parent=parent, name=data.validated_data["name"])
        entry = selectors.Entry("folder", created.name, created)
        return Response(EntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class UploadView(APIView):
    """POST multipart {path, files…}: store the files in folder `path`, replacing same-named files.

    Every name and size is checked before anything is written: one bad file refuses the batch.
    """

    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request, *args, **kwargs):
        # Before authentication: its CSRF check is the first thing to parse the body.
        self.upload_limit = limit_uploads(request._request)
        super().initial(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: ObjectInfoSerializer(many=True)})
    def post(self, request):
        files = request.FILES.getlist("files")  # parses the body, which fills `too_large`
        if self.upload_limit.too_large:
            # A skipped file must refuse the request, never be silently missing from it.
            raise DjangoValidationError({"files": [services.upload_too_large_message(self.upload_limit.too_large[0])]})
        payload = {"files": files} if files else {}
        if "path" in request.data:
            payload["path"] = request.data["path"]
        data = UploadSerializer(data=payload)
        data.is_valid(raise_exception=True)
        folder = _path(data.validated_data["path"])
        _visible(request, folder, "storage:view")
        if not get_storage().is_folder(folder):
            raise exceptions.NotFound(f"{folder.uri} does not exist.")
        infos = services.objects_upload(user=request.user, folder=folder, files=data.validated_data["files"])
        return Response({"files": ObjectInfoSerializer(infos, many=True, context={"bucket": folder.bucket}).data},
                        status=status.HTTP_201_CREATED)


class DownloadView(APIView):
    """GET ?path=: the file's bytes as an attachment (streamed)."""

    @extend_schema(parameters=[PATH_PARAM], responses={(200, "application/octet-stream"): bytes})
    def get(self, request):
        path = _path(request.query_params.get("path"))
        _visible(request, path, "storage:view")
        try:
            return download_response(request._request, path)
        except NotFound as exc:
            raise exceptions.NotFound(str(exc)) from None
