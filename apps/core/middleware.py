"""Request context for services: who is acting and from which IP.

Services record audit entries without every caller threading the request through;
the values live in a context variable that is reset after each request.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("atelier_request", default=RequestContext())


def current_request_context() -> RequestContext:
    return _current.get()


def client_ip(request) -> str | None:
    """The peer address. X-Forwarded-For is trusted only when ATELIER_TRUST_PROXY is set."""
    from django.conf import settings

    if getattr(settings, "ATELIER_TRUST_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(RequestContext(ip=client_ip(request)))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
