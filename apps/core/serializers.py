"""REST representations of core records (the audit log)."""
from __future__ import annotations

from rest_framework import serializers

from .models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    """One audit entry; `actor` is the user id (null once the user is deleted), `actor_name` stays."""

    workspace_name = serializers.CharField(source="workspace.name", default=None, read_only=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id", "created_at", "actor", "actor_name", "workspace", "workspace_name", "action",
            "object_type", "object_id", "object_repr", "result", "ip", "detail",
        ]
        read_only_fields = fields
