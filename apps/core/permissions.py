"""The one permission check: may this user do `<resource>:<action>` in this workspace?

Pages, the API, WebSocket consumers and commands all call `has_perm`/`require_perm`.
Platform staff (``user.is_staff``) administer users, pools and flavors across workspaces.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

from django.core.exceptions import PermissionDenied

from .choices import Role

# Shared by labelers and reviewers: see data and labeling work, edit annotations.
_LABELING = {"workspace:view", "dataset:view", "labeling:view", "annotation:*", "storage:view", "run:view"}

# Grants per role, as fnmatch patterns over "<resource>:<action>".
ROLE_GRANTS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset({"*"}),
    Role.DEVELOPER: frozenset(
        {
            "workspace:view",
            "member:view",
            "storage:*",
            "dataset:*",
            "labeling:*",
            "annotation:*",
            "algorithm:*",
            "trainjob:*",
            "experiment:*",
            "model:*",
            "service:*",
            "notebook:*",
            "workflow:*",
            "autolearn:*",
            "hub:*",
            "run:*",  # includes run:exec, the browser shell into a running job or service instance
            "resource:view",
        }
    ),
    Role.LABELER: frozenset(_LABELING),
    Role.REVIEWER: frozenset(_LABELING | {"labeling:review", "annotation:review"}),
    Role.VIEWER: frozenset({"*:view"} - {"audit:view"}),
}
# Never granted by a wildcard view to non-admins: the audit trail and membership roster details, and
# priority 3 for training jobs (ModelArts' separate "set high priority" right: ordinary users pick 1–2).
_ADMIN_ONLY = frozenset({"audit:view", "member:update", "member:create", "member:delete", "workspace:update",
                         "trainjob:set_high_priority"})


def role_allows(role: str | None, action: str) -> bool:
    """True when `role` grants `action` (a "<resource>:<action>" string)."""
    if role is None:
        return False
    if role == Role.ADMIN:
        return True
    if action in _ADMIN_ONLY:
        return False
    return any(fnmatchcase(action, pattern) for pattern in ROLE_GRANTS.get(role, ()))


def role_of(user, workspace) -> str | None:
    """The user's role in the workspace, or None when not a member. Cached on the user object."""
    if not getattr(user, "is_authenticated", False) or workspace is None:
        return None
    cache = user.__dict__.setdefault("_atelier_roles", {})
    if workspace.pk not in cache:
        from apps.accounts.models import Membership

        cache[workspace.pk] = (
            Membership.objects.filter(user=user, workspace_id=workspace.pk).values_list("role", flat=True).first()
        )
    return cache[workspace.pk]


def role_remember(user, workspace_id: int, role: str | None) -> None:
    """Prime role_of's cache with a role read alongside another query (see scoping.get_with_role)."""
    user.__dict__.setdefault("_atelier_roles", {})[workspace_id] = role


def has_perm(user, workspace, action: str) -> bool:
    """May `user` perform `action` in `workspace`? Platform actions use workspace=None and staff."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if workspace is None:
        return bool(user.is_staff)
    return role_allows(role_of(user, workspace), action)


def require_perm(user, workspace, action: str) -> None:
    """Raise PermissionDenied naming the missing permission; callers have already 404'd outsiders."""
    if not has_perm(user, workspace, action):
        raise PermissionDenied(f"Your role does not allow {action}.")
