"""The server-side table helper: sort, search, filters, pagination and their error messages."""
import datetime as dt

import pytest
from django.http import QueryDict
from django.utils import timezone

from apps.core.choices import AuditResult
from apps.core.models import AuditEntry
from apps.core.tables import (
    AuditTable,
    ChoiceFilter,
    Column,
    DateFilter,
    PlatformAuditTable,
    Table,
    TableParamsError,
    as_bool,
    audit_table_for,
    distinct_values,
)
from tests.core.factories import make_audit_entry

NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)


class EntryTable(Table):
    columns = [
        Column("created_at", "Time", sort="created_at"),
        Column("action", "Action", sort="action"),
        Column("object_repr", "Object"),
        Column("workspace.name", "Workspace"),
    ]
    search_fields = ["action", "object_repr"]
    filters = [
        ChoiceFilter("result", "Result", lookup="result", choices=AuditResult.choices),
        ChoiceFilter("actor", "Actor", lookup="actor_name", choices=distinct_values("actor_name")),
        ChoiceFilter("ws", "Workspace", lookup="workspace_id", choices=lambda qs: [], coerce=int),
        DateFilter("since", "From", lookup="created_at"),
        DateFilter("until", "To", lookup="created_at", upper=True),
    ]
    default_sort = "-created_at"
    page_sizes = (2, 5)
    default_page_size = 5


def table(**params) -> EntryTable:
    query = QueryDict(mutable=True)
    for key, value in params.items():
        query[key] = value
    return EntryTable(AuditEntry.objects.order_by(), query, id="entries")


@pytest.fixture
def entries(owner, teammate, workspace):
    AuditEntry.objects.all().delete()  # drop the entries the cast's creation wrote
    made = [
        make_audit_entry(actor=owner, workspace=workspace, action="bucket:create", object_repr="raw-images",
                         at=NOON - dt.timedelta(days=2)),
        make_audit_entry(actor=teammate, workspace=workspace, action="dataset:create", object_repr="flowers",
                         at=NOON - dt.timedelta(days=1), result=AuditResult.FAILURE),
        make_audit_entry(actor=owner, workspace=workspace, action="dataset:delete", object_repr="flowers raw",
                         at=NOON, result=AuditResult.DENIED),
        make_audit_entry(actor=owner, workspace=workspace, action="bucket:delete", object_repr="raw-images",
                         at=NOON),
    ]
    return made


def names(t: Table) -> list[str]:
    return [f"{e.action}/{e.object_repr}" for e in t.queryset]


def test_default_sort_is_newest_first_with_primary_key_breaking_ties(entries):
    t = table()
    assert t.ordering() == ["-created_at", "-pk"]
    # The two noon entries share a timestamp: the later row (higher pk) comes first, every time.
    assert names(t) == ["bucket:delete/raw-images", "dataset:delete/flowers raw", "dataset:create/flowers",
                        "bucket:create/raw-images"]
    assert t.errors == {}


def test_ascending_sort_by_a_column_key(entries):
    t = table(sort="action")
    assert t.ordering() == ["action", "pk"]
    assert [e.action for e in t.queryset] == ["bucket:create", "bucket:delete", "dataset:create", "dataset:delete"]
    assert t.current_sort == "action"


def test_unknown_sort_is_reported_and_the_default_used(entries):
    t = table(sort="-object_repr")
    assert t.errors == {"sort": ['Cannot sort by "object_repr"; sortable columns: action, created_at.']}
    assert t.ordering() == ["-created_at", "-pk"]


def test_headers_offer_the_next_sort_and_aria_state(entries):
    headers = {h["label"]: h for h in table(sort="action").headers}
    assert headers["Action"]["active"] is True
    assert headers["Action"]["aria_sort"] == "ascending"
    assert headers["Action"]["next_sort"] == "-action"
    assert headers["Time"]["next_sort"] == "created_at"
    assert headers["Time"]["aria_sort"] is None
    assert headers["Object"]["sortable"] is False
    assert headers["Object"]["next_sort"] is None
    descending = {h["label"]: h for h in table(sort="-action").headers}
    assert descending["Action"]["next_sort"] == "action"
    assert descending["Action"]["aria_sort"] == "descending"


def test_search_requires_every_word_in_some_field(entries):
    assert names(table(q="flowers")) == ["dataset:delete/flowers raw", "dataset:create/flowers"]
    assert names(table(q="raw dataset")) == ["dataset:delete/flowers raw"]
    assert names(table(q="RAW  bucket:")) == ["bucket:delete/raw-images", "bucket:create/raw-images"]
    assert names(table(q="nothing-like-this")) == []
    assert table(q="x").is_filtered is True
    assert table().is_filtered is False


