"""Account pages: sign-in, password, workspaces, members, tokens and the platform admin pages."""
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts import services
from apps.accounts.models import ApiToken, Membership, Workspace, hash_token_key
from apps.accounts.selectors import SESSION_KEY
from apps.core.choices import Role
from apps.core.models import AuditEntry
from tests.conftest import PASSWORD

User = get_user_model()

LOGIN = reverse("accounts:login")


@pytest.fixture
def as_owner(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def as_staff(client, staff):
    client.force_login(staff)
    return client


def _text(response) -> str:
    return response.content.decode()


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# ---- sign-in --------------------------------------------------------------------------------

def test_login_page_renders(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert 'name="username"' in _text(response) and 'name="password"' in _text(response)


def test_wrong_password_shows_a_clear_message(client, owner):
    response = client.post(LOGIN, {"username": "alice", "password": "nope-nope-nope"})
    assert response.status_code == 400
    assert services.WRONG_CREDENTIALS in _text(response)
    assert "_auth_user_id" not in client.session


def test_empty_fields_are_named(client, db):
    response = client.post(LOGIN, {"username": "", "password": ""})
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors == {"username": ["This field is required."], "password": ["This field is required."]}


def test_login_success_redirects_and_audits(client, owner):
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD, "next": "/accounts/tokens/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/tokens/"
    assert int(client.session["_auth_user_id"]) == owner.pk
    assert AuditEntry.objects.get(action="auth:login").result == "success"


def test_login_ignores_an_offsite_next(client, owner):
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD, "next": "https://evil.example/x"})
    assert response["Location"] == reverse("core:overview")


def test_login_throttle_refuses_the_next_try_even_with_the_right_password(client, owner, small_throttle):
    for _ in range(3):
        assert client.post(LOGIN, {"username": "alice", "password": "nope-nope-nope"}).status_code == 400
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 2 minutes." in _text(response)
    assert "_auth_user_id" not in client.session
    results = list(AuditEntry.objects.filter(action="auth:login").order_by("id").values_list("result", flat=True))
    assert results == ["failure"] * 4
    assert AuditEntry.objects.filter(action="auth:login").latest("id").detail["reason"] == "locked"


def test_logout_is_post_only(as_owner):
    assert as_owner.get(reverse("accounts:logout")).status_code == 405
    response = as_owner.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert "_auth_user_id" not in as_owner.session


def test_pages_need_sign_in(client, db):
    for name in ["accounts:workspace_list", "accounts:token_list", "accounts:password_change"]:
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(LOGIN + "?next=")


# ---- password change ------------------------------------------------------------------------

URL_PASSWORD = reverse("accounts:password_change")


def test_password_change_page_renders(as_owner):
    response = as_owner.get(URL_PASSWORD)
    assert response.status_code == 200 and 'name="old_password"' in _text(response)


