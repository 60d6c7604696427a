"""Accounts REST API: token issue and auth, tokens, me, workspaces, members, users."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import services
from apps.accounts.models import ApiToken, Membership, Workspace, hash_token_key
from apps.core.choices import Role
from apps.core.models import AuditEntry
from tests.conftest import PASSWORD

User = get_user_model()

TOKEN_URL = "/api/v1/auth/token/"


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _error(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def staff_api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def teammate_api(teammate):
    client = APIClient()
    client.force_authenticate(teammate)
    return client


# ---- token issue and token authentication ---------------------------------------------------

def test_token_issue_returns_the_key_once(owner):
    response = APIClient().post(TOKEN_URL, {"username": "alice", "password": PASSWORD, "name": "laptop"},
                                format="json")
    assert response.status_code == 201
    body = response.json()
    token = ApiToken.objects.get(user=owner)
    assert body == {"token": body["token"], "id": token.pk, "name": "laptop", "expires_at": None}
    assert token.digest == hash_token_key(body["token"])
    listed = _token_client(body["token"]).get("/api/v1/tokens/").json()["results"]
    assert body["token"] not in str(listed)
    assert AuditEntry.objects.get(action="auth:login").detail == {"via": "api"}


def test_token_authenticates_me(owner, workspace):
    _, key = services.api_token_create(user=owner, name="CI")
    response = _token_client(key).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json() == {"id": owner.pk, "username": "alice", "email": "alice@example.test",
                               "is_staff": False, "current_workspace": workspace.pk,
                               "workspaces": [{"id": workspace.pk, "name": "alice-default", "role": "admin"}]}
    assert ApiToken.objects.get(user=owner).last_used_at is not None


def test_me_honours_the_workspace_header(owner, workspace, teammate):
    _, key = services.api_token_create(user=teammate, name="CI")
    client = _token_client(key)
    assert client.get("/api/v1/me/").json()["current_workspace"] == teammate.default_workspace.pk
    assert client.get("/api/v1/me/", HTTP_X_ATELIER_WORKSPACE=str(workspace.pk)).json()["current_workspace"] == \
        workspace.pk


def test_token_issue_wrong_credentials(owner):
    response = APIClient().post(TOKEN_URL, {"username": "alice", "password": "nope-nope-nope"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_credentials", "message": services.WRONG_CREDENTIALS,
                                         "fields": {}}}
    assert not ApiToken.objects.exists()


def test_token_issue_missing_fields(db):
    response = APIClient().post(TOKEN_URL, {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert _error(response) == {"code": "invalid", "message": "password: This field is required.",
                                "fields": {"password": ["This field is required."]}}


def test_token_issue_is_throttled_like_the_form(owner, small_throttle):
    client = APIClient()
    for _ in range(3):
        assert client.post(TOKEN_URL, {"username": "alice", "password": "nope-nope-nope"}, format="json"
                           ).status_code == 400
    response = client.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert 118 <= int(response["Retry-After"]) <= 120
    assert response.json() == {"error": {"code": "throttled", "fields": {},
                                         "message": "Too many failed sign-in attempts. Try again in 2 minutes."}}
    assert not ApiToken.objects.exists()
    assert AuditEntry.objects.filter(action="auth:login").latest("id").detail == {
        "username": "alice", "via": "api", "reason": "locked"}


def test_form_failures_lock_the_api_too(client, owner, small_throttle):
    for _ in range(3):
        client.post("/accounts/login/", {"username": "alice", "password": "nope-nope-nope"})
    response = APIClient().post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 429


def test_token_issue_ignores_a_stale_authorization_header(owner):
    response = _token_client("atl_stale").post(TOKEN_URL, {"username": "alice", "password": PASSWORD},
                                               format="json")
    assert response.status_code == 201


def test_expired_token_is_401(owner):
    token, key = services.api_token_create(user=owner, name="short", expires_at=timezone.now() + timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _token_client(key).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "authentication_failed", "fields": {},
                                         "message": "The token is invalid, expired or revoked."}}


def test_revoked_token_is_401(owner):
    token, key = services.api_token_create(user=owner, name="gone")
    client = _token_client(key)
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert _error(response)["code"] == "authentication_failed"
    assert ApiToken.objects.get(pk=token.pk).state == "revoked"


def test_unknown_token_and_anonymous_are_401(db):
    assert _token_client("atl_unknown").get("/api/v1/me/").status_code == 401
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"


# ---- tokens ---------------------------------------------------------------------------------

def test_tokens_list_and_create(api, owner):
    response = api.post("/api/v1/tokens/", {"name": "CI", "expires_at": "2999-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "id", "name", "expires_at"}
    assert body["expires_at"] == "2999-01-01T00:00:00Z"
    listed = api.get("/api/v1/tokens/").json()
    assert listed["count"] == 1
    row = listed["results"][0]
    assert {k: row[k] for k in ("id", "name", "prefix", "state", "revoked_at")} == {
        "id": body["id"], "name": "CI", "prefix": body["token"][:12], "state": "active", "revoked_at": None}


def test_token_create_bad_input(api):
    response = api.post("/api/v1/tokens/", {"name": "CI", "expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 400
    assert _error(response) == {"code": "invalid", "message": "expires_at: The expiry must be in the future.",
                                "fields": {"expires_at": ["The expiry must be in the future."]}}
    assert not ApiToken.objects.exists()


def test_token_of_someone_else_is_404(api, outsider):
    token, key = services.api_token_create(user=outsider, name="theirs")
    assert api.get(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert api.delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert services.api_token_authenticate(key) == token


# ---- workspaces -----------------------------------------------------------------------------

def test_workspaces_list_with_my_role(teammate_api, workspace, teammate):
    body = teammate_api.get("/api/v1/workspaces/").json()
    assert [(w["name"], w["my_role"]) for w in body["results"]] == [("alice-default", "developer"),
                                                                   ("bob-default", "admin")]


def test_workspace_create_and_rename(api, owner):
    response = api.post("/api/v1/workspaces/", {"name": "Vision", "description": "cv"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["description"], body["my_role"]) == ("Vision", "cv", "admin")
    response = api.patch(f"/api/v1/workspaces/{body['id']}/", {"name": "Vision 2"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("Vision 2", "cv")


def test_workspace_create_duplicate_is_400(api, workspace):
    response = api.post("/api/v1/workspaces/", {"name": "ALICE-default"}, format="json")
    assert response.status_code == 400
    assert _error(response)["fields"] == {"name": ['A workspace named "ALICE-default" already exists.']}
    assert Workspace.objects.filter(name__iexact="alice-default").count() == 1


def test_workspace_of_someone_else_is_404(outsider_api, workspace):
    assert outsider_api.get(f"/api/v1/workspaces/{workspace.pk}/").status_code == 404
    response = outsider_api.patch(f"/api/v1/workspaces/{workspace.pk}/", {"name": "Mine"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
    workspace.refresh_from_db()
    assert workspace.name == "alice-default"


def test_workspace_rename_by_developer_is_403(teammate_api, workspace):
    response = teammate_api.patch(f"/api/v1/workspaces/{workspace.pk}/", {"name": "Mine"}, format="json")
    assert response.status_code == 403
    assert _error(response) == {"code": "permission_denied", "message": "Your role does not allow workspace:update.",
                                "fields": {}}
    workspace.refresh_from_db()
    assert workspace.name == "alice-default"


def test_workspace_put_is_not_offered(api, workspace):
    assert api.put(f"/api/v1/workspaces/{workspace.pk}/", {"name": "x"}, format="json").status_code == 405


# ---- members --------------------------------------------------------------------------------

def _members(workspace):
    return f"/api/v1/workspaces/{workspace.pk}/members/"


def test_members_list(api, workspace, teammate):
    body = api.get(_members(workspace)).json()
    assert [(m["username"], m["role"]) for m in body["results"]] == [("alice", "admin"), ("bob", "developer")]


def test_members_of_a_foreign_workspace_are_404(outsider_api, workspace, teammate):
    bob = Membership.objects.get(workspace=workspace, user=teammate)
    assert outsider_api.get(_members(workspace)).status_code == 404
    assert outsider_api.post(_members(workspace), {"username": "charlie", "role": "admin"},
                             format="json").status_code == 404
    assert outsider_api.patch(f"{_members(workspace)}{bob.pk}/", {"role": "admin"}, format="json").status_code == 404
    assert outsider_api.delete(f"{_members(workspace)}{bob.pk}/").status_code == 404
    assert list(Membership.objects.filter(workspace=workspace).values_list("user__username", "role")) == [
        ("alice", "admin"), ("bob", "developer")]


def test_member_add_change_remove(api, workspace, outsider):
    response = api.post(_members(workspace), {"username": "charlie", "role": "viewer"}, format="json")
    assert response.status_code == 201
    mid = response.json()["id"]
    assert (response.json()["username"], response.json()["role"]) == ("charlie", "viewer")
    response = api.patch(f"{_members(workspace)}{mid}/", {"role": "labeler"}, format="json")
    assert (response.status_code, response.json()["role"]) == (200, "labeler")
    assert api.delete(f"{_members(workspace)}{mid}/").status_code == 204
    assert not Membership.objects.filter(pk=mid).exists()


def test_member_add_bad_input(api, workspace):
    response = api.post(_members(workspace), {"username": "ghost", "role": "boss"}, format="json")
    assert response.status_code == 400
    assert _error(response)["fields"] == {"username": ['There is no user named "ghost".'],
                                          "role": ['"boss" is not a valid choice.']}
    assert Membership.objects.filter(workspace=workspace).count() == 1


def test_last_admin_is_protected(api, owner, workspace):
    mine = Membership.objects.get(workspace=workspace, user=owner)
    response = api.patch(f"{_members(workspace)}{mine.pk}/", {"role": "viewer"}, format="json")
    assert response.status_code == 400
    assert _error(response)["message"] == "role: A workspace needs at least one admin; make someone else admin first."
    assert api.delete(f"{_members(workspace)}{mine.pk}/").status_code == 400
    assert Membership.objects.get(pk=mine.pk).role == "admin"


def test_member_writes_by_developer_are_403(teammate_api, workspace, teammate, outsider):
    bob = Membership.objects.get(workspace=workspace, user=teammate)
    assert teammate_api.post(_members(workspace), {"username": "charlie", "role": "admin"},
                             format="json").status_code == 403
    assert teammate_api.patch(f"{_members(workspace)}{bob.pk}/", {"role": "admin"}, format="json").status_code == 403
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()
    assert Membership.objects.get(pk=bob.pk).role == "developer"


def test_members_list_for_a_labeler_is_403(owner, workspace, outsider, outsider_api):
    services.membership_set(actor=owner, workspace=workspace, user=outsider, role=Role.LABELER)
    response = outsider_api.get(_members(workspace))
    assert response.status_code == 403
    assert _error(response)["message"] == "Your role does not allow member:view."


# ---- users (platform staff) -----------------------------------------------------------------

def test_users_api_is_staff_only(api, owner):
    response = api.get("/api/v1/users/")
    assert response.status_code == 403
    assert _error(response) == {"code": "permission_denied", "message": "Only platform admins can manage users.",
                                "fields": {}}
    response = api.post("/api/v1/users/", {"username": "mallory", "password": "meadow-copper-8830"}, format="json")
    assert response.status_code == 403
    assert not User.objects.filter(username="mallory").exists()


def test_users_list_and_search(staff_api, owner, outsider):
    assert [u["username"] for u in staff_api.get("/api/v1/users/").json()["results"]] == [
        "alice", "charlie", "root-admin"]
    body = staff_api.get("/api/v1/users/", {"q": "ali"}).json()
    assert [(u["username"], u["workspace_count"], u["is_active"]) for u in body["results"]] == [("alice", 1, True)]


def test_users_create(staff_api):
    response = staff_api.post("/api/v1/users/", {"username": "dora", "email": "dora@example.test",
                                                 "password": "meadow-copper-8830"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["username"], body["is_staff"], body["workspace_count"]) == ("dora", False, 1)
    assert User.objects.get(username="dora").check_password("meadow-copper-8830")


def test_users_create_bad_input(staff_api, owner):
    response = staff_api.post("/api/v1/users/", {"username": "dora", "password": "dora"}, format="json")
    assert response.status_code == 400
    assert _error(response)["fields"]["password"][0] == "The password is too similar to the username."
    response = staff_api.post("/api/v1/users/", {"username": "alice", "password": "meadow-copper-8830"},
                              format="json")
    assert _error(response)["fields"] == {"username": ['The username "alice" is taken.']}
    assert not User.objects.filter(username="dora").exists()


# ---- query counts and schema ----------------------------------------------------------------

def test_list_apis_run_a_fixed_number_of_queries(api, staff_api, owner, workspace, query_count):
    services.api_token_create(user=owner, name="first")  # an empty list skips the page query
    urls = ["/api/v1/tokens/", "/api/v1/workspaces/", _members(workspace), "/api/v1/me/"]
    before = [query_count(lambda url=url: api.get(url)) for url in urls]
    users_before = query_count(lambda: staff_api.get("/api/v1/users/"))
    for i in range(4):
        services.workspace_create(user=owner, name=f"extra-{i}")
        user = services.user_create(username=f"member-{i}", password=None)
        services.membership_set(actor=owner, workspace=workspace, user=user, role=Role.VIEWER)
        services.api_token_create(user=owner, name=f"t{i}")
    assert [query_count(lambda url=url: api.get(url)) for url in urls] == before
    assert query_count(lambda: staff_api.get("/api/v1/users/")) == users_before


def test_schema_documents_the_accounts_api(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/v1/auth/token/", "/api/v1/tokens/", "/api/v1/tokens/{id}/", "/api/v1/me/",
                 "/api/v1/workspaces/", "/api/v1/workspaces/{id}/", "/api/v1/workspaces/{workspace_pk}/members/",
                 "/api/v1/workspaces/{workspace_pk}/members/{id}/", "/api/v1/users/"]:
        assert path in paths, path
    assert set(paths["/api/v1/workspaces/{workspace_pk}/members/{id}/"]) == {"patch", "delete"}
    assert "tokenAuth" in response.json()["components"]["securitySchemes"]
