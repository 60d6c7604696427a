"""Pages of core: the overview, the audit log, and the health check."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import selectors
from .tables import audit_table_for, render_table


@login_required
@require_GET
def overview(request):
    """The landing page: the workspace at a glance, recent activity, quick links, health for staff.

    The activity list re-renders alone (`#activity` partial) when htmx or live.js asks for it.
    """
    if request.htmx and request.htmx.target == "activity":
        activity, scope = selectors.activity_for(request.user, request.workspace)
        return render(request, "core/overview.html#activity", {"recent_activity": activity, "activity_scope": scope})
    return render(request, "core/overview.html", selectors.overview_for(request.user, request.workspace))


@login_required
@require_GET
def audit_log(request):
    """Audit entries with filters, search, sort and pages: staff see all, workspace admins theirs."""
    entries = selectors.audit_entries_visible_to(request.user, request.workspace)
    table = audit_table_for(request.user, entries, request.GET)
    return render_table(request, "core/auditentry_list.html", {}, table)


@login_required
@require_GET
def audit_entry(request, pk: int):
    """One entry with its details; the audit log opens it in a modal (htmx partial)."""
    entry = selectors.audit_entry_get_for_user(request.user, request.workspace, pk)
    template = "core/auditentry_detail.html#entry" if request.htmx else "core/auditentry_detail.html"
    return render(request, template, {"entry": entry})


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
