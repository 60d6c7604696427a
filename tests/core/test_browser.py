"""The console shell's client behaviour in a real browser (Playwright + system Chromium).

Pages run under the production Content-Security-Policy, so waits use function predicates
(string expressions would need 'unsafe-eval').

Menus, modals (Esc, backdrop, focus), typed-name confirmation (client and server halves),
toasts (page messages and HX-Trigger ones), live fragments fed by apps.core.services.publish,
the overview's live activity, and the audit log's htmx search and sort.
"""
import datetime as dt
import re

import pytest
from django.http import Http404
from django.utils import timezone

from apps.core.consumers import LIVE_SOURCES, register_live_source
from apps.core.services import publish
from tests.core import components_urls
from tests.core.factories import make_audit_entry

pytestmark = pytest.mark.e2e


@pytest.fixture
def thing_source():
    """A live source for the components page: object 1 exists for everyone signed in."""

    def accessor(user, pk):
        if str(pk) != "1":
            raise Http404("Not found.")
        return pk

    register_live_source("tests.thing", accessor)
    components_urls.REFRESHES["count"] = 0
    yield
    LIVE_SOURCES.pop("tests.thing", None)


@pytest.fixture
def signed_in(asgi_server, page, login, owner):
    login(page, owner, asgi_server.url)
    return page


def test_workspace_switcher_opens_and_closes(asgi_server, signed_in, owner):
    from apps.accounts.services import workspace_create

    workspace_create(user=owner, name="vision-team")
    page = signed_in
    page.goto(asgi_server.url + "/")
    switcher = page.get_by_test_id("workspace-switcher")
    panel = switcher.locator(".menu-panel")
    assert not panel.is_visible()
    switcher.locator("summary").click()
    assert panel.is_visible()
    assert panel.locator(".menu-item-text").all_inner_texts()[:2] == ["alice-default", "vision-team"]
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    # Opening the user menu closes the switcher; a click elsewhere closes both.
    switcher.locator("summary").click()
    page.get_by_test_id("user-menu").locator("summary").click()
    assert not panel.is_visible()
    assert page.get_by_test_id("user-menu").locator(".menu-panel").is_visible()
    page.locator("h1").click()
    assert not page.get_by_test_id("user-menu").locator(".menu-panel").is_visible()


@pytest.mark.urls("tests.core.components_urls")
def test_modal_esc_backdrop_and_focus(asgi_server, signed_in, thing_source):
    page = signed_in
    page.goto(asgi_server.url + "/_components/")
    dialog = page.locator("dialog#delete-bucket")
    opener = page.get_by_role("button", name="Delete bucket")
    opener.click()
    assert dialog.is_visible()
    # Focus starts in the form and Tab stays inside the dialog.
    assert page.evaluate("document.activeElement.name") == "confirm_name"
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('dialog#delete-bucket').contains(document.activeElement)")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.dataset.modalOpen") == "delete-bucket"
    opener.click()
    assert dialog.is_visible()
    page.mouse.click(5, 5)  # the backdrop
    assert not dialog.is_visible()
    opener.click()
    dialog.get_by_role("button", name="Close").click()
    assert not dialog.is_visible()


@pytest.mark.urls("tests.core.components_urls")
def test_typed_name_enables_delete_only_on_exact_match(asgi_server, signed_in, thing_source):
    page = signed_in
    page.goto(asgi_server.url + "/_components/")
    page.get_by_role("button", name="Delete bucket").click()
    field = page.locator("dialog#delete-bucket input[name=confirm_name]")
    submit = page.locator("dialog#delete-bucket [data-confirm-submit]")
    assert submit.is_disabled()
    for typed in ["raw", "Raw-images", "raw-images ", "raw-imagesx"]:
        field.fill(typed)
        assert submit.is_disabled(), typed
    field.fill("raw-images")
    assert submit.is_enabled()
    submit.click()
    page.wait_for_url(asgi_server.url + "/_components/")
    toast = page.locator(".toast-success")
    assert toast.inner_text().strip() == "Bucket raw-images deleted."
    toast.locator("[data-toast-close]").click()
    toast.wait_for(state="detached")


