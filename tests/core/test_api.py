"""REST conventions (error format, pagination, schema, docs) and the audit log API."""
import datetime as dt
import json

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.core.choices import AuditResult
from tests.core.factories import make_audit_entry

AT = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def rows(owner, teammate, outsider, workspace):
    return {
        "create": make_audit_entry(actor=owner, workspace=workspace, action="bucket:create", object_repr="raw-images",
                                   at=AT, detail={"quota_gb": 50}),
        "denied": make_audit_entry(actor=teammate, workspace=workspace, action="member:update", object_repr="bob",
                                   result=AuditResult.DENIED, at=AT + dt.timedelta(hours=1)),
        "elsewhere": make_audit_entry(actor=outsider, workspace=outsider.default_workspace, action="bucket:create",
                                      object_repr="charlie-private", at=AT),
    }


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# ---- the audit API ------------------------------------------------------------------------


def test_list_is_paginated_and_scoped_to_the_workspace(api, rows, workspace):
    response = api.get("/api/v1/audit/", {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4  # user:create and member:create from the cast, plus two rows above
    assert body["previous"] is None
    assert body["next"] == "http://testserver/api/v1/audit/?page=2&page_size=2"
    # Newest first: the cast was created just now, the rows above are backdated.
    assert [r["action"] for r in body["results"]] == ["member:create", "user:create"]
    second = api.get("/api/v1/audit/", {"page_size": 2, "page": 2}).json()
    assert [r["action"] for r in second["results"]] == ["member:update", "bucket:create"]
    assert "charlie-private" not in json.dumps(body) + json.dumps(second)


def test_entry_representation(api, rows, owner, workspace):
    entry = rows["create"]
    body = api.get(f"/api/v1/audit/{entry.pk}/").json()
    assert body == {
        "id": entry.pk,
        "created_at": "2026-05-04T09:30:00Z",
        "actor": owner.pk,
        "actor_name": "alice",
        "workspace": workspace.pk,
        "workspace_name": workspace.name,
        "action": "bucket:create",
        "object_type": "",
        "object_id": "",
        "object_repr": "raw-images",
        "result": "success",
        "ip": None,
        "detail": {"quota_gb": 50},
    }


def test_same_filters_as_the_page(api, rows):
    assert [r["id"] for r in api.get("/api/v1/audit/", {"result": "denied"}).json()["results"]] == [rows["denied"].id]
    body = api.get("/api/v1/audit/", {"q": "raw", "since": "2026-05-04", "until": "2026-05-04"}).json()
    assert [r["id"] for r in body["results"]] == [rows["create"].id]
    body = api.get("/api/v1/audit/", {"actor": "bob", "sort": "created_at"}).json()
    assert [r["action"] for r in body["results"]] == ["member:update"]


def test_bad_filters_answer_400_naming_each_parameter(api, rows):
    response = api.get("/api/v1/audit/", {"result": "maybe", "since": "soon"})
    assert response.status_code == 400
    err = error(response)
    assert err["code"] == "invalid"
    assert err["fields"] == {
        "result": ['"maybe" is not a valid result; choose one of denied, failure, success.'],
        "since": ['"soon" is not a date; use YYYY-MM-DD or an ISO 8601 date and time.'],
    }
    assert err["message"] == 'result: "maybe" is not a valid result; choose one of denied, failure, success.'


def test_unauthenticated_is_401(db):
    response = APIClient().get("/api/v1/audit/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error(response) == {"code": "not_authenticated",
                               "message": "Authentication credentials were not provided.", "fields": {}}


def test_invalid_token_is_401(db):
    response = APIClient().get("/api/v1/audit/", HTTP_AUTHORIZATION="Token atl_not-a-real-key")
    assert response.status_code == 401
    assert error(response)["message"] == "The token is invalid, expired or revoked."


def test_developer_is_403_in_the_error_format(teammate, workspace, rows):
    client = APIClient()
    client.force_authenticate(teammate)
    response = client.get("/api/v1/audit/", HTTP_X_ATELIER_WORKSPACE=str(workspace.pk))
    assert response.status_code == 403
    assert error(response) == {"code": "permission_denied", "message": "Your role does not allow audit:view.",
                               "fields": {}}


def test_entry_of_another_workspace_is_404(api, rows):
    response = api.get(f"/api/v1/audit/{rows['elsewhere'].pk}/")
    assert response.status_code == 404
    assert error(response) == {"code": "not_found", "message": "Not found.", "fields": {}}
    assert api.get("/api/v1/audit/not-a-number/").status_code == 404


def test_unknown_api_path_is_404_in_the_error_format(api):
    response = api.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_writes_are_405(api, rows):
    response = api.post("/api/v1/audit/", {"action": "x"}, format="json")
    assert response.status_code == 405
    assert error(response) == {"code": "method_not_allowed", "message": 'Method "POST" not allowed.', "fields": {}}
    assert api.delete(f"/api/v1/audit/{rows['create'].pk}/").status_code == 405
    rows["create"].refresh_from_db()  # still there


def test_token_client_sees_its_default_workspace(owner, rows):
    _, key = api_token_create(user=owner, name="ci")
    client = APIClient()
    response = client.get("/api/v1/audit/", {"action": "bucket:create"}, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert [r["object_repr"] for r in response.json()["results"]] == ["raw-images"]


def test_staff_filter_by_workspace_and_bad_workspace(staff, outsider, rows):
    client = APIClient()
    client.force_authenticate(staff)
    body = client.get("/api/v1/audit/", {"workspace": outsider.default_workspace.pk, "action": "bucket:create"}).json()
    assert [r["object_repr"] for r in body["results"]] == ["charlie-private"]
    response = client.get("/api/v1/audit/", {"workspace": "abc"})
    assert response.status_code == 400
    assert error(response)["fields"] == {"workspace": ['"abc" is not a valid workspace.']}


def test_list_query_count_is_fixed(api, rows, owner, django_assert_num_queries):
    for i in range(20):
        make_audit_entry(actor=owner, workspace=owner.default_workspace, action="bucket:update")
    # workspace (default), role, count, page
    with django_assert_num_queries(4):
        response = api.get("/api/v1/audit/")
    assert response.json()["count"] == 24


# ---- schema and docs ----------------------------------------------------------------------


def test_schema_is_a_valid_openapi_document(db):
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert schema["info"]["title"] == "Atelier API"
    audit = schema["paths"]["/api/v1/audit/"]["get"]
    assert {p["name"] for p in audit["parameters"]} >= {"q", "actor", "action", "result", "object_type", "since",
                                                       "until", "workspace", "sort", "page", "page_size"}
    assert set(schema["paths"]["/api/v1/audit/"]) == {"get"}


def test_docs_page_uses_our_static_files_and_no_inline_script(db):
    client = Client()
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    bundle = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert f'<script src="{bundle}">' in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert "<script>" not in html  # the init script is a separate same-origin file
    csp = response["Content-Security-Policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]
    init = client.get("/api/docs/", {"script": ""})
    assert init.status_code == 200
    assert "SwaggerUIBundle" in init.content.decode()
    assert client.get(bundle).status_code == 200
