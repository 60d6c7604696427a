"""Request-level middleware: the request context for services, and htmx message delivery.

Services record audit entries without every caller threading the request through;
the values live in a context variable that is reset after each request.
"""
from __future__ import annotations

import contextvars
import json
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


# The client event toasts.js listens for; its detail is {"items": [{"level", "message"}]}.
HTMX_MESSAGES_EVENT = "atelier:messages"


class HtmxMessagesMiddleware:
    """Deliver Django messages queued during an htmx request as toasts, via `HX-Trigger`.

    An htmx fragment has no toast area, so messages would otherwise wait for the next full
    page. They are moved into the `atelier:messages` event unless the response already
    rendered them (a boosted full page) or sends the browser to another page (redirects,
    HX-Redirect/HX-Refresh/HX-Location), where the next page shows them. Must sit after
    MessageMiddleware and django-htmx's HtmxMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or 300 <= response.status_code < 400:
            return response
        if any(header in response for header in ("HX-Redirect", "HX-Refresh", "HX-Location")):
            return response
        storage = getattr(request, "_messages", None)
        if storage is None or storage.used or len(storage) == 0:
            return response
        items = [{"level": message.level_tag or "info", "message": str(message)} for message in storage]
        triggers = _parse_trigger(response.get("HX-Trigger", ""))
        earlier = (triggers.get(HTMX_MESSAGES_EVENT) or {}).get("items", [])
        triggers[HTMX_MESSAGES_EVENT] = {"items": earlier + items}
        response["HX-Trigger"] = json.dumps(triggers)
        return response


def _parse_trigger(value: str) -> dict:
    """HX-Trigger is either a JSON object or a comma-separated list of event names."""
    value = value.strip()
    if not value:
        return {}
    if value.startswith("{"):
        return json.loads(value)
    return {name.strip(): None for name in value.split(",") if name.strip()}
