"""Core REST API: the audit log, with the same filters, search and sort as its page.

Query parameters are parsed by the page's table (apps.core.tables.AuditTable), so the
page and the API cannot drift; a bad parameter answers 400 in the one error format with
the parameter named in `fields`. Pagination is the API's own (`page`, `page_size`).
"""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets

from apps.accounts.selectors import workspace_current

from . import selectors
from .models import AuditEntry
from .serializers import AuditEntrySerializer
from .tables import TableParamsError, audit_table_for

ERROR = OpenApiResponse(description='Error: `{"error": {"code", "message", "fields"}}`.')

AUDIT_FILTERS = [
    OpenApiParameter("q", str, description="Search actor, action, object type, id and name (all words must match)."),
    OpenApiParameter("actor", str, description="Exact actor username."),
    OpenApiParameter("action", str, description='Exact action, e.g. "bucket:create".'),
    OpenApiParameter("result", str, enum=["success", "failure", "denied"]),
    OpenApiParameter("object_type", str, description='Model name, e.g. "bucket".'),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="From this date (YYYY-MM-DD) or ISO 8601 time."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="To this date, inclusive, or before this ISO 8601 time."),
    OpenApiParameter("workspace", int, description="Workspace id (platform staff only)."),
    OpenApiParameter("sort", str, description="created_at, actor_name, action, object_repr or result; '-' for descending."),
]


@extend_schema_view(
    list=extend_schema(summary="Audit entries: every workspace for staff, the current one for its admins",
                       parameters=AUDIT_FILTERS, responses={200: AuditEntrySerializer(many=True), 400: ERROR, 403: ERROR}),
    retrieve=extend_schema(summary="One audit entry", responses={200: AuditEntrySerializer, 403: ERROR, 404: ERROR}),
)
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEntrySerializer

    def _workspace(self):
        # Token clients have no workspace from the page middleware; resolve it the same way
        # (X-Atelier-Workspace header, else the user's default workspace).
        return getattr(self.request._request, "workspace", None) or workspace_current(self.request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user to scope by
            return AuditEntry.objects.none()
        entries = selectors.audit_entries_visible_to(self.request.user, self._workspace())
        if self.action != "list":
            return entries
        params = self.request.query_params.copy()
        for name in ("page", "page_size", "format"):  # the API's own parameters, not the table's
            params.pop(name, None)
        try:
            return audit_table_for(self.request.user, entries, params).filtered()
        except TableParamsError as exc:
            raise exceptions.ValidationError(exc.fields) from None
