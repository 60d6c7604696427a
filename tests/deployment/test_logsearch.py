"""The service Logs tab: the query language (keywords, wildcards, phrases, AND/OR, parentheses,
errors), line times, windows, searching instance logs, the tab's page and partial, and a real
browser."""
from __future__ import annotations

import io
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.deployment.logsearch import (
    QueryError,
    highlight,
    line_time,
    parse_query,
    query_matches,
    service_log_search,
    window_bounds,
)
from apps.deployment.serving import service_create
from apps.runtime.models import Run


def match(query: str, line: str) -> bool:
    return query_matches(parse_query(query), line)


@pytest.mark.parametrize("query, line, expected", [
    ("error", "2026-01-01 ERROR boom", True),  # case-insensitive, anywhere
    ("error", "all fine", False),
    ("", "anything", True),
    ("   ", "anything", True),
    ("err?r", "an errXr here", True),  # ? is exactly one character
    ("err?r", "an errr here", False),
    ("err?r", "err r", False),  # ... but never a space
    ("time*out", "timeout", True),  # * is any run of characters, including none
    ("time*out", "time-was-out", True),
    ("time*out", "time out", False),  # within a word only
    ("*fail*", "xxfailyy", True),
    ("conn", "Connection reset", True),
    ('"connection reset"', "Connection   reset by peer", True),  # phrase: spaces match any run of spaces
    ('"connection reset"', "reset connection", False),
    ('"a*b"', "a*b literally", True),  # no wildcards inside a phrase
    ('"a*b"', "axxb", False),
    ("load failed", "Model load failed: no file", True),  # adjacent keywords: AND
    ("load failed", "load ok", False),
    ("load AND failed", "failed to load", True),  # AND does not care about order
    ("warn OR error", "WARNING: disk", True),
    ("warn OR error", "info", False),
    ("a OR b c", "only a", True),  # AND binds tighter: a OR (b AND c)
    ("a OR b c", "only b", False),
    ("a OR b c", "b and c", True),
    ("(a OR b) c", "a without the other", False),
    ("(a OR b) c", "a with c", True),
    ("((x))", "x", True),
    ("and", "android", True),  # lower-case and/or are plain keywords
    ("x or y", "x or y", True),
    ("x or y", "x only", False),
])
def test_queries(query, line, expected):
    assert match(query, line) is expected


@pytest.mark.parametrize("query, message", [
    ('"unclosed', "The quote at character 1 is not closed."),
    ('ok ""', "The phrase at character 4 is empty."),
    ("(a OR b", "The parenthesis at character 1 is not closed."),
    ("a)", "Unexpected ) at character 2."),
    ("OR a", "OR at character 1 needs a keyword on both sides."),
    ("a OR", "The search ends with an operator; add a keyword after it."),
    ("a AND AND b", "AND at character 7 needs a keyword on both sides."),
    ("()", "Unexpected ) at character 2."),
    ("x" * 501, "The search has 501 characters; at most 500."),
])
def test_malformed_queries_say_what_and_where(query, message):
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert str(caught.value) == message


def test_highlight_marks_every_keyword_and_merges_overlaps():
    tree = parse_query('fail* OR "time out" load')
    assert highlight(tree, "load failed, time  out") == [("load", True), (" ", False), ("failed,", True),
                                                         (" ", False), ("time  out", True)]
    assert highlight(parse_query("aa OR aaa"), "xaaaa") == [("x", False), ("aaaa", True)]
    assert highlight(None, "plain") == [("plain", False)]
    assert highlight(parse_query("*"), "") == [("", False)]


def test_line_times(settings):
    tz = timezone.get_default_timezone()
    assert line_time("2026-11-29 09:10:21,123 WARNING x: y") == timezone.make_aware(
        datetime(2026, 11, 29, 9, 10, 21, 123000), tz)
    assert line_time("2026-11-29T09:10:21Z boot") == datetime.fromisoformat("2026-11-29T09:10:21+00:00")
    assert line_time("[2026-11-29T09:10:21.5+0200] x") == datetime.fromisoformat("2026-11-29T09:10:21.5+02:00")
    assert line_time("no time here 2026-11-29 09:10:21") is None
    assert line_time("2026-13-45 09:10:21 bad date") is None


def test_windows():
    now = timezone.now()
    assert window_bounds("5m", now=now) == (now - timedelta(minutes=5), now)
    assert window_bounds("1h", now=now) == (now - timedelta(hours=1), now)
    since, until = window_bounds("custom", "2026-11-29T08:00", "2026-11-29T09:30:15")
    assert (until - since) == timedelta(minutes=90, seconds=15)
    with pytest.raises(ValidationError) as caught:
        window_bounds("custom", "2026-11-29T10:00", "2026-11-29T09:00")
    assert caught.value.message_dict == {"end": ["The end must come after the start."]}
    with pytest.raises(ValidationError) as caught:
        window_bounds("custom", "yesterday", "2026-11-29T09:00")
    assert caught.value.message_dict == {"start": ["Give the start as a date and time (YYYY-MM-DDTHH:MM)."]}
    with pytest.raises(ValidationError):
        window_bounds("2d")


