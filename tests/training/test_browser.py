"""The training pages in a real browser: the create form's editors and refusals, then the job page
streaming the node's log and drawing the metric curve live. Screenshots go to $ATELIER_SCREENSHOTS
(default: the system temp dir)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.training.models import TrainingJob

from .conftest import put, put_tree

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))

SCRIPT = '''
import argparse, time
from atelier import log_metric
parser = argparse.ArgumentParser(); parser.add_argument("--lr", type=float); parser.add_argument("--data_url")
args, _ = parser.parse_known_args()
print(f"training with lr={args.lr}", flush=True)
for step in range(6):
    print(f"step {step}", flush=True)
    log_metric("loss", 1.0 / (step + 1), step=step)
    time.sleep(0.5)
print("finished", flush=True)
'''


def test_create_form_then_live_log_and_metric_curve(page, asgi_server, login, training_worker, owner, workspace,
                                                    bucket, local_pool, cpu_flavor):
    training_worker()
    put_tree("storage://train-data/code", {"train.py": SCRIPT})
    put("storage://train-data/input/a.txt", "x")
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/jobs/new")

    page.fill("input[name=name]", "browser-job")
    page.check("input[name=experiment][value=none]")
    page.select_option("select[name=engine]", "python")
    page.fill("input[name=code_dir]", "storage://train-data/code")
    page.fill("input[name=boot_file]", "train.py")
    page.click("[data-testid=inputs-editor] [data-add=inputs]")
    row = page.locator("[data-testid=inputs-editor] .editor-row").first
    row.locator("[data-role=name]").fill("data_url")
    row.locator("[data-role=uri]").fill("storage://train-data/input")
    page.click("[data-testid=hp-editor] [data-add=hyperparameter]")
    hp = page.locator("[data-testid=hp-editor] .editor-row").first
    hp.locator("[data-role=name]").fill("lr")
    hp.locator("[data-role=value]").fill("0.05")
    page.select_option("select[name=pool]", label="local")
    page.select_option("select[name=flavor]", value=str(cpu_flavor.pk))
    # A bad value first: the form comes back with the rule, keeping what was typed.
    page.fill("input[name=node_count]", "5")
    page.screenshot(path=str(SHOTS / "training-create-form.png"), full_page=True)
    # Submit goes through a confirmation summary (item 16); Cancel keeps the form as it is.
    page.click("[data-testid=submit-job]")
    summary = page.locator("[data-testid=confirm-dialog]")
    expect(summary.locator("[data-testid=confirm-details]")).to_contain_text("browser-job")
    expect(summary).to_contain_text("--lr=0.05")
    expect(summary).to_contain_text("data_url ← storage://train-data/input")
    page.screenshot(path=str(SHOTS / "training-create-summary.png"), full_page=True)
    summary.locator("[data-modal-close]").click()
    assert TrainingJob.objects.count() == 0
    page.click("[data-testid=submit-job]")
    summary.get_by_role("button", name="Submit").click()
    expect(page.locator("[data-field=node_count] .field-error")).to_contain_text("5 nodes requested, but pool local")
    expect(page.locator("[data-testid=inputs-editor] [data-role=uri]").first).to_have_value("storage://train-data/input")
    assert TrainingJob.objects.count() == 0
    page.fill("input[name=node_count]", "1")
    page.click("[data-testid=submit-job]")
    summary.get_by_role("button", name="Submit").click()

    expect(page.locator("h1")).to_have_text("browser-job")
    job = TrainingJob.objects.get(name="browser-job")
    assert job.hyperparameters == [{"name": "lr", "type": "String", "value": "0.05"}]
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/?tab=logs")
    log = page.locator("[data-testid=log-lines]")
    expect(log).to_contain_text("training with lr=0.05", timeout=60000)
    expect(log).to_contain_text("finished", timeout=60000)
    expect(page.locator("[data-testid=live-charts] .chart[data-metric=loss]")).to_be_visible()
    points = page.locator("[data-testid=live-charts] .chart[data-metric=loss]").evaluate("el => el.data[0].y.length")
    assert points >= 1
    page.screenshot(path=str(SHOTS / "training-job-logs.png"), full_page=True)
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/?tab=metrics")
    expect(page.locator("[data-testid=metric-charts] .chart[data-metric=loss] .main-svg").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "training-job-metrics.png"), full_page=True)
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/")
    expect(page.locator("[data-testid=status-card]")).to_have_attribute("data-status", "completed", timeout=30000)
    page.screenshot(path=str(SHOTS / "training-job-detail.png"), full_page=True)