def test_static_choice_filter_applies_and_rejects_unknown_values(entries):
    assert names(table(result="failure")) == ["dataset:create/flowers"]
    t = table(result="broken")
    assert t.errors == {"result": ['"broken" is not a valid result; choose one of denied, failure, success.']}
    assert len(t.queryset) == 4  # the bad filter is ignored, not applied


def test_dynamic_choice_filter_lists_present_values_and_accepts_others(entries, teammate):
    t = table(actor="bob")
    assert names(t) == ["dataset:create/flowers"]
    widget = next(w for w in t.filter_widgets if w["name"] == "actor")
    assert widget["options"] == [("alice", "alice"), ("bob", "bob")]
    assert widget["value"] == "bob"
    assert names(table(actor="nobody")) == []
    assert table(actor="nobody").errors == {}


def test_coerce_failure_is_a_message(entries, workspace):
    assert table(ws="abc").errors == {"ws": ['"abc" is not a valid workspace.']}
    assert len(table(ws=str(workspace.pk)).queryset) == 4
    assert as_bool("TRUE") is True and as_bool("no") is False
    with pytest.raises(ValueError):
        as_bool("maybe")


def test_date_range_includes_the_whole_until_day(entries):
    day_before = (NOON - dt.timedelta(days=1)).date().isoformat()
    assert names(table(since=day_before, until=day_before)) == ["dataset:create/flowers"]
    assert names(table(since=NOON.date().isoformat())) == ["bucket:delete/raw-images", "dataset:delete/flowers raw"]
    # An ISO datetime is used as is: "before 11:00 on the day" excludes the noon entries.
    until = NOON.replace(hour=11).isoformat()
    assert len(table(since=(NOON - dt.timedelta(days=1)).date().isoformat(), until=until).queryset) == 1


def test_bad_date_is_a_message(entries):
    t = table(since="yesterday", until="2026-02-30")
    assert t.errors == {
        "since": ['"yesterday" is not a date; use YYYY-MM-DD or an ISO 8601 date and time.'],
        "until": ['"2026-02-30" is not a date; use YYYY-MM-DD or an ISO 8601 date and time.'],
    }


def test_pagination_with_offered_sizes_and_clamped_pages(entries):
    t = table(page_size="2", page="2")
    assert t.page.number == 2
    assert [e.action for e in t.page.object_list] == ["dataset:create", "bucket:create"]
    assert table(page_size="2", page="99").page.number == 2
    assert table(page_size="2", page="abc").page.number == 1
    bad = table(page_size="1000")
    assert bad.page_size == 5
    assert bad.errors == {"page_size": ['Page size "1000" is not offered; choose one of 2, 5.']}


def test_rows_resolve_dotted_keys_and_missing_relations(entries, owner, workspace):
    orphan = make_audit_entry(actor=owner, workspace=None, action="token:create", object_repr="laptop")
    rows = {row.obj.pk: row for row in table(page_size="5").rows}
    assert [value for _, value in rows[orphan.pk].cells][1:] == ["token:create", "laptop", None]
    assert [value for _, value in rows[entries[0].pk].cells][3] == workspace.name


def test_filtered_raises_with_every_bad_parameter(entries):
    with pytest.raises(TableParamsError) as info:
        table(result="x", since="never").filtered()
    assert info.value.fields == {
        "result": ['"x" is not a valid result; choose one of denied, failure, success.'],
        "since": ['"never" is not a date; use YYYY-MM-DD or an ISO 8601 date and time.'],
    }
    assert list(table(result="denied").filtered()) == [entries[2]]


def test_audit_table_matches_the_viewer(owner, staff):
    assert type(audit_table_for(owner, AuditEntry.objects.all(), {})) is AuditTable
    staff_table = audit_table_for(staff, AuditEntry.objects.all(), {})
    assert type(staff_table) is PlatformAuditTable
    assert [c.label for c in staff_table.columns] == ["Time", "Actor", "Workspace", "Action", "Object", "Result",
                                                      "IP address", ""]
    assert [f.name for f in staff_table.filters] == ["workspace", "actor", "action", "result", "object_type",
                                                     "since", "until"]
    assert staff_table.results_id == "audit-results" and staff_table.form_id == "audit-form"


def test_now_is_a_valid_upper_bound(entries):
    assert len(table(until=timezone.now().isoformat()).queryset) == 4
