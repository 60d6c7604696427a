"""Read queries of core: the overview page, the audit log, timelines and the health check."""
from __future__ import annotations

import importlib

import redis
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection, models
from django.db.models import QuerySet
from django.http import Http404
from django.urls import NoReverseMatch, reverse

from .models import AuditEntry
from .permissions import has_perm, require_perm, role_of


def redis_ping() -> str:
    """"ok", or the error class name when Redis does not answer within a second."""
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


def live_worker_count() -> int:
    """Worker nodes whose heartbeat is recent (the run engine registers them)."""
    from apps.runtime.scheduling import nodes_online

    return nodes_online().count()


def database_ping() -> str:
    """"ok", or the error class name when the database does not answer."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # describe, never raise: the overview shows this to staff
        return f"error: {exc.__class__.__name__}"


# ---- audit log ----------------------------------------------------------------------------


def audit_entries_visible_to(user, workspace) -> QuerySet[AuditEntry]:
    """Entries `user` may read: every entry for platform staff, the workspace's own for
    holders of `audit:view` there (workspace admins); anyone else gets PermissionDenied."""
    if getattr(user, "is_staff", False) and user.is_active:
        return AuditEntry.objects.select_related("workspace")
    require_perm(user, workspace, "audit:view")
    return AuditEntry.objects.filter(workspace=workspace).select_related("workspace")


def audit_entry_get_for_user(user, workspace, pk) -> AuditEntry:
    """One readable entry, or 404 (entries of other workspaces do not exist for the caller)."""
    try:
        return audit_entries_visible_to(user, workspace).get(pk=pk)
    except (AuditEntry.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def activity_for(user, workspace, *, limit: int = 12) -> tuple[list[AuditEntry], str]:
    """Recent activity for the overview and its scope: the workspace's entries ("workspace")
    for those who may read its audit trail, else only the user's own actions there ("mine")."""
    if workspace is None:
        return [], "mine"
    entries = AuditEntry.objects.filter(workspace=workspace)
    scope = "workspace"
    if not has_perm(user, workspace, "audit:view"):
        entries, scope = entries.filter(actor=user), "mine"
    return list(entries[:limit]), scope


# ---- overview -----------------------------------------------------------------------------

# Workspace counts on the overview: (label, icon, section URL name, permission, selector).
# The selector is "<module>:<function>" returning the workspace's rows; a card shows only
# when the selector exists and the role may view it. The URL takes no argument or the workspace id.
OVERVIEW_COUNTS = [
    ("Datasets", "database", "datasets:list", "dataset:view", "apps.datasets.selectors:datasets_in"),
    ("Buckets", "folder", "storage:browser", "storage:view", "apps.storage.selectors:buckets_in"),
    ("Members", "users", "accounts:workspace_members", "workspace:view", "apps.accounts.selectors:memberships_of"),
]


def _selector(path: str):
    module_name, _, function = path.partition(":")
    if not django_apps.is_installed(module_name.rpartition(".")[0]):
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, function, None)


def _section_url(url_name: str, workspace) -> str:
    for args in ((), (workspace.pk,)):
        try:
            return reverse(url_name, args=args)
        except NoReverseMatch:
            continue
    return ""


def overview_cards(user, workspace) -> list[dict]:
    """One card per installed section with a count for this workspace (one COUNT each)."""
    cards = []
    if workspace is None:
        return cards
    for label, icon, url_name, permission, selector_path in OVERVIEW_COUNTS:
        selector = _selector(selector_path)
        if selector is None or not has_perm(user, workspace, permission):
            continue
        cards.append({"label": label, "icon": icon, "url": _section_url(url_name, workspace),
                      "value": selector(workspace).count()})
    return cards


def platform_health() -> dict:
    """For staff: database, Redis and worker state, and how many users and workspaces exist."""
    from django.contrib.auth import get_user_model

    from apps.accounts.models import Workspace

    database = database_ping()
    redis_state = redis_ping()
    healthy = database == "ok" and redis_state == "ok"
    return {
        "database": database,
        "redis": redis_state,
        "workers": live_worker_count() if healthy else 0,
        "users": get_user_model().objects.filter(is_active=True).count() if database == "ok" else 0,
        "workspaces": Workspace.objects.count() if database == "ok" else 0,
        "healthy": healthy,
    }


def overview_for(user, workspace) -> dict:
    """Everything the overview page shows, in a fixed number of queries."""
    activity, scope = activity_for(user, workspace)
    return {
        "workspace": workspace,
        "role": role_of(user, workspace),
        "cards": overview_cards(user, workspace),
        "recent_activity": activity,
        "activity_scope": scope,
        "can_view_audit": getattr(user, "is_staff", False) or has_perm(user, workspace, "audit:view"),
        "health": platform_health() if getattr(user, "is_staff", False) else None,
    }


# ---- timelines ----------------------------------------------------------------------------

# A timeline shows at most this many events; older ones stay in the database (and the API).
TIMELINE_LIMIT = 200


def timeline_for(obj: models.Model, *, limit: int = TIMELINE_LIMIT) -> dict:
    """Context for components/timeline.html: the newest `limit` events of `obj`, oldest first,
    and the live source (`<app>.<model>`, pk) its WebSocket subscribes to."""
    from .services import events_for

    newest = list(events_for(obj).order_by("-created_at", "-id")[: limit + 1])
    return {
        "events": newest[:limit][::-1],
        "truncated": len(newest) > limit,
        "source": f"{obj._meta.app_label}.{obj._meta.model_name}",
        "pk": obj.pk,
    }
