"""Column chooser and text filters of the shared table component."""
import pytest
from django.http import QueryDict
from django.template.loader import render_to_string
from django.test import RequestFactory

from apps.core.models import AuditEntry
from apps.core.tables import Column, Table, TextFilter
from tests.core.factories import make_audit_entry

pytestmark = pytest.mark.django_db


class ChooserTable(Table):
    columns = [
        Column("action", "Action", sort="action", hideable=False),
        Column("object_repr", "Object"),
        Column("actor_name", "Actor"),
        Column("pk", "", hideable=False),
    ]
    column_chooser = True
    default_hidden = ("actor_name",)
    filters = [TextFilter("object", "Object", lookup="object_repr"), TextFilter("id", "ID", lookup="pk",
                                                                                 exact_int=True)]


def _table(query=""):
    return ChooserTable(AuditEntry.objects.all(), QueryDict(query), id="entries")


def test_chooser_lists_hideable_labelled_columns_with_their_defaults():
    assert _table().chooser_columns == [{"key": "object_repr", "label": "Object", "default_hidden": False},
                                        {"key": "actor_name", "label": "Actor", "default_hidden": True}]


def test_text_filters_contain_and_exact_id(owner, workspace):
    first = make_audit_entry(actor=owner, workspace=workspace, object_repr="bucket alpha")
    make_audit_entry(actor=owner, workspace=workspace, object_repr="bucket beta")
    assert [e.object_repr for e in _table("object=ALPHA").queryset] == ["bucket alpha"]
    assert [e.pk for e in _table(f"id={first.pk}").queryset] == [first.pk]
    bad = _table("id=12a")
    assert bad.errors == {"id": ['"12a" is not a valid id; give a whole number.']}
    assert bad.queryset.count() == AuditEntry.objects.count()  # a bad filter is reported and ignored


def test_rendered_table_marks_cells_and_the_chooser(owner, workspace):
    make_audit_entry(actor=owner, workspace=workspace, object_repr="bucket alpha")
    request = RequestFactory().get("/entries/")
    request.user = owner
    request.workspace = workspace
    html = render_to_string("components/table.html", {"table": _table()}, request=request)
    assert 'data-column-chooser="entries"' in html and f'data-user="{owner.pk}"' in html
    assert 'th scope="col" class="" data-col="object_repr"' in html and 'data-col="object_repr">bucket alpha' in html
    assert 'input type="checkbox" data-col="actor_name" data-default="hidden"' in html
    assert 'data-col="action" data-default' not in html  # not hideable: not in the menu
    assert 'type="search" name="object"' in html