def _stamp(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S,000")


def write_log(run: Run, lines: list[str]) -> None:
    get_storage().save(parse(run.log_uri), io.BytesIO(("\n".join(lines) + "\n").encode()))


@pytest.fixture
def logged_service(owner, workspace, echo_version, cpu_flavor, local_pool):
    """A service with two instance runs whose logs hold lines 2 hours, 20 minutes and 1 minute old."""
    service = service_create(user=owner, workspace=workspace, name="logged", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool,
         "instance_count": 2}])
    now = timezone.now()
    first, second = Run.objects.filter(service_instance__service=service).order_by("pk")
    Run.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=now - timedelta(hours=3),
                                                            started_at=now - timedelta(hours=3))
    write_log(first, [
        "[atelier] Starting the model server",  # no stamp: the run's start time
        f"{_stamp(now - timedelta(hours=2))} WARNING user: connection refused by db",
        f"{_stamp(now - timedelta(minutes=20))} ERROR user: Timeout while loading",
        "Traceback (most recent call last):",  # no stamp: the line before it dates it
        f"{_stamp(now - timedelta(minutes=1))} INFO atelier_modelserver: Serving echo 0.0.1",
    ])
    write_log(second, [f"{_stamp(now - timedelta(minutes=1))} ERROR user: timeout again on instance two"])
    return service, first, second, now


@pytest.mark.django_db
def test_search_over_instance_logs(logged_service):
    service, first, second, now = logged_service

    def lines(query="", window="5m", run_id=None, **bounds):
        since, until = window_bounds(window, **bounds, now=now) if window != "custom" else window_bounds(
            window, bounds["start"], bounds["end"])
        found = service_log_search(service, query=query, since=since, until=until, run_id=run_id)
        return [(m.run_id, m.number, "".join(text for text, _hit in m.pieces)) for m in found.matches]

    assert lines() == [(first.pk, 5, f"{_stamp(now - timedelta(minutes=1))} INFO atelier_modelserver: Serving echo "
                                     "0.0.1"),
                       (second.pk, 1, f"{_stamp(now - timedelta(minutes=1))} ERROR user: timeout again on instance two")]
    assert [(r, n) for r, n, _ in lines(window="30m")] == [(first.pk, 3), (first.pk, 4), (first.pk, 5), (second.pk, 1)]
    assert [(r, n) for r, n, _ in lines("timeout", window="1h")] == [(first.pk, 3), (second.pk, 1)]
    assert [(r, n) for r, n, _ in lines("timeout", window="1h", run_id=second.pk)] == [(second.pk, 1)]
    assert [(r, n) for r, n, _ in lines("traceback OR serving", window="1h")] == [(first.pk, 4), (first.pk, 5)]
    # A custom window reaches the old lines, dated by their own stamp or the run's start.
    start = timezone.localtime(now - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(now - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M")
    assert [(r, n) for r, n, _ in lines(window="custom", start=start, end=end)] == [(first.pk, 1), (first.pk, 2)]
    assert [(r, n) for r, n, _ in lines('"connection refused" db', window="custom", start=start, end=end)] == [
        (first.pk, 2)]


@pytest.mark.django_db
def test_logs_tab_page_partial_errors_and_isolation(client, owner, outsider, logged_service):
    service, first, second, _now = logged_service
    client.force_login(owner)
    page = client.get(f"/services/{service.pk}/?tab=logs&window=1h&q=timeout").content.decode()
    assert 'data-testid="log-form"' in page and "<mark>Timeout</mark>" in page and "<mark>timeout</mark>" in page
    assert f'<option value="{first.pk}">Instance run {first.pk} · echo 0.0.1' in page
    partial = client.get(f"/services/{service.pk}/?tab=logs&window=1h&q=timeout&run={second.pk}",
                         HTTP_HX_REQUEST="true", HTTP_HX_TARGET="log-results").content.decode()
    assert "<html" not in partial and partial.count('class="log-line"') == 1 and "instance two" in partial
    bad = client.get(f"/services/{service.pk}/?tab=logs&q=%22open").content.decode()
    assert 'data-testid="log-error"' in bad and "Search: The quote at character 1 is not closed." in bad
    bad = client.get(f"/services/{service.pk}/?tab=logs&window=custom&start=x&end=y").content.decode()
    assert "Start: Give the start as a date and time (YYYY-MM-DDTHH:MM)." in bad
    client.force_login(outsider)
    assert client.get(f"/services/{service.pk}/?tab=logs").status_code == 404


SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_logs_tab_in_a_browser(page, asgi_server, login, owner, logged_service):
    from playwright.sync_api import expect

    service, first, _second, _now = logged_service
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/services/{service.pk}/?tab=logs")
    expect(page.locator("[data-testid=log-results] .log-line")).to_have_count(2)  # the last 5 minutes
    expect(page.locator("[data-log-custom]")).to_be_hidden()
    page.select_option("[data-log-window]", "custom")
    expect(page.locator("[data-log-custom]")).to_be_visible()
    page.select_option("[data-log-window]", "30m")
    page.fill("[data-testid=log-query]", "time?ut OR traceback")
    page.click("[data-testid=log-search]")
    expect(page.locator("[data-testid=log-results] .log-line")).to_have_count(3)
    expect(page.locator("[data-testid=log-results] mark")).to_have_text(["Timeout", "Traceback", "timeout"])
    assert "q=time%3Fut%20OR%20traceback" in page.url  # the search is in the address, so it can be shared
    page.select_option("[data-testid=log-run]", str(first.pk))
    page.click("[data-testid=log-search]")
    expect(page.locator("[data-testid=log-results] .log-line")).to_have_count(2)
    page.screenshot(path=str(SHOTS / "deployment-service-logs.png"), full_page=True)
    page.fill("[data-testid=log-query]", "(broken")
    page.click("[data-testid=log-search]")
    expect(page.locator("[data-testid=log-error]")).to_have_text(
        "Search: The parenthesis at character 1 is not closed.")
