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

    # Events tab: per-node steps with durations; "Refresh" brings new ones without reloading the page.
    from apps.core.services import event_add

    event_add(obj=_runs[0], message="[worker-0] [耗时: 2 秒] Pre-check done (took 2 s)")
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/?tab=events")
    node_events = page.locator("[data-testid=node-events]")
    expect(node_events).to_contain_text("[worker-0] [耗时: 2 秒] Pre-check done (took 2 s)")
    event_add(obj=_runs[1], message="[worker-1] [耗时: 5 秒] Python dependencies installed, file: requirements.txt "
                                    "(took 5 s)")
    page.evaluate("window.refreshMarker = 1")
    page.locator("[data-testid=node-events]").get_by_role("link", name="Refresh").click()
    expect(page.locator("[data-testid=node-events]")).to_contain_text("[worker-1] [耗时: 5 秒] Python dependencies")
    assert page.evaluate("window.refreshMarker") == 1  # swapped in place, not reloaded
    page.screenshot(path=str(SHOTS / "training-events.png"), full_page=True)


def test_resource_charts_refresh_keep_legend_toggles_and_recovery_tab(page, asgi_server, login, owner, workspace,
                                                                       bucket, local_pool, cpu_flavor):
    from datetime import timedelta

    from django.utils import timezone

    from apps.runtime.choices import RunStatus
    from apps.runtime.models import Run, RunSample
    from apps.runtime.services import run_transition
    from apps.training.models import TrainingJob

    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor, name="charts")
    now = timezone.now()
    for rank, run in enumerate(runs):
        for i in range(5):
            RunSample.objects.create(run=run, at=now - timedelta(seconds=50 - 10 * i), cpu_percent=20.0 * i + rank,
                                     memory_percent=5.0 + i, memory_mb=100.0 + i)
    login(page, owner, asgi_server.url)
    page.clock.install()
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/?tab=resources")
    chart = page.locator(".chart[data-node-rank='0']")
    expect(chart.locator(".legend .traces")).to_have_count(2)  # cpuUsage, memUsage
    expect(page.locator("[data-sample-count='0']")).to_have_text("(5 samples)")

    # Hide memUsage, then a new sample arrives: the refresh redraws and the series stays hidden.
    chart.locator(".legend .traces", has_text="memUsage").click()
    page.clock.run_for(500)  # plotly waits out its double-click window before toggling
    assert page.evaluate("document.querySelector(\".chart[data-node-rank='0']\").data[1].visible") == "legendonly"
    RunSample.objects.create(run=runs[0], at=timezone.now(), cpu_percent=99.0, memory_percent=9.0, memory_mb=120)
    page.clock.run_for(10_500)
    expect(page.locator("[data-sample-count='0']")).to_have_text("(6 samples)")
    assert page.evaluate("document.querySelector(\".chart[data-node-rank='0']\").data[0].y.slice(-1)[0]") == 99.0
    assert page.evaluate("document.querySelector(\".chart[data-node-rank='0']\").data[1].visible") == "legendonly"
    page.screenshot(path=str(SHOTS / "training-resources.png"), full_page=True)

    # A lost worker and a restart: the fault-recovery tab appears with both attempts.
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/?tab=overview")
    expect(page.locator("nav.tabs")).not_to_contain_text("Fault recovery")
    for run in runs:
        Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, host="127.0.0.1", started_at=now)
        run.refresh_from_db()
        run_transition(run, RunStatus.LOST if run.node_rank == 0 else RunStatus.STOPPED,
                       reason="Lost: w0@test stopped sending heartbeats (35 s ago)." if run.node_rank == 0
                       else "Node 0 ended; stopping the others.")
    Run.objects.filter(group=runs[0].group).update(status=RunStatus.RUNNING, attempt=2, started_at=timezone.now(),
                                                   finished_at=None)
    # (The hand-made ending above made the job Abnormal; the engine's auto-restart keeps it Running.)
    TrainingJob.objects.filter(pk=job.pk).update(restart_count=1, auto_restart=2, status="running", failure={},
                                                 status_reason="", finished_at=None)
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/")
    page.locator("nav.tabs").get_by_text("Fault recovery").click()
    table = page.locator("[data-testid=fault-recovery] table")
    expect(table.locator("tr[data-attempt='2']")).to_contain_text("Job reschedule")
    expect(table.locator("tr[data-attempt='2']")).to_contain_text("Worker lost: w0@test stopped sending")
    expect(table.locator("tr[data-attempt='2']")).to_contain_text("running (current)")
    expect(table.locator("tr[data-attempt='1']")).to_contain_text("lost")
    page.screenshot(path=str(SHOTS / "training-fault-recovery.png"), full_page=True)
