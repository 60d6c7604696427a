"""Account writes: users, workspaces, memberships and API tokens. Each one is audited."""
from __future__ import annotations

import secrets
from datetime import datetime

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import AuditResult, Role
from apps.core.middleware import client_ip
from apps.core.permissions import require_perm
from apps.core.services import audit_record

from . import throttling
from .models import ApiToken, Membership, Workspace, hash_token_key

User = get_user_model()

# Visible part of a token key: lets users tell keys apart in lists without revealing them.
TOKEN_PREFIX_LENGTH = 8
# Shown for any wrong username/password pair: never reveal which half was wrong.
WRONG_CREDENTIALS = "Wrong username or password. Both are case-sensitive; check Caps Lock."


class LoginLocked(Exception):
    """Too many failed sign-ins for one username from one address; `retry_after` seconds remain."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            f"Too many failed sign-in attempts. Try again in {throttling.wait_text(retry_after)}."
        )


def _unique_workspace_name(base: str) -> str:
    name, n = base[:64], 2
    while Workspace.objects.filter(name=name).exists():
        suffix = f"-{n}"
        name, n = f"{base[:64 - len(suffix)]}{suffix}", n + 1
    return name


def user_authenticate(*, request, username: str, password: str, via: str = "form") -> "User":
    """Check a username/password pair, throttled per username+IP; audits `auth:login` either way.

    Raises LoginLocked while the pair is locked (even for the right password) and
    ValidationError with a readable message for wrong or deactivated credentials.
    """
    ip = client_ip(request)
    remaining = throttling.lock_remaining(username, ip)
    if remaining:
        _login_failure_audit(username, via, "locked")
        raise LoginLocked(remaining)
    user = authenticate(request, username=username, password=password)
    if user is None:
        throttling.failure_register(username, ip)
        inactive = User.objects.filter(username=username, is_active=False).first()
        # Only someone who knows the password learns that the account is deactivated.
        if inactive is not None and inactive.check_password(password):
            _login_failure_audit(username, via, "inactive")
            raise ValidationError("This account is deactivated. Ask a platform admin to reactivate it.",
                                  code="inactive")
        _login_failure_audit(username, via, "wrong_credentials")
        raise ValidationError(WRONG_CREDENTIALS, code="invalid_login")
    throttling.failures_reset(username, ip)
    audit_record(actor=user, action="auth:login", obj=user, detail={"via": via})
    return user


def _login_failure_audit(username: str, via: str, reason: str) -> None:
    audit_record(actor=None, action="auth:login", result=AuditResult.FAILURE,
                 object_repr=username[:150], detail={"username": username[:150], "via": via, "reason": reason})


@transaction.atomic
def user_create(*, username: str, password: str | None, email: str = "", is_staff: bool = False,
                actor=None) -> "User":
    """Create a user with a personal default workspace in which they are admin.

    `actor` (when given) must be platform staff. Password rules are the caller's choice:
    forms and the API check them with `user_password_validate` before calling.
    """
    if actor is not None and not actor.is_staff:
        raise PermissionDenied("Only platform admins can create users.")
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


def _workspace_fields_clean(name: str, description: str | None) -> tuple[str, str | None]:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Enter a name."]})
    limit = Workspace._meta.get_field("name").max_length
    if len(name) > limit:
        raise ValidationError({"name": [f"Use at most {limit} characters (this name has {len(name)})."]})
    if description is not None:
        description = description.strip()
        limit = Workspace._meta.get_field("description").max_length
        if len(description) > limit:
            raise ValidationError(
                {"description": [f"Use at most {limit} characters (this one has {len(description)})."]})
    return name, description


@transaction.atomic
def workspace_create(*, user, name: str, description: str = "") -> Workspace:
    """Create a workspace with `user` as its admin."""
    name, description = _workspace_fields_clean(name, description)
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
    name, description = _workspace_fields_clean(name, description)
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
def membership_create(*, actor, workspace: Workspace, user, role: str) -> Membership:
    """Add a user who is not yet a member; workspace admins (or staff) only."""
    if not actor.is_staff:
        require_perm(actor, workspace, "member:create")
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise ValidationError({"username": [f'"{user.get_username()}" is already a member of {workspace}; '
                                            "change their role in the list instead."]})
    if not user.is_active:
        raise ValidationError({"username": [f'"{user.get_username()}" is deactivated and cannot join workspaces.']})
    return membership_set(actor=actor, workspace=workspace, user=user, role=role)


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
    limit = ApiToken._meta.get_field("name").max_length
    if len(name) > limit:
        raise ValidationError({"name": [f"Use at most {limit} characters (this name has {len(name)})."]})
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
    if token.user_id != user.pk and not user.is_staff:
        raise PermissionDenied("You can only revoke your own tokens.")
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


def user_password_validate(password: str, *, username: str = "", email: str = "", user=None) -> None:
    """Run the configured password validators; raise ValidationError keyed on "password"."""
    subject = user or User(username=username, email=email)
    try:
        validate_password(password, subject)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


@transaction.atomic
def user_password_set(*, actor, user, password: str) -> None:
    """Set a new password (the user themself, or platform staff resetting it). Validators apply.

    Existing sessions of `user` end (Django ties sessions to the password hash); API tokens stay.
    """
    if actor.pk != user.pk and not actor.is_staff:
        raise PermissionDenied("Only platform admins can reset another user's password.")
    user_password_validate(password, user=user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(actor=actor, action="user:password", obj=user,
                 detail={"reset_by_admin": actor.pk != user.pk})


@transaction.atomic
def user_set_active(*, actor, user, is_active: bool) -> None:
    """Activate or deactivate a user (staff only, never oneself). A deactivated user cannot sign in
    and their API tokens stop working; their data and memberships stay."""
    if not actor.is_staff:
        raise PermissionDenied("Only platform admins can activate or deactivate users.")
    if actor.pk == user.pk and not is_active:
        raise ValidationError({"is_active": ["You cannot deactivate your own account."]})
    if user.is_active == is_active:
        return
    user.is_active = is_active
    user.save(update_fields=["is_active"])
    audit_record(actor=actor, action="user:activate" if is_active else "user:deactivate", obj=user)
