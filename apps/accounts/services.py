"""Account writes: users, workspaces, memberships and API tokens. Each one is audited."""
from __future__ import annotations

import secrets
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import Role
from apps.core.permissions import require_perm
from apps.core.services import audit_record

from .models import ApiToken, Membership, Workspace, hash_token_key

User = get_user_model()

# Visible part of a token key: lets users tell keys apart in lists without revealing them.
TOKEN_PREFIX_LENGTH = 8


def _unique_workspace_name(base: str) -> str:
    name, n = base[:64], 2
    while Workspace.objects.filter(name=name).exists():
        suffix = f"-{n}"
        name, n = f"{base[:64 - len(suffix)]}{suffix}", n + 1
    return name


@transaction.atomic
def user_create(*, username: str, password: str | None, email: str = "", is_staff: bool = False,
                actor=None) -> "User":
    """Create a user with a personal default workspace in which they are admin."""
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": [f'The username "{username}" is taken.']})
    user = User(username=username, email=email, is_staff=is_staff, is_superuser=is_staff)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    workspace = Workspace.objects.create(
        name=_unique_workspace_name(f"{username}-default"),
        description=f"Default workspace of {username}",
        created_by=user,
        is_default_for=user,
    )
    Membership.objects.create(user=user, workspace=workspace, role=Role.ADMIN)
    audit_record(actor=actor or user, action="user:create", obj=user, workspace=workspace)
    return user


@transaction.atomic
def workspace_create(*, user, name: str, description: str = "") -> Workspace:
    """Create a workspace with `user` as its admin."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Enter a name."]})
    if Workspace.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": [f'A workspace named "{name}" already exists.']})
    workspace = Workspace.objects.create(name=name, description=description, created_by=user)
    Membership.objects.create(user=user, workspace=workspace, role=Role.ADMIN)
    audit_record(actor=user, action="workspace:create", obj=workspace, workspace=workspace)
    return workspace


@transaction.atomic
def workspace_rename(*, user, workspace: Workspace, name: str, description: str | None = None) -> Workspace:
    """Rename (and optionally re-describe) a workspace; admins of that workspace only."""
    require_perm(user, workspace, "workspace:update")
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Enter a name."]})
    if Workspace.objects.filter(name__iexact=name).exclude(pk=workspace.pk).exists():
        raise ValidationError({"name": [f'A workspace named "{name}" already exists.']})
    old = workspace.name
    workspace.name = name
    if description is not None:
        workspace.description = description
    workspace.save(update_fields=["name", "description"])
    audit_record(actor=user, action="workspace:update", obj=workspace, detail={"old_name": old})
    return workspace


@transaction.atomic
def membership_set(*, actor, workspace: Workspace, user, role: str) -> Membership:
    """Add `user` to `workspace` with `role`, or change their role. Keeps at least one admin."""
    if role not in Role.values:
        raise ValidationError({"role": [f'"{role}" is not a role; choose one of {", ".join(Role.values)}.']})
    if not actor.is_staff:
        require_perm(actor, workspace, "member:update")
    membership = Membership.objects.filter(workspace=workspace, user=user).first()
    if membership and membership.role == Role.ADMIN and role != Role.ADMIN:
        _ensure_other_admin(workspace, user)
    if membership is None:
        membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        action = "member:create"
    else:
        membership.role = role
        membership.save(update_fields=["role"])
        action = "member:update"
    actor.__dict__.pop("_atelier_roles", None)
    audit_record(actor=actor, action=action, obj=membership, workspace=workspace, detail={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a member; the last admin of a workspace cannot be removed."""
    if not actor.is_staff:
        require_perm(actor, membership.workspace, "member:delete")
    if membership.role == Role.ADMIN:
        _ensure_other_admin(membership.workspace, membership.user)
    audit_record(actor=actor, action="member:delete", obj=membership, workspace=membership.workspace)
    membership.delete()


def _ensure_other_admin(workspace: Workspace, user) -> None:
    if not Membership.objects.filter(workspace=workspace, role=Role.ADMIN).exclude(user=user).exists():
        raise ValidationError({"role": ["A workspace needs at least one admin; make someone else admin first."]})


def api_token_create(*, user, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its plain key, which is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the token a name so you can recognise it later."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    for _ in range(3):  # a digest collision is astronomically unlikely; retry rather than 500
        key = "atl_" + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user, name=name, prefix=key[:TOKEN_PREFIX_LENGTH + 4], digest=hash_token_key(key),
                    expires_at=expires_at,
                )
            break
        except IntegrityError:
            continue
    audit_record(actor=user, action="token:create", obj=token, workspace=None)
    return token, key


def api_token_revoke(*, user, token: ApiToken) -> ApiToken:
    """Revoke a token of `user` (staff may revoke anyone's). Idempotent."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=user, action="token:revoke", obj=token, workspace=None)
    return token


def api_token_authenticate(key: str) -> ApiToken | None:
    """The active token for `key`, with its last use stamped (at most once a minute)."""
    token = ApiToken.objects.select_related("user").filter(digest=hash_token_key(key)).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
