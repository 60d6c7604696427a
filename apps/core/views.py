"""Overview page and health check."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import selectors


@login_required
def overview(request):
    """The landing page: the workspace at a glance and recent activity."""
    context = selectors.overview_for(request.user, request.workspace)
    return render(request, "core/overview.html", context)


@never_cache
@require_GET
def healthz(request):
    """`{"database": "ok", "redis": "ok", "workers": n}`; 503 when the database or Redis is down."""
    body: dict = {}
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
    except Exception as exc:  # report, never raise: this endpoint exists to describe failures
        body["database"] = f"error: {exc.__class__.__name__}"
        healthy = False
    redis_state = selectors.redis_ping()
    body["redis"] = redis_state
    healthy = healthy and redis_state == "ok"
    body["workers"] = selectors.live_worker_count() if healthy else 0
    return JsonResponse(body, status=200 if healthy else 503)
