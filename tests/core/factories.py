"""Factories for core records. Audit entries are written through the real service."""
from __future__ import annotations

import datetime as dt

from apps.core.choices import AuditResult
from apps.core.models import AuditEntry
from apps.core.services import audit_record


def make_audit_entry(*, actor, workspace, action="bucket:create", object_repr="raw-images",
                     result=AuditResult.SUCCESS, at: dt.datetime | None = None, detail=None) -> AuditEntry:
    """One entry via `audit_record`; `at` backdates it (created_at is auto_now_add)."""
    entry = audit_record(actor=actor, action=action, workspace=workspace, result=result,
                         object_repr=object_repr, detail=detail)
    if at is not None:
        AuditEntry.objects.filter(pk=entry.pk).update(created_at=at)
        entry.refresh_from_db()
    return entry
