"""Shared write operations: audit entries, object events and realtime publishing."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from .choices import AuditResult, EventLevel
from .middleware import current_request_context
from .models import AuditEntry, Event
from .realtime import LiveSender

logger = logging.getLogger(__name__)

# Live source of a workspace's activity (registered in CoreConfig.ready with the workspace accessor).
WORKSPACE_ACTIVITY_SOURCE = "accounts.workspace"


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    workspace=None,
    result: str = AuditResult.SUCCESS,
    object_repr: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry; the IP comes from the current request when there is one.

    After commit, pages watching the workspace (the overview's activity list) are told to
    refresh; the signal carries no detail, because viewers may not read the audit trail.
    """
    if workspace is None and obj is not None:
        workspace = getattr(obj, "workspace", None)
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    if workspace is not None:
        publish_on_commit(f"{WORKSPACE_ACTIVITY_SOURCE}.{workspace.pk}", {"kind": "activity"})
    return AuditEntry.objects.create(
        actor=actor if authenticated else None,
        actor_name=actor.get_username() if authenticated else "",
        workspace=workspace,
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:255],
        result=result,
        ip=current_request_context().ip,
        detail=detail or {},
    )


def event_add(*, obj: models.Model, message: str, level: str = EventLevel.INFO) -> Event:
    """Add a line to the object's timeline and push it to anyone watching, after commit."""
    event = Event.objects.create(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk), level=level, message=message
    )
    group = f"{obj._meta.app_label}.{obj._meta.model_name}.{obj.pk}"
    publish_on_commit(group, {"kind": "event", "level": level, "message": message, "at": event.created_at.isoformat()})
    return event


def events_for(obj: models.Model):
    """The object's timeline, oldest first."""
    return Event.objects.filter(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))


def publish(group: str, payload: dict[str, Any]) -> None:
    """Queue `payload` for every WebSocket in `group`; returns at once, sends in call order.

    Group names are `<app>.<model>.<pk>`. See `apps.core.realtime` for why sends are queued.
    """
    if not settings.CHANNEL_LAYERS:
        return
    LiveSender.get().send(group, payload)


def publish_on_commit(group: str, payload: dict[str, Any]) -> None:
    """Publish after the surrounding transaction commits, so watchers never see rolled-back state."""
    transaction.on_commit(lambda: publish(group, payload))
