"""Account services: sign-in and throttling, workspaces, memberships, tokens, users."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory
from django.utils import timezone

from apps.accounts import services, throttling
from apps.accounts.models import ApiToken, Membership, Workspace, hash_token_key
from apps.core.choices import AuditResult, Role
from apps.core.models import AuditEntry
from tests.conftest import PASSWORD

User = get_user_model()


def _request(ip="127.0.0.1"):
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=ip)


def _login_audits():
    return list(AuditEntry.objects.filter(action="auth:login").order_by("id").values_list("result", "detail"))


# ---- sign-in and throttling -----------------------------------------------------------------

def test_right_password_signs_in_and_is_audited(owner):
    user = services.user_authenticate(request=_request(), username="alice", password=PASSWORD)
    assert user == owner
    entry = AuditEntry.objects.get(action="auth:login")
    assert (entry.actor, entry.result, entry.object_id, entry.detail) == (owner, "success", str(owner.pk),
                                                                          {"via": "form"})


def test_wrong_password_says_so_and_is_audited(owner):
    with pytest.raises(ValidationError) as exc:
        services.user_authenticate(request=_request(), username="alice", password="wrong-password-1")
    assert exc.value.messages == [services.WRONG_CREDENTIALS]
    assert _login_audits() == [(AuditResult.FAILURE, {"username": "alice", "via": "form",
                                                      "reason": "wrong_credentials"})]
    assert AuditEntry.objects.get(action="auth:login").actor is None


def test_unknown_username_gets_the_same_message(db):
    with pytest.raises(ValidationError) as exc:
        services.user_authenticate(request=_request(), username="nobody", password="whatever-123")
    assert exc.value.messages == [services.WRONG_CREDENTIALS]


def test_deactivated_account_is_named_only_with_the_right_password(owner, staff):
    services.user_set_active(actor=staff, user=owner, is_active=False)
    with pytest.raises(ValidationError) as exc:
        services.user_authenticate(request=_request(), username="alice", password=PASSWORD)
    assert exc.value.messages == ["This account is deactivated. Ask a platform admin to reactivate it."]
    with pytest.raises(ValidationError) as exc:
        services.user_authenticate(request=_request(), username="alice", password="not-the-password")
    assert exc.value.messages == [services.WRONG_CREDENTIALS]


def test_lock_after_max_failures_refuses_even_the_right_password(owner, small_throttle):
    for _ in range(3):
        with pytest.raises(ValidationError):
            services.user_authenticate(request=_request(), username="alice", password="bad-password-x")
    with pytest.raises(services.LoginLocked) as exc:
        services.user_authenticate(request=_request(), username="alice", password=PASSWORD)
    assert 118 <= exc.value.retry_after <= 120
    assert str(exc.value) == "Too many failed sign-in attempts. Try again in 2 minutes."
    reasons = [detail["reason"] for _, detail in _login_audits()]
    assert reasons == ["wrong_credentials"] * 3 + ["locked"]
    assert not AuditEntry.objects.filter(action="auth:login", result="success").exists()


def test_lock_is_per_username_and_address(owner, teammate, small_throttle):
    for _ in range(3):
        with pytest.raises(ValidationError):
            services.user_authenticate(request=_request(), username="alice", password="bad-password-x")
    # Another address, and another username from the same address, are unaffected.
    assert services.user_authenticate(request=_request("10.0.0.9"), username="alice", password=PASSWORD) == owner
    assert services.user_authenticate(request=_request(), username="bob", password=PASSWORD) == teammate
    throttling.failures_reset("alice", "10.0.0.9")
    # The username is compared case-insensitively, so "ALICE" shares alice's lock.
    with pytest.raises(services.LoginLocked):
        services.user_authenticate(request=_request(), username="ALICE", password=PASSWORD)


def test_lock_ends_after_the_lock_time(owner, small_throttle, monkeypatch):
    for _ in range(3):
        with pytest.raises(ValidationError):
            services.user_authenticate(request=_request(), username="alice", password="bad-password-x")
    later = throttling.time.time() + 121
    monkeypatch.setattr(throttling.time, "time", lambda: later)
    assert services.user_authenticate(request=_request(), username="alice", password=PASSWORD) == owner


def test_success_clears_earlier_failures(owner, small_throttle):
    for _ in range(2):
        with pytest.raises(ValidationError):
            services.user_authenticate(request=_request(), username="alice", password="bad-password-x")
    services.user_authenticate(request=_request(), username="alice", password=PASSWORD)
    for _ in range(2):
        with pytest.raises(ValidationError):
            services.user_authenticate(request=_request(), username="alice", password="bad-password-x")
    assert services.user_authenticate(request=_request(), username="alice", password=PASSWORD) == owner


@pytest.mark.parametrize("seconds, text", [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"),
                                           (61, "2 minutes"), (300, "5 minutes")])
def test_wait_text_rounds_up_to_what_a_person_reads(seconds, text):
    assert throttling.wait_text(seconds) == text


# ---- workspaces -----------------------------------------------------------------------------

def test_workspace_create_makes_the_creator_admin(owner):
    ws = services.workspace_create(user=owner, name="  Vision team ", description="cats and dogs")
    assert (ws.name, ws.description, ws.created_by) == ("Vision team", "cats and dogs", owner)
    assert list(ws.memberships.values_list("user__username", "role")) == [("alice", "admin")]
    entry = AuditEntry.objects.get(action="workspace:create")
    assert (entry.actor, entry.workspace, entry.object_repr) == (owner, ws, "Vision team")


@pytest.mark.parametrize("name, message", [
    ("   ", "Enter a name."),
    ("x" * 65, "Use at most 64 characters (this name has 65)."),
    ("ALICE-DEFAULT", 'A workspace named "ALICE-DEFAULT" already exists.'),
])
def test_workspace_create_refuses_bad_names(owner, name, message):
    before = Workspace.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.workspace_create(user=owner, name=name)
    assert exc.value.message_dict == {"name": [message]}
    assert Workspace.objects.count() == before


def test_workspace_rename_by_admin(owner, workspace):
    services.workspace_rename(user=owner, workspace=workspace, name="Research", description="new")
    workspace.refresh_from_db()
    assert (workspace.name, workspace.description) == ("Research", "new")
    assert AuditEntry.objects.get(action="workspace:update").detail == {"old_name": "alice-default"}


def test_workspace_rename_by_developer_is_refused(teammate, workspace):
    with pytest.raises(PermissionDenied):
        services.workspace_rename(user=teammate, workspace=workspace, name="Hijacked")
    workspace.refresh_from_db()
    assert workspace.name == "alice-default"
    assert not AuditEntry.objects.filter(action="workspace:update").exists()


# ---- memberships ----------------------------------------------------------------------------

def test_membership_create_adds_a_user(owner, workspace, outsider):
    membership = services.membership_create(actor=owner, workspace=workspace, user=outsider, role=Role.VIEWER)
    assert (membership.user, membership.role) == (outsider, "viewer")
    assert AuditEntry.objects.filter(action="member:create", workspace=workspace).count() == 1


def test_membership_create_refuses_an_existing_member(owner, workspace, teammate):
    with pytest.raises(ValidationError) as exc:
        services.membership_create(actor=owner, workspace=workspace, user=teammate, role=Role.VIEWER)
    assert exc.value.message_dict == {"username": ['"bob" is already a member of alice-default; '
                                                   "change their role in the list instead."]}
    assert Membership.objects.get(workspace=workspace, user=teammate).role == "developer"


def test_membership_create_by_developer_is_refused(teammate, workspace, outsider):
    with pytest.raises(PermissionDenied):
        services.membership_create(actor=teammate, workspace=workspace, user=outsider, role=Role.ADMIN)
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_membership_role_change(owner, workspace, teammate):
    services.membership_set(actor=owner, workspace=workspace, user=teammate, role=Role.REVIEWER)
    assert Membership.objects.get(workspace=workspace, user=teammate).role == "reviewer"
    assert AuditEntry.objects.filter(action="member:update").latest("id").detail == {"role": "reviewer"}


def test_membership_unknown_role_is_refused(owner, workspace, teammate):
    with pytest.raises(ValidationError) as exc:
        services.membership_set(actor=owner, workspace=workspace, user=teammate, role="overlord")
    assert exc.value.message_dict["role"][0].startswith('"overlord" is not a role; choose one of admin, developer')
    assert Membership.objects.get(workspace=workspace, user=teammate).role == "developer"


def test_last_admin_cannot_step_down_or_leave(owner, workspace, teammate):
    mine = Membership.objects.get(workspace=workspace, user=owner)
    with pytest.raises(ValidationError) as exc:
        services.membership_set(actor=owner, workspace=workspace, user=owner, role=Role.DEVELOPER)
    assert exc.value.message_dict == {"role": ["A workspace needs at least one admin; make someone else admin first."]}
    with pytest.raises(ValidationError):
        services.membership_remove(actor=owner, membership=mine)
    mine.refresh_from_db()
    assert mine.role == "admin"
    # With a second admin the first may step down.
    services.membership_set(actor=owner, workspace=workspace, user=teammate, role=Role.ADMIN)
    services.membership_set(actor=owner, workspace=workspace, user=owner, role=Role.VIEWER)
    assert Membership.objects.get(pk=mine.pk).role == "viewer"


def test_membership_remove(owner, workspace, teammate):
    membership = Membership.objects.get(workspace=workspace, user=teammate)
    services.membership_remove(actor=owner, membership=membership)
    assert not Membership.objects.filter(workspace=workspace, user=teammate).exists()
    assert AuditEntry.objects.get(action="member:delete").object_repr == "bob in alice-default as developer"


# ---- API tokens -----------------------------------------------------------------------------

def test_token_is_stored_only_as_digest_and_prefix(owner):
    token, key = services.api_token_create(user=owner, name="CI")
    assert key.startswith("atl_") and len(key) > 40
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert stored["digest"] == hash_token_key(key)
    assert stored["prefix"] == key[:12]
    assert key not in [str(v) for v in stored.values()]
    assert services.api_token_authenticate(key) == token


@pytest.mark.parametrize("name, expires, field, message", [
    ("  ", None, "name", "Give the token a name so you can recognise it later."),
    ("x" * 65, None, "name", "Use at most 64 characters (this name has 65)."),
    ("CI", timezone.now() - timedelta(minutes=1), "expires_at", "The expiry must be in the future."),
])
def test_token_create_refuses_bad_input(owner, name, expires, field, message):
    with pytest.raises(ValidationError) as exc:
        services.api_token_create(user=owner, name=name, expires_at=expires)
    assert exc.value.message_dict == {field: [message]}
    assert not ApiToken.objects.exists()


def test_expired_revoked_and_deactivated_tokens_do_not_authenticate(owner, staff):
    expiring, expiring_key = services.api_token_create(user=owner, name="short",
                                                       expires_at=timezone.now() + timedelta(seconds=30))
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.api_token_authenticate(expiring_key) is None

    revoked, revoked_key = services.api_token_create(user=owner, name="gone")
    services.api_token_revoke(user=owner, token=revoked)
    assert services.api_token_authenticate(revoked_key) is None
    assert ApiToken.objects.get(pk=revoked.pk).state == "revoked"

    live, live_key = services.api_token_create(user=owner, name="live")
    services.user_set_active(actor=staff, user=owner, is_active=False)
    assert services.api_token_authenticate(live_key) is None
    assert services.api_token_authenticate("atl_not-a-key") is None


def test_token_revoke_of_someone_else_is_refused(owner, outsider):
    token, key = services.api_token_create(user=owner, name="CI")
    with pytest.raises(PermissionDenied):
        services.api_token_revoke(user=outsider, token=token)
    assert services.api_token_authenticate(key) == token
    assert not AuditEntry.objects.filter(action="token:revoke").exists()


# ---- users ----------------------------------------------------------------------------------

def test_password_set_applies_the_validators(owner):
    with pytest.raises(ValidationError) as exc:
        services.user_password_set(actor=owner, user=owner, password="short")
    assert exc.value.message_dict == {"password": [
        "This password is too short. It must contain at least 10 characters."]}
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_password_set_by_self_and_by_staff(owner, staff):
    services.user_password_set(actor=owner, user=owner, password="lantern-orbit-5521")
    services.user_password_set(actor=staff, user=owner, password="meadow-copper-8830")
    owner.refresh_from_db()
    assert owner.check_password("meadow-copper-8830")
    details = list(AuditEntry.objects.filter(action="user:password").order_by("id").values_list("actor_name", "detail"))
    assert details == [("alice", {"reset_by_admin": False}), ("root-admin", {"reset_by_admin": True})]


def test_password_set_of_another_user_by_non_staff_is_refused(owner, outsider):
    with pytest.raises(PermissionDenied):
        services.user_password_set(actor=outsider, user=owner, password="meadow-copper-8830")
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_user_set_active(owner, staff):
    services.user_set_active(actor=staff, user=owner, is_active=False)
    owner.refresh_from_db()
    assert owner.is_active is False
    services.user_set_active(actor=staff, user=owner, is_active=True)
    assert list(AuditEntry.objects.filter(action__startswith="user:").exclude(action="user:create")
                .order_by("id").values_list("action", flat=True)) == ["user:deactivate", "user:activate"]


def test_user_set_active_refusals(owner, outsider, staff):
    with pytest.raises(PermissionDenied):
        services.user_set_active(actor=outsider, user=owner, is_active=False)
    with pytest.raises(ValidationError) as exc:
        services.user_set_active(actor=staff, user=staff, is_active=False)
    assert exc.value.message_dict == {"is_active": ["You cannot deactivate your own account."]}
    assert User.objects.filter(is_active=False).count() == 0


def test_user_create_by_non_staff_is_refused(owner):
    with pytest.raises(PermissionDenied):
        services.user_create(actor=owner, username="mallory", password="meadow-copper-8830")
    assert not User.objects.filter(username="mallory").exists()


def test_user_create_by_staff_makes_a_personal_workspace(staff):
    user = services.user_create(actor=staff, username="dora", password="meadow-copper-8830", email="d@example.test")
    assert user.default_workspace.name == "dora-default"
    assert list(Membership.objects.filter(user=user).values_list("workspace__name", "role")) == [
        ("dora-default", "admin")]
    assert AuditEntry.objects.get(action="user:create", object_id=str(user.pk)).actor == staff
