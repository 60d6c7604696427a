"""Stopping runs, the SIGKILL after the grace period, the maximum runtime and hang detection (real worker)."""
from __future__ import annotations

import re
import sys

import pytest

from apps.runtime.choices import HangAction, RunStatus
from apps.runtime.services import REASON_MAX_RUNTIME, run_stop

from .conftest import events_of, process_alive, submit, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLEEPER = "import time; print('sleeping', flush=True); time.sleep(600)"
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, lambda *a: print('ignoring SIGTERM', flush=True))
print('sleeping', flush=True)
while True:
    time.sleep(0.1)
"""


def test_stop_of_a_sleeping_run_terminates_its_process_group(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SLEEPER])
    run = wait_status(run, RunStatus.RUNNING)
    pid = run.pid
    assert process_alive(pid)

    run_stop(user=owner, run=run)

    run = wait_status(run, {RunStatus.STOPPED, RunStatus.FAILED}, timeout=10)
    assert run.status == RunStatus.STOPPED
    assert run.exit_code == 143
    assert run.status_reason == "Stopped by alice."
    assert not process_alive(pid)
    ended = re.sub(r"\d+ (秒|s)\b", r"N \1", events_of(run)[-2])
    assert ended == "[worker-0] [耗时: N 秒] Process ended, exit code 143 (took N s)"
    assert events_of(run)[-3::2] == ["Stopped by alice.", "Stopped. Exit code 143: terminated (SIGTERM)."]


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(engine_worker, owner, workspace, cpu_flavor,
                                                                     local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", STUBBORN], stop_grace_seconds=2)
    run = wait_status(run, RunStatus.RUNNING)
    wait_for(lambda: "sleeping" in _log(run), message="the script to start")

    run_stop(user=owner, run=run)

    run = wait_status(run, {RunStatus.STOPPED}, timeout=15)
    assert run.exit_code == 137
    assert "ignoring SIGTERM" in _log(run)
    assert "Still running 2 s after SIGTERM; sending SIGKILL." in events_of(run)


def test_max_runtime_fails_the_run_without_restarting_it(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SLEEPER], max_runtime_seconds=1,
                 max_restarts=2)

    run = wait_status(run, {RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.STOPPED}, timeout=20)

    assert run.status == RunStatus.FAILED
    assert run.status_reason == REASON_MAX_RUNTIME
    assert run.exit_code == 143
    assert run.attempt == 1 and run.auto_restarts == 0
    assert "Exceeded its maximum runtime of 1s; stopping it." in events_of(run)


HOLDS_THE_CLOCK_FOREVER = """
import time
print('ATELIER_EVENT {"message": "Preparing", "runtime_clock": "hold"}', flush=True)
time.sleep(600)
"""


def test_a_clock_hold_pauses_the_max_runtime_for_at_most_the_limit(engine_worker, owner, workspace, cpu_flavor,
                                                                   local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", HOLDS_THE_CLOCK_FOREVER],
                 max_runtime_seconds=2)

    run = wait_status(run, {RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.STOPPED}, timeout=30)

    assert run.status == RunStatus.FAILED and run.status_reason == REASON_MAX_RUNTIME
    ran = (run.finished_at - run.started_at).total_seconds()
    assert 4 <= ran < 10  # held for the 2 s limit, then counted from the start: stopped after about 4 s
    assert "[atelier] Preparing" in _log(run)


def test_a_silent_idle_run_is_reported_hung_and_stopped(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", "import time; time.sleep(600)"],
                 hang_seconds=2, hang_action=HangAction.STOP)

    run = wait_status(run, {RunStatus.STOPPED, RunStatus.FAILED}, timeout=30)

    assert run.status == RunStatus.STOPPED
    assert run.status_reason == "Stopped: suspected hang."
    assert run.hang_detected_at is not None
    assert "Suspected hang: no output and almost no CPU use for 2 s. Stopping it, as configured." in events_of(run)


def test_stop_of_a_queued_run_removes_it_from_the_queue(owner, workspace, cpu_flavor, local_pool, fast_engine):
    # No worker serves the pool: the run waits, then is stopped without ever starting.
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", "print(1)"])
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.status_reason == "No online worker serves pool local."

    run_stop(user=owner, run=run)

    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED
    assert run.started_at is None
    assert events_of(run)[-1] == "Stopped by alice. Removed from the queue."


def _log(run) -> str:
    from apps.runtime.logstream import log_read

    return "\n".join(log_read(run, after=0).lines)
