"""Read queries for accounts, always limited to what the user may see."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q
from django.http import Http404

from .models import ApiToken, Membership, Workspace

SESSION_KEY = "atelier_workspace_id"


def workspaces_for(user):
    """Workspaces where `user` is a member, with their role annotated as `my_role`."""
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


def token_get_for_user(user, pk) -> ApiToken:
    """One of the user's own tokens, else 404."""
    try:
        return tokens_of(user).get(pk=pk)
    except (ApiToken.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def membership_get(workspace: Workspace, pk) -> Membership:
    """A membership of `workspace` (already scoped to the user), else 404."""
    try:
        return memberships_of(workspace).get(pk=pk)
    except (Membership.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def users_search(query: str = ""):
    """Every user for the platform admin list, matched on username or email, with membership counts."""
    users = get_user_model().objects.annotate(workspace_count=Count("memberships")).order_by("username")
    query = (query or "").strip()
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    return users


def user_get_for_staff(actor, pk):
    """Any user, for platform staff; 404 for everyone else (the admin area does not exist for them)."""
    User = get_user_model()  # noqa: N806 - the model class
    if not (actor.is_authenticated and actor.is_staff and actor.is_active):
        raise Http404("Not found.")
    try:
        return User.objects.get(pk=pk)
    except (User.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def memberships_of_user(user):
    """The user's memberships with their workspaces, by workspace name."""
    return Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")
