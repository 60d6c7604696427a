"""Core selectors: audit visibility, overview activity and cards, timelines."""
import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.core import selectors
from apps.core.services import event_add
from tests.core.factories import make_audit_entry


def test_audit_visibility_follows_role_and_staff(owner, teammate, outsider, staff, workspace):
    mine = make_audit_entry(actor=owner, workspace=workspace)
    theirs = make_audit_entry(actor=outsider, workspace=outsider.default_workspace)
    assert mine in selectors.audit_entries_visible_to(owner, workspace)
    assert theirs not in selectors.audit_entries_visible_to(owner, workspace)
    assert {mine, theirs} <= set(selectors.audit_entries_visible_to(staff, None))
    with pytest.raises(PermissionDenied, match="Your role does not allow audit:view."):
        selectors.audit_entries_visible_to(teammate, workspace)
    with pytest.raises(PermissionDenied):
        selectors.audit_entries_visible_to(owner, None)
    with pytest.raises(Http404):
        selectors.audit_entry_get_for_user(owner, workspace, theirs.pk)
    assert selectors.audit_entry_get_for_user(staff, None, theirs.pk) == theirs


def test_activity_scope(owner, teammate, workspace):
    make_audit_entry(actor=teammate, workspace=workspace, action="dataset:create")
    entries, scope = selectors.activity_for(owner, workspace, limit=2)
    assert scope == "workspace"
    assert [e.action for e in entries] == ["dataset:create", "member:create"]
    entries, scope = selectors.activity_for(teammate, workspace)
    assert (scope, [e.action for e in entries]) == ("mine", ["dataset:create"])
    assert selectors.activity_for(owner, None) == ([], "mine")


def test_overview_cards_follow_installed_sections_and_role(owner, teammate, workspace):
    labels = [card["label"] for card in selectors.overview_cards(owner, workspace)]
    assert "Members" in labels and "Buckets" in labels
    assert selectors.overview_cards(owner, None) == []


def test_timeline_keeps_the_newest_events_oldest_first(owner, workspace):
    for i in range(5):
        event_add(obj=workspace, message=f"step {i}")
    timeline = selectors.timeline_for(workspace, limit=3)
    assert [e.message for e in timeline["events"]] == ["step 2", "step 3", "step 4"]
    assert timeline["truncated"] is True
    assert (timeline["source"], timeline["pk"]) == ("accounts.workspace", workspace.pk)
    full = selectors.timeline_for(workspace)
    assert len(full["events"]) == 5 and full["truncated"] is False
