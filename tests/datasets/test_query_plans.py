"""The sample browser stays fast at 100,000 samples because its pages are index ranges, not table
scans and sorts.

Each filter's page query is explained by the database it runs on: an index reads the rows, in
the browser's order, with no table scan and no sort (on PostgreSQL with scans and sorts priced
out, as the test tables are tiny); on SQLite, whose planner does not weigh table statistics, it
is the index meant for that filter.
"""
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.http import QueryDict

from apps.datasets.models import Label, Sample, SampleAttribute
from apps.datasets.selectors import SampleFilter, samples_page_source, version_page_source

from .conftest import publish


def _page_sql(source) -> tuple[str, list]:
    """The SQL of the query that fetches a page (a queryset, or the index query of an indexed source)."""
    queryset = source.index.order_by("-created_at", "-sample_id").values_list("sample_id", flat=True) \
        if hasattr(source, "index") else source
    sql, params = queryset[:30].query.sql_with_params()
    return sql, list(params)


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test tables are tiny, where a scan and a sort are the planner's honest choice:
            # price them out, so the plan shows whether an index gives the rows in page order.
            off = ("enable_seqscan", "enable_bitmapscan", "enable_sort")
            for setting in off:
                cursor.execute(f"SET {setting} = off")
            try:
                cursor.execute("EXPLAIN " + sql, params)
                return "\n".join(row[0] for row in cursor.fetchall())
            finally:
                for setting in off:
                    cursor.execute(f"RESET {setting}")
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(row[-1] for row in cursor.fetchall())


def _assert_indexed(plan: str, what: str, expected: str | tuple[str, ...]) -> None:
    """The plan neither scans a table nor sorts, and on SQLite reads through `expected` (the index
    meant for this filter, or its names). PostgreSQL picks among usable indexes by cost, which on
    tables this small says little, so there only the absence of scans and sorts is checked."""
    if connection.vendor == "postgresql":
        assert "Index" in plan and "Sort" not in plan and "Seq Scan" not in plan, f"{what}:\n{plan}"
        return
    names = (expected,) if isinstance(expected, str) else expected
    assert any(f" {name} " in plan + " " for name in names), f"{what} does not use {expected}:\n{plan}"
    assert "TEMP B-TREE" not in plan, f"{what} sorts:\n{plan}"
    scans = [line for line in plan.splitlines() if line.startswith("SCAN ") and " INDEX " not in line]
    assert not scans, f"{what} scans a table:\n{plan}"


# filter name → (query parameters, the index meant for it on the working data, on a version).
# Labels are the Cat label's id, filled in by the test.
FILTERS = {
    "all": ({}, "sample_ds_created", "version_sample_created"),
    "status": ({"status": "labeled"}, "sample_ds_status", "version_sample_status"),
    "usage": ({"usage": "NONE"}, "sample_ds_usage", "version_sample_usage"),
    "hard": ({"hard": "yes"}, "sample_ds_hard", "version_sample_hard"),
    "annotator": ({"annotator": "human"}, "annotation_ds_annotator", "version_annotator"),
    # The unique (sample, name) constraint's index, which SQLite names after the table.
    "attribute": ({"attr": "group=1"}, "sqlite_autoindex_datasets_sampleattribute_1", "version_attribute"),
    "label": ({"label": "CAT"}, "sample_label_recent", "version_label_recent"),
    "label+usage": ({"label": "CAT", "usage": "NONE"}, "sample_label_usage", "version_label_usage"),
    "label+status": ({"label": "CAT", "status": "labeled"}, "sample_label_status", "version_label_status"),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("shown", ["working", "version"])
def test_every_browser_filter_pages_through_its_index(owner, cls_dataset, name, shown):
    sample = cls_dataset.samples.get(file_name="Cat0.jpg")
    Sample.objects.filter(pk=sample.pk).update(hard=True)
    SampleAttribute.objects.create(dataset=cls_dataset, sample=sample, name="group", value="1")
    version = publish(owner, cls_dataset)
    cat = Label.objects.get(dataset=cls_dataset, name="Cat")
    params, working_index, version_index = FILTERS[name]
    params = {key: str(cat.pk) if value == "CAT" else value for key, value in params.items()}
    flt = SampleFilter.from_params(QueryDict(urlencode(params)))
    if shown == "version":
        flt.version = version.pk
    source = version_page_source(cls_dataset, flt) if shown == "version" else samples_page_source(cls_dataset, flt)
    assert len(list(source[0:30])) >= 1  # the filter matches something, so the plan is of a real query
    _assert_indexed(_plan(*_page_sql(source)), f"{shown} {name}",
                    version_index if shown == "version" else working_index)
