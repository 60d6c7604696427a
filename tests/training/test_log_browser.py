"""The job page's log viewer in a real browser: tail of a large log with the full-log link, the system-logs
checkbox, keyword search with highlight and next/prev, switching nodes, a share link opened signed out,
and the zip of all nodes. Screenshots go to $ATELIER_SCREENSHOTS (default: the system temp dir)."""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .test_log_views import _job_with_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


def _node0_log() -> str:
    lines = ["[atelier] Environment pre-check running", "[atelier][INFO][detect] code: 0, message: ok, item: dns"]
    lines += [f"epoch {i // 300} step {i} loss {1 / (i + 1):.4f}" for i in range(2100)]
    lines += ["[atelier] Process exited with exit code 0 (success)."]
    return "\n".join(lines) + "\n"


def test_log_viewer_tail_search_system_lines_nodes_share_and_zip(page, browser, asgi_server, login, owner, workspace,
                                                                  bucket, local_pool, cpu_flavor):
    job, _runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor, name="viewer",
                                 logs={0: _node0_log(), 1: "[atelier] node 1 platform line\nnode one says hello\n"})
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/?tab=logs")
    viewer = page.locator("[data-testid=log-viewer]")
    view = page.locator("[data-testid=log-lines]")

    # Tail-loading: the latest 2000 of 2103 lines, with the full log one click away.
    expect(view).to_contain_text("[atelier] Process exited with exit code 0 (success).")
    expect(viewer.locator("[data-log-state]")).to_contain_text("showing the latest 2000 of 2103 lines")
    assert view.locator(".log-line").count() == 2000
    full = viewer.locator("[data-node-links='0'] [data-full-log]")
    assert full.get_attribute("href") == f"/training/jobs/{job.pk}/nodes/0/log?view=full"
    full_text = page.request.get(f"{asgi_server.url}{full.get_attribute('href')}").text()
    assert full_text.startswith("[atelier] Environment pre-check running\n") and len(full_text.splitlines()) == 2103

    # System logs: unchecking hides the platform lines, checking shows them again.
    platform = view.locator(".log-line.system").last
    expect(platform).to_be_visible()
    viewer.get_by_label("System logs").uncheck()
    expect(platform).to_be_hidden()
    expect(view.locator(".log-line:not(.system)").last).to_be_visible()
    viewer.get_by_label("System logs").check()
    expect(platform).to_be_visible()

    # Search: every loaded match is highlighted; next/prev walk through them.
    viewer.get_by_label("Search the log").fill("step 2090")
    expect(viewer.locator("[data-search-count]")).to_have_text("1 match")
    viewer.get_by_label("Search the log").fill("epoch 6")
    expect(viewer.locator("[data-search-count]")).to_have_text("300 matches")
    expect(view.locator("mark")).to_have_count(300)
    current = view.locator(".log-line.current")
    expect(current).to_have_text("epoch 6 step 1800 loss 0.0006\n")
    viewer.locator("[data-search-next]").click()
    expect(current).to_have_text("epoch 6 step 1801 loss 0.0006\n")
    viewer.locator("[data-search-prev]").click()
    viewer.locator("[data-search-prev]").click()
    expect(current).to_have_text("epoch 6 step 2099 loss 0.0005\n")
    expect(current.locator("mark")).to_have_text("epoch 6")
    page.screenshot(path=str(SHOTS / "training-log-viewer.png"), full_page=True)

    # Another node: its own log and its own links.
    viewer.locator("[data-node-select]").select_option("1")
    expect(view).to_contain_text("node one says hello")
    expect(view).not_to_contain_text("epoch 6")
    expect(viewer.locator("[data-node-links='1']")).to_be_visible()
    expect(viewer.locator("[data-node-links='0']")).to_be_hidden()

    # Share link for worker-1: opens without signing in, that log only.
    viewer.locator("[data-node-links='1'] [data-share-url]").click()
    link = viewer.locator("[data-share-link]")
    expect(link).not_to_have_value("")
    expect(viewer.locator("[data-share-note]")).to_contain_text("worker-1: opens without signing in for 60 min")
    url = link.input_value()
    assert "/training/shared-logs/" in url
    page.screenshot(path=str(SHOTS / "training-log-share.png"), full_page=False)
    stranger = browser.new_context()
    try:
        shared = stranger.request.get(url)
        assert shared.status == 200
        assert shared.text() == "[atelier] node 1 platform line\nnode one says hello\n"
        assert stranger.request.get(f"{asgi_server.url}/training/jobs/{job.pk}/nodes/0/log",
                                    max_redirects=0).status == 302
    finally:
        stranger.close()

    # All nodes as one zip.
    with page.expect_download() as caught:
        viewer.locator("[data-download-all]").click()
    download = caught.value
    assert download.suggested_filename == "viewer-logs.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as zf:
        assert zf.namelist() == ["viewer-worker-0.log", "viewer-worker-1.log"]
        assert len(zf.read("viewer-worker-0.log").splitlines()) == 2103