def test_password_change_errors_are_inline(as_owner, owner):
    response = as_owner.post(URL_PASSWORD, {"old_password": "wrong-one-123", "new_password1": "123",
                                            "new_password2": "123"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["old_password"] == ["Your old password was entered incorrectly. Please enter it again."]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_password_change_validators_apply(as_owner, owner):
    response = as_owner.post(URL_PASSWORD, {"old_password": PASSWORD, "new_password1": "48213957260",
                                            "new_password2": "48213957260"})
    assert response.status_code == 400
    assert response.context["form"].errors["new_password2"] == ["This password is entirely numeric."]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_password_change_success(as_owner, owner):
    response = as_owner.post(URL_PASSWORD, {"old_password": PASSWORD, "new_password1": "lantern-orbit-5521",
                                            "new_password2": "lantern-orbit-5521"}, follow=True)
    assert "Your password has been changed." in _text(response)
    owner.refresh_from_db()
    assert owner.check_password("lantern-orbit-5521")
    # The session survives the change.
    assert as_owner.get(reverse("accounts:workspace_list")).status_code == 200


# ---- workspaces -----------------------------------------------------------------------------

def test_workspace_list_shows_my_workspaces_and_roles(client, teammate, workspace):
    client.force_login(teammate)
    response = client.get(reverse("accounts:workspace_list"))
    assert response.status_code == 200
    rows = [(w.name, w.my_role, w.can_rename, w.can_view_members) for w in response.context["workspaces"]]
    assert rows == [("alice-default", "developer", False, True), ("bob-default", "admin", True, True)]
    # The developer gets no rename button for alice's workspace.
    assert reverse("accounts:workspace_rename", args=[workspace.pk]) not in _text(response)


def test_workspace_create_switches_to_it(as_owner, owner):
    response = as_owner.post(reverse("accounts:workspace_create"), {"new-name": "Vision", "new-description": "cv"})
    assert response.status_code == 302
    ws = Workspace.objects.get(name="Vision")
    assert as_owner.session[SESSION_KEY] == ws.pk
    assert Membership.objects.get(workspace=ws).user == owner
    page = as_owner.get(reverse("accounts:workspace_list"))
    assert _messages(page) == ['Workspace "Vision" created; you are its admin and now work in it.']
    assert page.context["current_workspace"] == ws


def test_workspace_create_duplicate_is_refused_inline(as_owner):
    before = Workspace.objects.count()
    response = as_owner.post(reverse("accounts:workspace_create"), {"new-name": "Alice-Default"})
    assert response.status_code == 400
    assert response.context["create_form"].errors == {"name": ['A workspace named "Alice-Default" already exists.']}
    assert Workspace.objects.count() == before


def test_workspace_rename(as_owner, workspace):
    url = reverse("accounts:workspace_rename", args=[workspace.pk])
    page = as_owner.get(url)
    assert page.status_code == 200 and "<html" in _text(page)
    assert page.context["form"].initial == {"name": "alice-default", "description": "Default workspace of alice"}
    # htmx (the rename dialog) gets only the form.
    partial = as_owner.get(url, HTTP_HX_REQUEST="true")
    assert "<html" not in _text(partial) and 'data-testid="rename-form"' in _text(partial)

    response = as_owner.post(url, {"name": "Research", "description": "d"})
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.name, workspace.description) == ("Research", "d")
    response = as_owner.post(url, {"name": ""})
    assert response.status_code == 400
    assert response.context["form"].errors == {"name": ["This field is required."]}
    workspace.refresh_from_db()
    assert workspace.name == "Research"


def test_workspace_rename_by_developer_is_forbidden(client, teammate, workspace):
    client.force_login(teammate)
    url = reverse("accounts:workspace_rename", args=[workspace.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"name": "Mine"})
    assert response.status_code == 403
    assert "Your role does not allow workspace:update." in _text(response)
    workspace.refresh_from_db()
    assert workspace.name == "alice-default"


def test_workspace_rename_of_another_workspace_is_404(client, outsider, workspace):
    client.force_login(outsider)
    response = client.post(reverse("accounts:workspace_rename", args=[workspace.pk]), {"name": "Mine"})
    assert response.status_code == 404
    workspace.refresh_from_db()
    assert workspace.name == "alice-default"


def test_workspace_switch_stores_and_goes_back(client, teammate, workspace):
    client.force_login(teammate)
    response = client.post(reverse("accounts:workspace_switch", args=[workspace.pk]),
                           HTTP_REFERER="http://testserver/accounts/tokens/")
    assert response.status_code == 302 and response["Location"] == "http://testserver/accounts/tokens/"
    assert client.session[SESSION_KEY] == workspace.pk
    assert client.get(reverse("accounts:workspace_list")).context["current_workspace"] == workspace


def test_workspace_switch_to_a_foreign_workspace_is_404(client, outsider, workspace):
    client.force_login(outsider)
    response = client.post(reverse("accounts:workspace_switch", args=[workspace.pk]))
    assert response.status_code == 404
    assert SESSION_KEY not in client.session


def test_workspace_switch_is_post_only(as_owner, workspace):
    assert as_owner.get(reverse("accounts:workspace_switch", args=[workspace.pk])).status_code == 405


# ---- members --------------------------------------------------------------------------------

def _members_url(workspace):
    return reverse("accounts:workspace_members", args=[workspace.pk])


def test_members_page_lists_roles(as_owner, workspace, teammate):
    response = as_owner.get(_members_url(workspace))
    assert response.status_code == 200
    assert [(m.user.username, m.role) for m in response.context["memberships"]] == [("alice", "admin"),
                                                                                   ("bob", "developer")]
    assert response.context["is_admin"] is True


def test_members_page_of_a_foreign_workspace_is_404(client, outsider, workspace):
    client.force_login(outsider)
    assert client.get(_members_url(workspace)).status_code == 404


def test_members_page_for_a_labeler_is_403(client, owner, workspace, outsider):
    services.membership_set(actor=owner, workspace=workspace, user=outsider, role=Role.LABELER)
    client.force_login(outsider)
    response = client.get(_members_url(workspace))
    assert response.status_code == 403
    assert "Your role does not allow member:view." in _text(response)


def test_member_add_by_username(as_owner, workspace, outsider):
    response = as_owner.post(reverse("accounts:member_add", args=[workspace.pk]),
                             {"username": "charlie", "role": "viewer"}, follow=True)
    assert "charlie joined alice-default as viewer." in _text(response)
    assert Membership.objects.get(workspace=workspace, user=outsider).role == "viewer"


@pytest.mark.parametrize("data, field, message", [
    ({"username": "ghost", "role": "viewer"}, "username",
     'There is no user named "ghost". Usernames are case-sensitive; a platform admin creates new users.'),
    ({"username": "charlie", "role": "overlord"}, "role",
     "Select a valid choice. overlord is not one of the available choices."),
    ({"username": "alice", "role": "viewer"}, "username",
     '"alice" is already a member of alice-default; change their role in the list instead.'),
])
def test_member_add_bad_input(as_owner, workspace, outsider, data, field, message):
    before = Membership.objects.count()
    response = as_owner.post(reverse("accounts:member_add", args=[workspace.pk]), data)
    assert response.status_code == 400
    assert response.context["add_form"].errors[field] == [message]
    assert Membership.objects.count() == before
    assert Membership.objects.get(workspace=workspace, user__username="alice").role == "admin"


def test_member_add_by_developer_is_forbidden(client, teammate, workspace, outsider):
    client.force_login(teammate)
    response = client.post(reverse("accounts:member_add", args=[workspace.pk]), {"username": "charlie",
                                                                                  "role": "admin"})
    assert response.status_code == 403
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_member_role_change_and_last_admin_protection(as_owner, owner, workspace, teammate):
    bob = Membership.objects.get(workspace=workspace, user=teammate)
    mine = Membership.objects.get(workspace=workspace, user=owner)
    url = reverse("accounts:member_update", args=[workspace.pk, bob.pk])
    assert as_owner.post(url, {f"m{bob.pk}-role": "reviewer"}).status_code == 302
    assert Membership.objects.get(pk=bob.pk).role == "reviewer"

    response = as_owner.post(reverse("accounts:member_update", args=[workspace.pk, mine.pk]),
                             {f"m{mine.pk}-role": "viewer"})
    assert response.status_code == 400
    assert "A workspace needs at least one admin; make someone else admin first." in _text(response)
    assert Membership.objects.get(pk=mine.pk).role == "admin"


def test_member_of_another_workspace_is_404_through_this_one(as_owner, workspace, outsider):
    foreign = Membership.objects.get(user=outsider)
    response = as_owner.post(reverse("accounts:member_update", args=[workspace.pk, foreign.pk]),
                             {f"m{foreign.pk}-role": "viewer"})
    assert response.status_code == 404
    assert Membership.objects.get(pk=foreign.pk).role == "admin"


def test_member_remove_confirms_then_removes(as_owner, workspace, teammate):
    bob = Membership.objects.get(workspace=workspace, user=teammate)
    url = reverse("accounts:member_remove", args=[workspace.pk, bob.pk])
    confirm = as_owner.get(url)
    assert confirm.status_code == 200 and "Remove bob from alice-default?" in _text(confirm)
    partial = as_owner.get(url, HTTP_HX_REQUEST="true")
    assert "<html" not in _text(partial) and 'data-testid="remove-confirm"' in _text(partial)
    assert Membership.objects.filter(pk=bob.pk).exists()
    assert as_owner.post(url).status_code == 302
    assert not Membership.objects.filter(pk=bob.pk).exists()


def test_member_remove_of_the_last_admin_is_refused(as_owner, owner, workspace):
    mine = Membership.objects.get(workspace=workspace, user=owner)
    response = as_owner.post(reverse("accounts:member_remove", args=[workspace.pk, mine.pk]))
    assert response.status_code == 400
    assert "A workspace needs at least one admin" in _text(response)
    assert Membership.objects.filter(pk=mine.pk).exists()


# ---- API tokens -----------------------------------------------------------------------------

URL_TOKENS = reverse("accounts:token_list")


def test_token_page_shows_the_key_once_and_stores_a_digest(as_owner, owner):
    response = as_owner.post(URL_TOKENS, {"name": "CI pipeline", "expires_at": ""})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    key = response.context["key"]
    assert re.search(rf'value="{re.escape(key)}"', _text(response))
    token = ApiToken.objects.get(user=owner)
    assert (token.name, token.digest, token.prefix) == ("CI pipeline", hash_token_key(key), key[:12])
    later = as_owner.get(URL_TOKENS)
    assert key not in _text(later) and token.prefix in _text(later)


def test_token_page_expiry_date(as_owner, owner):
    response = as_owner.post(URL_TOKENS, {"name": "Short", "expires_at": "2999-01-31"})
    assert response.status_code == 201
    expires = ApiToken.objects.get(user=owner).expires_at
    assert (expires.year, expires.month, expires.day, expires.hour, expires.minute) == (2999, 1, 31, 23, 59)


@pytest.mark.parametrize("data, field, message", [
    ({"name": "", "expires_at": ""}, "name", "This field is required."),
    ({"name": "Old", "expires_at": "2001-05-01"}, "expires_at",
     "2001-05-01 is in the past; choose today or a later day."),
    ({"name": "Bad", "expires_at": "soon"}, "expires_at", "Enter a valid date."),
])
def test_token_page_bad_input(as_owner, data, field, message):
    response = as_owner.post(URL_TOKENS, data)
    assert response.status_code == 400
    assert response.context["form"].errors == {field: [message]}
    assert response.context["key"] is None
    assert not ApiToken.objects.exists()


def test_token_revoke_confirms_then_revokes(as_owner, owner):
    token, key = services.api_token_create(user=owner, name="CI")
    url = reverse("accounts:token_revoke", args=[token.pk])
    confirm = as_owner.get(url)
    assert confirm.status_code == 200 and "Revoke the token “CI”?" in _text(confirm)
    partial = as_owner.get(url, HTTP_HX_REQUEST="true")
    assert "<html" not in _text(partial) and 'data-testid="revoke-confirm"' in _text(partial)
    assert services.api_token_authenticate(key) is not None
    response = as_owner.post(url, follow=True)
    assert _messages(response) == ['Token "CI" revoked; requests using it now get 401.']
    assert ApiToken.objects.get(pk=token.pk).state == "revoked"


def test_token_revoke_of_someone_elses_token_is_404(client, owner, outsider):
    token, key = services.api_token_create(user=owner, name="CI")
    client.force_login(outsider)
    assert client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 404
    assert services.api_token_authenticate(key) == token


# ---- platform admin -------------------------------------------------------------------------

URL_USERS = reverse("accounts:admin_users")


def test_admin_users_page_is_403_for_non_staff(as_owner):
    response = as_owner.get(URL_USERS)
    assert response.status_code == 403
    assert "Only platform admins can manage users." in _text(response)


def test_admin_user_detail_is_404_for_non_staff(as_owner, owner):
    assert as_owner.get(reverse("accounts:admin_user_detail", args=[owner.pk])).status_code == 404


def test_admin_writes_by_non_staff_have_no_effect(client, owner, outsider, workspace):
    client.force_login(owner)
    target = outsider.pk
    assert client.post(reverse("accounts:admin_user_create"), {"username": "mallory", "password": "meadow-copper-8830"}
                       ).status_code == 403
    assert client.post(reverse("accounts:admin_user_active", args=[target]), {"is_active": "false"}).status_code == 404
    assert client.post(reverse("accounts:admin_user_password", args=[target]),
                       {"password": "meadow-copper-8830"}).status_code == 404
    assert client.post(reverse("accounts:admin_membership_set", args=[target]),
                       {"workspace": workspace.pk, "role": "viewer"}).status_code == 404
    outsider.refresh_from_db()
    assert outsider.is_active and outsider.check_password(PASSWORD)
    assert not User.objects.filter(username="mallory").exists()
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()


def test_admin_users_page_searches(as_staff, owner, outsider):
    response = as_staff.get(URL_USERS)
    assert response.status_code == 200
    assert [u.username for u in response.context["table"].page] == ["alice", "charlie", "root-admin"]
    response = as_staff.get(URL_USERS, {"q": "char"})
    assert [u.username for u in response.context["table"].page] == ["charlie"]
    assert [u.workspace_count for u in response.context["table"].page] == [1]


def test_admin_users_page_filters_by_state_and_role(as_staff, staff, owner, outsider):
    services.user_set_active(actor=staff, user=outsider, is_active=False)
    response = as_staff.get(URL_USERS, {"state": "false"})
    assert response.status_code == 200
    assert [u.username for u in response.context["table"].page] == ["charlie"]
    response = as_staff.get(URL_USERS, {"staff": "true"})
    assert [u.username for u in response.context["table"].page] == ["root-admin"]


def test_admin_creates_a_user(as_staff, staff):
    response = as_staff.post(reverse("accounts:admin_user_create"), {
        "username": "dora", "email": "dora@example.test", "password": "meadow-copper-8830", "is_staff": "on"})
    dora = User.objects.get(username="dora")
    assert response.status_code == 302 and response["Location"] == reverse("accounts:admin_user_detail",
                                                                           args=[dora.pk])
    assert (dora.email, dora.is_staff, dora.check_password("meadow-copper-8830")) == ("dora@example.test", True, True)


@pytest.mark.parametrize("data, field, message", [
    ({"username": "dora", "password": "short"}, "password",
     "This password is too short. It must contain at least 10 characters."),
    ({"username": "alice", "password": "meadow-copper-8830"}, "username", 'The username "alice" is taken.'),
    ({"username": "bad name!", "password": "meadow-copper-8830"}, "username",
     "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."),
    ({"username": "dora", "email": "not-an-email", "password": "meadow-copper-8830"}, "email",
     "Enter a valid email address."),
])
def test_admin_user_create_bad_input(as_staff, owner, data, field, message):
    before = User.objects.count()
    response = as_staff.post(reverse("accounts:admin_user_create"), data)
    assert response.status_code == 400
    assert message in response.context["form"].errors[field]
    assert User.objects.count() == before


def test_admin_user_detail_and_actions(as_staff, owner, workspace, outsider):
    url = reverse("accounts:admin_user_detail", args=[owner.pk])
    page = as_staff.get(url)
    assert page.status_code == 200
    assert [m.workspace.name for m in page.context["memberships"]] == ["alice-default"]

    as_staff.post(reverse("accounts:admin_user_active", args=[owner.pk]), {"is_active": "false"})
    owner.refresh_from_db()
    assert owner.is_active is False

    response = as_staff.post(reverse("accounts:admin_user_password", args=[owner.pk]), {"password": "abc"})
    assert response.status_code == 400
    assert response.context["password_form"].errors["password"][0].startswith("This password is too short.")
    as_staff.post(reverse("accounts:admin_user_password", args=[owner.pk]), {"password": "meadow-copper-8830"})
    owner.refresh_from_db()
    assert owner.check_password("meadow-copper-8830")

    foreign = outsider.default_workspace
    as_staff.post(reverse("accounts:admin_membership_set", args=[owner.pk]),
                  {"workspace": foreign.pk, "role": "reviewer"})
    assert Membership.objects.get(workspace=foreign, user=owner).role == "reviewer"
    membership = Membership.objects.get(workspace=foreign, user=owner)
    as_staff.post(reverse("accounts:admin_membership_remove", args=[owner.pk, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_admin_cannot_deactivate_themself(as_staff, staff):
    response = as_staff.post(reverse("accounts:admin_user_active", args=[staff.pk]), {"is_active": "false"},
                             follow=True)
    assert "You cannot deactivate your own account." in _text(response)
    staff.refresh_from_db()
    assert staff.is_active is True


def test_admin_revokes_a_users_token(as_staff, owner):
    token, key = services.api_token_create(user=owner, name="leaked")
    as_staff.post(reverse("accounts:admin_token_revoke", args=[owner.pk, token.pk]))
    assert services.api_token_authenticate(key) is None


# ---- query counts ---------------------------------------------------------------------------

def test_list_pages_run_a_fixed_number_of_queries(client, owner, staff, workspace, outsider, query_count):
    """Adding rows must not add queries (no per-row lookups)."""
    client.force_login(owner)
    pages = {
        "workspaces": reverse("accounts:workspace_list"),
        "members": reverse("accounts:workspace_members", args=[workspace.pk]),
        "tokens": reverse("accounts:token_list"),
    }
    before = {name: query_count(lambda url=url: client.get(url)) for name, url in pages.items()}
    for i in range(4):
        ws = services.workspace_create(user=owner, name=f"extra-{i}")
        user = services.user_create(username=f"member-{i}", password=None)
        services.membership_set(actor=owner, workspace=workspace, user=user, role=Role.VIEWER)
        services.api_token_create(user=owner, name=f"t{i}")
        assert ws.pk
    after = {name: query_count(lambda url=url: client.get(url)) for name, url in pages.items()}
    assert after == before

    client.force_login(staff)
    users_before = query_count(lambda: client.get(URL_USERS))
    for i in range(4):
        services.user_create(username=f"late-{i}", password=None)
    assert query_count(lambda: client.get(URL_USERS)) == users_before


def test_admin_resetting_their_own_password_stays_signed_in(as_staff, staff):
    response = as_staff.post(reverse("accounts:admin_user_password", args=[staff.pk]),
                             {"password": "meadow-copper-8830"})
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.check_password("meadow-copper-8830")
    assert as_staff.get(URL_USERS).status_code == 200