@pytest.mark.urls("tests.core.components_urls")
def test_server_refuses_a_wrong_name_even_if_the_button_is_forced(asgi_server, signed_in, thing_source):
    page = signed_in
    page.goto(asgi_server.url + "/_components/")
    page.get_by_role("button", name="Delete bucket").click()
    page.locator("dialog#delete-bucket input[name=confirm_name]").fill("raw-image")
    page.evaluate("document.querySelector('[data-confirm-submit]').disabled = false")
    page.locator("dialog#delete-bucket [data-confirm-submit]").click()
    page.wait_for_url(asgi_server.url + "/_components/")
    assert page.locator(".toast-error").inner_text().strip() == (
        'Type the name "raw-images" exactly to confirm; you typed "raw-image".')


@pytest.mark.urls("tests.core.components_urls")
def test_htmx_response_messages_become_toasts(asgi_server, signed_in, thing_source):
    page = signed_in
    page.goto(asgi_server.url + "/_components/")
    page.get_by_role("button", name="Notify").click()
    toast = page.locator(".toast-info")
    toast.wait_for()
    assert toast.inner_text().strip() == "Export started; you will be notified when it finishes."


def publish_when_open(page, selector: str, group: str, payload: dict) -> None:
    page.wait_for_selector(f'{selector}[data-live-state="open"]')
    publish(group, payload)


@pytest.mark.urls("tests.core.components_urls")
def test_live_fragment_appends_published_events_and_refreshes(asgi_server, signed_in, thing_source):
    page = signed_in
    page.goto(asgi_server.url + "/_components/")
    assert page.locator(".timeline-empty").is_visible()
    at = dt.datetime(2026, 3, 1, 8, 15, 30, tzinfo=dt.timezone.utc).isoformat()
    # Each live element has its own socket: publish only once both are subscribed.
    page.wait_for_selector('#counter[data-live-state="open"]')
    publish_when_open(page, ".timeline-block", "tests.thing.1",
                      {"kind": "event", "level": "error", "message": "node 1 exited with code 137", "at": at})
    item = page.locator(".timeline .timeline-item")
    item.wait_for()
    assert item.get_attribute("class") == "timeline-item level-error"
    assert item.locator(".timeline-message").inner_text() == "node 1 exited with code 137"
    assert item.locator("time").inner_text() == "2026-03-01 08:15:30"
    assert page.locator(".timeline-empty").count() == 0
    # The same message made the refresh fragment re-fetch its URL and swap the answer in.
    page.wait_for_function("() => document.querySelector('#counter').textContent.trim() === 'refreshed 1 times'")


def test_live_socket_stops_on_refusal(asgi_server, signed_in, outsider):
    page = signed_in
    page.goto(asgi_server.url + "/")
    # Point the overview's live list at a workspace alice does not belong to.
    page.evaluate(f"""() => {{
        const el = document.createElement('div');
        el.id = 'foreign';
        el.dataset.liveSource = 'accounts.workspace';
        el.dataset.livePk = '{outsider.default_workspace.pk}';
        document.body.appendChild(el);
        htmx.process(el);
        document.dispatchEvent(new CustomEvent('htmx:load', {{detail: {{elt: el}}}}));
    }}""")
    page.wait_for_selector('#foreign[data-live-state="denied"]', state="attached")


def test_overview_activity_updates_live(asgi_server, signed_in, owner, workspace):
    page = signed_in
    page.goto(asgi_server.url + "/")
    page.wait_for_selector('#activity[data-live-state="open"]')
    assert "flowers-v2" not in page.locator("#activity").inner_text()
    make_audit_entry(actor=owner, workspace=workspace, action="dataset:create", object_repr="flowers-v2")
    page.locator("#activity .timeline-item").filter(has_text="flowers-v2").wait_for()
    assert page.locator(".live-dot").evaluate("el => getComputedStyle(el).color") == "rgb(6, 118, 71)"


