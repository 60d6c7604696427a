"""REST conventions shared by every app: pagination and the one error format.

Every error body is ``{"error": {"code": str, "message": str, "fields": {name: [messages]}}}``.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 500 rows a page so one call stays cheap).

    The body is always `{"count", "next", "previous", "results"}`. A list view that pages its
    rows declares `pagination_class = Pagination` (even when it calls the paginator itself), so
    the OpenAPI schema documents that wrapper and the page parameters, not a bare array.
    """

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response_schema(self, schema: dict) -> dict:
        wrapper = super().get_paginated_response_schema(schema)
        # `next` and `previous` are always present (null on the first/last page), so required.
        wrapper["required"] = ["count", "next", "previous", "results"]
        return wrapper


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{key}.{sub}"] = msgs
            elif isinstance(value, list):
                out[key] = [str(v) if not isinstance(v, dict) else str(_flatten(v)) for v in value]
            else:
                out[key] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc, context):
    """Turn DRF, Django validation, 404 and permission errors into the error format."""
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "You do not have permission to do this.")

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", ["Invalid input."]))
        label = "" if first[0] == "non_field_errors" else f"{first[0]}: "
        body = error_body("invalid", f"{label}{first[1][0]}", fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = error_body(str(code), str(detail))
    response.data = body
    return response


def error_response(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST, fields=None) -> Response:
    """For views that refuse without raising (e.g. a service's domain error)."""
    return Response(error_body(code, message, fields), status=http_status)
