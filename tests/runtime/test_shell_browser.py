"""The Shell tab of a running two-node training job in a real browser: type into xterm.js, read
the output, the idle notice, Reconnect and the node selector (workers as in test_shell.py)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.harness import ARTIFACTS
from apps.training.choices import TrainingStatus
from tests.training.conftest import bucket, training_worker, wait_job  # noqa: F401

from .test_shell import IDLE_SECONDS, shell_job  # noqa: F401

pytestmark = [pytest.mark.worker, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_shell_tab_types_into_the_node_and_reconnects_after_idle(asgi_server, shell_job, owner, page,  # noqa: F811
                                                                  login):
    from django.conf import settings

    job, runs = shell_job(nodes=2)
    run = runs[0]
    login(page, owner, asgi_server.url)
    page.goto(asgi_server.url + reverse("training:detail", args=[job.pk]))
    page.get_by_role("link", name="Shell", exact=True).click()
    panel = page.get_by_test_id("run-shell")
    state = page.get_by_test_id("shell-state")
    state.filter(has_text="Connected as").wait_for()
    assert page.get_by_test_id("shell-node").locator("option").all_inner_texts() == ["worker-0", "worker-1"]

    rows = page.locator(".xterm-rows")
    rows.filter(has_text="shell-code").wait_for()  # the prompt (it shows the directory): bash is ready
    page.locator(".xterm").click()
    page.keyboard.type('echo "dir=$MA_JOB_DIR"; pwd')
    page.keyboard.press("Enter")
    job_dir = f"{settings.ATELIER_RUNTIME_WORK_ROOT}/run-{run.pk}/user-job-dir"
    rows.filter(has_text=f"dir={job_dir}").wait_for()
    rows.filter(has_text=f"{job_dir}/shell-code").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "shell-training-tab.png"), full_page=True)

    # No keystroke for IDLE_SECONDS: the session ends with a notice and the Reconnect button.
    notice = page.get_by_test_id("shell-notice")
    notice.filter(has_text=f"Disconnected after {IDLE_SECONDS} s without input.").wait_for(
        timeout=(IDLE_SECONDS + 8) * 1000)
    assert panel.get_attribute("data-state") == "idle"
    assert "Reconnect to open a new shell on worker-0." in notice.inner_text()
    page.screenshot(path=str(ARTIFACTS / "shell-training-idle.png"), full_page=True)
    page.get_by_test_id("shell-reconnect").click()
    state.filter(has_text="Connected as").wait_for()
    assert notice.is_hidden()
    page.locator(".xterm").click()
    page.keyboard.type("echo again-$RANK")
    page.keyboard.press("Enter")
    rows.filter(has_text="again-0").wait_for()

    # The node selector opens a new shell on the other node (its own worker process).
    page.get_by_test_id("shell-node").select_option(label="worker-1")
    rows.filter(has_text=f"run-{runs[1].pk}").wait_for()
    assert "again-0" not in rows.inner_text()  # a fresh terminal
    page.locator(".xterm").click()
    page.keyboard.type("echo node-$RANK-of-$WORLD_SIZE")
    page.keyboard.press("Enter")
    rows.filter(has_text="node-1-of-2").wait_for()

    # Terminating the job ends the open shell; the page says so and Reconnect is offered.
    from apps.training.services import training_job_stop

    training_job_stop(user=owner, job=job)
    notice.filter(has_text="The run ended.").wait_for()
    assert page.get_by_test_id("shell-state").inner_text() == "Session ended"
    wait_job(job, TrainingStatus.TERMINATED, timeout=30)  # both nodes ended: the workers stop at once
