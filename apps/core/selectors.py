"""Read queries behind the overview page and the health check."""
from __future__ import annotations

import redis
from django.conf import settings

from .models import AuditEntry


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
    try:
        from apps.runtime.selectors import worker_nodes_online
    except ImportError:
        return 0
    return worker_nodes_online().count()


def overview_for(user, workspace) -> dict:
    """Counts and recent activity for the overview page, in a fixed number of queries."""
    recent = AuditEntry.objects.filter(workspace=workspace).select_related("actor")[:10] if workspace else []
    cards = []
    try:
        from apps.storage.selectors import buckets_in

        cards.append({"label": "Buckets", "value": buckets_in(workspace).count(), "url_name": "storage:browser"})
    except ImportError:
        pass
    return {"recent_activity": recent, "cards": cards}
