"""The run page and the monitoring page in a real browser, fed by a real worker.

Pages run under the production Content-Security-Policy (plotly.js included), so waits use
function predicates and any console error fails the test.
"""
from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runtime.models import NodeSample

from .conftest import submit, wait_status
from .factories import make_worker

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TRAIN = """
import sys, time
from atelier import log_metric
for step in range(3):
    print(f"epoch {step} <b>not bold</b>", flush=True)
    log_metric("loss", 1.0 / (step + 1), step=step)
sys.stdin.close()
time.sleep(3)
for step in range(3, 6):
    print(f"epoch {step}", flush=True)
    log_metric("loss", 1.0 / (step + 1), step=step)
"""


@pytest.fixture
def console_errors(page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_run_page_streams_logs_and_metrics_live(asgi_server, engine_worker, page, login, owner, workspace,
                                                cpu_flavor, local_pool, console_errors):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", TRAIN], name="tiny training")
    login(page, owner, asgi_server.url)
    wait_status(run, "running")

    page.goto(f"{asgi_server.url}/resources/runs/{run.pk}/")
    lines = page.locator("[data-log-lines] .log-text")
    page.wait_for_function("() => document.querySelectorAll('[data-log-lines] .log-line').length >= 6")
    # Markup in the output is shown as text, never interpreted.
    assert lines.first.inner_text() == "epoch 0 <b>not bold</b>"
    assert page.locator("[data-log-lines] b").count() == 0

    # The rest arrives live, with the final status, and the loss chart grows to six points.
    page.wait_for_function(
        "() => document.querySelector('[data-run-status] .badge').dataset.status === 'succeeded'", timeout=20000)
    page.wait_for_function("() => [...document.querySelectorAll('[data-log-lines] .log-text')]"
                           ".some((el) => el.textContent === 'epoch 5')")
    page.wait_for_function(
        "() => { const c = document.querySelector('[data-metric=\"loss\"]');"
        " return c && c.data && c.data[0].x.length === 6; }")
    assert page.locator("[data-run-status] .badge").inner_text() == "Succeeded"
    assert page.locator("[data-run-reason]").inner_text() == "Exited with code 0."
    assert page.locator("[data-metric='loss'] .main-svg").count() >= 1
    numbers = page.locator("[data-log-lines] .log-number").all_inner_texts()
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)]

    # Search highlights matches and jumps between them; following stops while searching.
    page.locator("[data-log-search]").fill("epoch 4")
    assert page.locator("[data-log-matches]").inner_text() == "1 of 1"
    assert page.locator(".log-line.current .log-text").inner_text() == "epoch 4"
    assert not page.locator("[data-log-follow]").is_checked()
    page.locator("[data-log-search]").fill("epoch")
    page.locator("[data-log-next]").click()
    assert page.locator("[data-log-matches]").inner_text() == "2 of 6"

    download = page.get_by_test_id("log-download")
    assert download.get_attribute("href") == f"/resources/runs/{run.pk}/log/"
    assert console_errors == []


def test_monitoring_page_draws_a_line_per_node(asgi_server, page, login, owner, local_pool, console_errors):
    now = timezone.now()
    for name in ("w1@lab", "w2@lab"):
        node = make_worker(pools=[local_pool], hostname=name)
        NodeSample.objects.bulk_create([NodeSample(node=node, at=now - timedelta(minutes=m), cpu_percent=20.0 + m,
                                                   memory_percent=40.0) for m in range(5)])
    login(page, owner, asgi_server.url)

    page.goto(f"{asgi_server.url}/resources/monitoring/")

    page.wait_for_function("() => document.querySelectorAll('[data-node-charts] .main-svg').length >= 4")
    legend = page.locator("[data-chart='cpu_percent'] .legendtext").all_text_contents()
    assert legend == ["w1@lab", "w2@lab"]
    assert console_errors == []
