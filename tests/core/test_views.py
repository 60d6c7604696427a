"""Core pages: the overview and the audit log (owner = workspace admin, teammate = developer)."""
import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.selectors import SESSION_KEY
from apps.core.choices import AuditResult
from apps.core.models import AuditEntry
from tests.core.factories import make_audit_entry

HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user, workspace=None) -> Client:
    """A signed-in client; `workspace` becomes the current one (as the switcher would set it)."""
    client = Client()
    client.force_login(user)
    if workspace is not None:
        session = client.session
        session[SESSION_KEY] = workspace.pk
        session.save()
    return client


# ---- overview -----------------------------------------------------------------------------


def test_overview_requires_sign_in(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_overview_shows_workspace_cards_and_its_activity_to_an_admin(owner, teammate, workspace):
    make_audit_entry(actor=teammate, workspace=workspace, action="bucket:create", object_repr="raw-images")
    response = client_for(owner).get("/")
    assert response.status_code == 200
    ctx = response.context
    assert ctx["role"] == "admin"
    members = next(card for card in ctx["cards"] if card["label"] == "Members")
    assert members["value"] == 2
    assert members["url"] == reverse("accounts:workspace_members", args=[workspace.pk])
    assert ctx["activity_scope"] == "workspace"
    assert [e.action for e in ctx["recent_activity"]] == ["bucket:create", "member:create", "user:create"]
    assert ctx["health"] is None
    html = response.content.decode()
    assert "Recent activity" in html
    assert f'data-live-source="accounts.workspace" data-live-pk="{workspace.pk}"' in html
    assert 'href="/audit/"' in html


def test_overview_shows_a_developer_only_their_own_actions(owner, teammate, workspace):
    make_audit_entry(actor=owner, workspace=workspace, action="workspace:update", object_repr="secret rename")
    make_audit_entry(actor=teammate, workspace=workspace, action="bucket:create", object_repr="mine")
    response = client_for(teammate, workspace).get("/")
    assert response.context["workspace"] == workspace
    assert response.context["activity_scope"] == "mine"
    assert [e.object_repr for e in response.context["recent_activity"]] == ["mine"]
    html = response.content.decode()
    assert "Your recent activity" in html
    assert "secret rename" not in html
    assert response.context["can_view_audit"] is False
    assert 'href="/audit/"' not in html  # neither the sidebar entry nor the header button


def test_overview_activity_partial_for_htmx(owner, workspace):
    response = client_for(owner).get("/", HTTP_HX_TARGET="activity", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "user:create" in html
    assert 'class="timeline"' in html


def test_overview_query_count_is_fixed(owner, teammate, workspace, django_assert_max_num_queries):
    client = client_for(owner)
    client.get("/")
    for i in range(15):
        make_audit_entry(actor=teammate, workspace=workspace, action="bucket:create", object_repr=f"b{i}")
    # Session, user, workspace, role, switcher list, activity, one COUNT per card (at most 3 cards).
    with django_assert_max_num_queries(9):
        response = client.get("/")
    assert len(response.context["recent_activity"]) == 12


def test_overview_platform_health_for_staff(staff):
    response = client_for(staff).get("/")
    health = response.context["health"]
    assert health["database"] == "ok"
    assert health["redis"] == "ok"
    assert health["healthy"] is True
    assert health["users"] == 1
    assert health["workspaces"] == 1
    assert 'data-testid="platform-health"' in response.content.decode()


# ---- audit log ----------------------------------------------------------------------------


@pytest.fixture
def audit_rows(owner, teammate, outsider, workspace):
    base = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.timezone.utc)
    return {
        "create": make_audit_entry(actor=owner, workspace=workspace, action="bucket:create", object_repr="raw-images",
                                   at=base),
        "denied": make_audit_entry(actor=teammate, workspace=workspace, action="member:update", object_repr="bob",
                                   result=AuditResult.DENIED, at=base + dt.timedelta(hours=1)),
        "elsewhere": make_audit_entry(actor=outsider, workspace=outsider.default_workspace, action="bucket:create",
                                      object_repr="charlie-private", at=base),
    }


def test_audit_log_lists_only_the_admins_workspace(owner, audit_rows):
    response = client_for(owner).get("/audit/")
    assert response.status_code == 200
    shown = list(response.context["table"].page.object_list)
    assert audit_rows["create"] in shown and audit_rows["denied"] in shown
    assert audit_rows["elsewhere"] not in shown
    html = response.content.decode()
    assert "charlie-private" not in html
    assert 'id="audit-results"' in html
    assert 'data-modal-open="audit-entry"' in html


def test_audit_log_refuses_a_developer(teammate, workspace, audit_rows):
    response = client_for(teammate, workspace).get("/audit/")
    assert response.status_code == 403
    assert "Your role does not allow audit:view." in response.content.decode()
    assert "raw-images" not in response.content.decode()


def test_audit_log_filters_and_search(owner, audit_rows):
    client = client_for(owner)
    response = client.get("/audit/", {"result": "denied"})
    assert list(response.context["table"].page.object_list) == [audit_rows["denied"]]
    response = client.get("/audit/", {"q": "raw", "actor": "alice", "since": "2026-05-04", "until": "2026-05-04"})
    assert list(response.context["table"].page.object_list) == [audit_rows["create"]]
    response = client.get("/audit/", {"object_type": "membership"})
    assert [e.action for e in response.context["table"].page.object_list] == ["member:create"]


def test_audit_log_bad_filter_is_explained_not_an_error(owner, audit_rows):
    response = client_for(owner).get("/audit/", {"since": "last week", "result": "maybe"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "&quot;last week&quot; is not a date; use YYYY-MM-DD or an ISO 8601 date and time." in html
    assert "&quot;maybe&quot; is not a valid result; choose one of denied, failure, success." in html


def test_audit_log_htmx_answers_with_the_results_partial(owner, audit_rows):
    response = client_for(owner).get("/audit/", {"sort": "action"}, HTTP_HX_TARGET="audit-results", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="table-results" id="audit-results">')
    assert "<html" not in html and 'id="audit-form"' not in html
    assert 'aria-sort="ascending"' in html
    # Sort links keep href beside hx-get and carry the other parameters.
    assert 'href="?sort=-action"' in html and 'hx-get="?sort=-action"' in html


def test_audit_log_query_count_is_fixed(owner, audit_rows, django_assert_num_queries):
    client = client_for(owner)
    client.get("/audit/")  # warm the session and content-type caches
    for i in range(30):
        make_audit_entry(actor=owner, workspace=owner.default_workspace, action=f"bucket:update{i % 3}")
    # session, user, workspace, role, membership list (switcher), 3 filter choice lists, count, page
    with django_assert_num_queries(10):
        response = client.get("/audit/")
    assert response.context["table"].page.paginator.count == 34


def test_platform_staff_see_every_workspace_and_can_filter_by_one(staff, owner, outsider, audit_rows):
    client = client_for(staff)
    response = client.get("/audit/")
    shown = set(response.context["table"].page.object_list)
    assert {audit_rows["create"], audit_rows["denied"], audit_rows["elsewhere"]} <= shown
    assert "Workspace" in [h["label"] for h in response.context["table"].headers]
    response = client.get("/audit/", {"workspace": outsider.default_workspace.pk, "action": "bucket:create"})
    assert list(response.context["table"].page.object_list) == [audit_rows["elsewhere"]]


def test_audit_entry_detail_page_and_modal_partial(owner, audit_rows):
    client = client_for(owner)
    entry = audit_rows["denied"]
    response = client.get(f"/audit/{entry.pk}/")
    assert response.status_code == 200
    assert "<html" in response.content.decode()
    partial = client.get(f"/audit/{entry.pk}/", **HTMX).content.decode()
    assert "<html" not in partial
    assert '<code>member:update</code>' in partial
    assert 'data-status="denied"' in partial


def test_audit_entry_of_another_workspace_is_not_found(owner, audit_rows):
    response = client_for(owner).get(f"/audit/{audit_rows['elsewhere'].pk}/")
    assert response.status_code == 404
    assert "charlie-private" not in response.content.decode()


def test_sidebar_lists_the_audit_log_for_admins_and_staff_only(owner, teammate, staff, workspace):
    def sections(user, current=None):
        return [s["key"] for s in client_for(user, current).get("/").context["nav_sections"]]

    assert "audit" in sections(owner)
    assert "audit" not in sections(teammate, workspace)
    assert "audit" in sections(teammate)  # admin of their own default workspace
    assert "audit" in sections(staff)
    assert "admin" in sections(staff) and "admin" not in sections(owner)


def test_audit_entries_keep_their_actor_name_after_the_user_is_gone(staff, teammate, workspace):
    entry = make_audit_entry(actor=teammate, workspace=workspace, action="bucket:delete", object_repr="tmp")
    teammate.delete()
    entry.refresh_from_db()
    assert entry.actor is None
    response = client_for(staff).get("/audit/", {"action": "bucket:delete"})
    assert "bob" in response.content.decode()
    assert AuditEntry.objects.filter(pk=entry.pk, actor_name="bob").exists()
