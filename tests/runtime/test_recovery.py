"""A worker killed with SIGKILL mid-run: the beat sweep marks the run lost and restarts it elsewhere."""
from __future__ import annotations

import sys
import time

import pytest

from apps.runtime.choices import NodeStatus, RunStatus
from apps.runtime.logstream import log_read
from apps.runtime.models import WorkerNode

from .conftest import events_of, process_alive, submit, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# First attempt sleeps (and gets its worker killed); the restart sees ATELIER_RESTART_COUNT=1 and finishes.
RESUMABLE = """
import os, time
count = os.environ["ATELIER_RESTART_COUNT"]
print(f"attempt with restart count {count}", flush=True)
if count == "0":
    time.sleep(600)
"""


def test_kill_9_of_the_worker_marks_the_run_lost_then_restarts_it(engine_worker, beat, owner, workspace, cpu_flavor,
                                                                   local_pool):
    doomed = engine_worker(name="doomed", queues=("pool.local",))
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", RESUMABLE], max_restarts=1)
    run = wait_status(run, RunStatus.RUNNING)
    first_pid = run.pid
    assert run.worker.hostname.startswith("doomed@")
    engine_worker(name="survivor")  # serves pool.local and the control queue the sweep goes to

    killed_at = time.monotonic()
    doomed.kill()

    wait_for(lambda: "Lost: " in " ".join(events_of(run)), timeout=60, message="the run to be marked lost")
    assert time.monotonic() - killed_at < 60
    run = wait_status(run, RunStatus.SUCCEEDED, timeout=60)
    assert run.attempt == 2 and run.auto_restarts == 1 and run.restart_count == 1
    assert run.worker.hostname.startswith("survivor@")
    messages = events_of(run)
    lost = next(m for m in messages if m.startswith("Lost: "))
    assert lost.startswith("Lost: doomed@") and "stopped sending heartbeats" in lost
    assert "Restarted (1/1) after lost worker." in messages
    assert not process_alive(first_pid)  # the orphan of the first attempt died with its supervisor
    lines = log_read(run, after=0).lines
    assert lines[0] == "attempt with restart count 0"
    assert "attempt with restart count 1" in lines
    wait_for(lambda: WorkerNode.objects.get(hostname__startswith="doomed@").status == NodeStatus.OFFLINE,
             timeout=30, message="the killed worker to show offline")
