"""Read queries for accounts, always limited to what the user may see."""
from __future__ import annotations

from django.http import Http404

from .models import ApiToken, Membership, Workspace

SESSION_KEY = "atelier_workspace_id"


def workspaces_for(user):
    """Workspaces where `user` is a member, with their role annotated as `my_role`."""
    from django.db.models import F

    return Workspace.objects.filter(memberships__user=user).annotate(my_role=F("memberships__role")).order_by("name")


def workspace_get_for_user(user, pk) -> Workspace:
    """A workspace the user belongs to, else 404."""
    try:
        return workspaces_for(user).get(pk=pk)
    except (Workspace.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def workspace_current(request) -> Workspace | None:
    """The session's chosen workspace if the user still belongs to it, else their default one.

    API clients may name a workspace with the `X-Atelier-Workspace` header (id).
    """
    user = request.user
    wanted = request.headers.get("X-Atelier-Workspace") or request.session.get(SESSION_KEY)
    if wanted:
        try:
            return workspace_get_for_user(user, wanted)
        except Http404:
            request.session.pop(SESSION_KEY, None)
    workspace = workspaces_for(user).filter(is_default_for=user).first() or workspaces_for(user).first()
    return workspace


def memberships_of(workspace: Workspace):
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")


def tokens_of(user):
    return ApiToken.objects.filter(user=user)
