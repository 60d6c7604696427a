"""Workspace scoping: every read of a user-owned object goes through these helpers.

An object in a workspace the user is not a member of does not exist for them (404).
"""
from __future__ import annotations

from django.db import models
from django.http import Http404


class WorkspaceQuerySet(models.QuerySet):
    """QuerySet for models with a ``workspace`` foreign key."""

    def visible_to(self, user) -> "WorkspaceQuerySet":
        """Objects in any workspace where `user` is a member."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(workspace__memberships__user=user)

    def in_workspace(self, workspace) -> "WorkspaceQuerySet":
        """Objects of one workspace (the user's current one on list pages)."""
        return self.filter(workspace=workspace)


def get_for_user(queryset: models.QuerySet, user, **lookup):
    """Fetch one object the user may see, or raise Http404 (never a hint that it exists)."""
    try:
        return queryset.visible_to(user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def get_with_role(queryset: models.QuerySet, user, **lookup):
    """get_for_user for objects with a `workspace` foreign key that also reads the user's role there.

    The role comes from the membership row the visibility filter joins anyway, and primes the
    cache of `role_of`, so the permission check that follows costs no second query (the hot
    API paths: labeling saves, next sample, sample lists).
    """
    from apps.core.permissions import role_remember

    # Annotated after the visibility filter so it reuses that filter's membership join (the
    # user's own row); annotated before it, Django would join every member of the workspace.
    visible = queryset.visible_to(user).annotate(_member_role=models.F("workspace__memberships__role"))
    try:
        obj = visible.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None
    role_remember(user, obj.workspace_id, obj._member_role)
    return obj