def test_audit_log_search_and_sort_swap_only_the_results(asgi_server, signed_in, owner, workspace):
    now = timezone.now()
    for i, name in enumerate(["alpha-bucket", "beta-dataset", "gamma-service"]):
        make_audit_entry(actor=owner, workspace=workspace, action=f"thing:{name[:4]}", object_repr=name,
                         at=now - dt.timedelta(minutes=i))
    page = signed_in
    page.goto(asgi_server.url + "/audit/")
    page.evaluate("window.__sameDocument = true")
    page.locator("#audit-q").fill("beta")
    page.wait_for_function("() => !document.querySelector('#audit-results').textContent.includes('alpha-bucket')")
    assert page.locator("#audit-results tbody tr").count() == 1
    assert re.search(r"[?&]q=beta", page.url)
    assert page.evaluate("window.__sameDocument") is True  # no full page load
    assert page.locator("#audit-q").evaluate("el => el === document.activeElement")
    page.locator("#audit-q").fill("")
    page.wait_for_function("() => document.querySelectorAll('#audit-results tbody tr').length === 4")
    page.locator("#audit-results th a", has_text="Object").click()
    page.wait_for_selector('#audit-results th[aria-sort="ascending"]')
    first = page.locator("#audit-results tbody tr").first.locator("td").nth(3).inner_text()
    assert first.startswith("alice")  # user:create (from the cast) names the user: "alice" < "alpha-bucket"
    assert "sort=object_repr" in page.url
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.urls("tests.core.components_urls")
def test_in_page_tabs_switch_by_click_and_arrow_keys(asgi_server, signed_in, thing_source):
    page = signed_in
    page.goto(asgi_server.url + "/_components/")
    visible = "() => [...document.querySelectorAll('[role=tabpanel]')].filter(p => !p.hidden).map(p => p.id)"
    assert page.evaluate(visible) == ["panel-logs"]
    page.get_by_role("tab", name="Metrics").click()
    assert page.evaluate(visible) == ["panel-metrics"]
    assert page.get_by_role("tab", name="Metrics").get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(visible) == ["panel-events"]
    page.keyboard.press("ArrowRight")  # wraps around
    assert page.evaluate(visible) == ["panel-logs"]
    assert page.evaluate("() => document.activeElement.id") == "tab-logs"


def test_sidebar_collapses_on_narrow_screens(asgi_server, signed_in):
    page = signed_in
    page.set_viewport_size({"width": 600, "height": 800})
    page.goto(asgi_server.url + "/")
    sidebar = page.locator("#sidebar")
    assert sidebar.bounding_box()["x"] < 0  # off screen
    page.locator("[data-sidebar-toggle]").click()
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    assert page.locator("[data-sidebar-toggle]").get_attribute("aria-expanded") == "true"
    page.mouse.click(580, 400)  # the scrim beside the open sidebar
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().right <= 0")


def test_api_docs_render_under_the_content_security_policy(asgi_server, signed_in):
    page = signed_in
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(asgi_server.url + "/api/docs/")
    page.locator(".swagger-ui .info .title").filter(has_text="Atelier API").wait_for()
    page.locator(".opblock-summary-path", has_text="/api/v1/audit/").first.wait_for()
    assert violations == []


def test_audit_log_page_size_and_pages(asgi_server, signed_in, owner, workspace):
    for i in range(30):
        make_audit_entry(actor=owner, workspace=workspace, action="bucket:update", object_repr=f"bucket-{i:02d}")
    page = signed_in
    page.goto(asgi_server.url + "/audit/")
    summary = page.locator("#audit-results .pagination-summary")
    assert summary.inner_text() == "1–31 of 31"
    page.locator("#audit-results select[name=page_size]").select_option("10")
    page.wait_for_function("() => document.querySelectorAll('#audit-results tbody tr').length === 10")
    assert summary.inner_text() == "1–10 of 31"
    page.locator("#audit-results a[rel=next]").click()
    page.wait_for_function(
        "() => document.querySelector('#audit-results .pagination-summary').textContent.trim() === '11–20 of 31'")
    assert "page=2" in page.url and "page_size=10" in page.url
    # A new search starts again at page 1 and keeps the page size.
    page.locator("#audit-q").fill("bucket-0")
    page.wait_for_function(
        "() => document.querySelector('#audit-results .pagination-summary').textContent.trim() === '1–10 of 10'")
    assert "page=" not in page.url.replace("page_size", "")


def test_audit_entry_opens_in_a_modal_loaded_on_demand(asgi_server, signed_in, owner, workspace):
    make_audit_entry(actor=owner, workspace=workspace, action="trainjob:stop", object_repr="resnet50-flowers",
                     detail={"reason": "user request"})
    page = signed_in
    page.goto(asgi_server.url + "/audit/")
    row = page.locator("#audit-results tbody tr").filter(has_text="trainjob:stop")
    row.get_by_role("link", name="Details").click()
    dialog = page.locator("dialog#audit-entry")
    dialog.locator("[data-testid=audit-entry]").wait_for()
    assert page.url == asgi_server.url + "/audit/"  # the link's href was not followed
    assert '"reason": "user request"' in dialog.locator("pre").inner_text()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
