"""Multi-node runs on two real worker processes: ranks, the shared master, and failure of one node."""
from __future__ import annotations

import json
import sys

import pytest

from apps.runtime.choices import RunStatus
from apps.runtime.logstream import log_read
from apps.runtime.models import Run

from .conftest import events_of, submit, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOW_ENV = """
import json, os
names = ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "NODE_RANK", "LOCAL_RANK", "MA_NUM_HOSTS",
         "VC_TASK_INDEX", "VC_WORKER_NUM", "VC_WORKER_HOSTS", "MA_NUM_GPUS", "MA_CURRENT_IP"]
print(json.dumps({n: os.environ.get(n) for n in names}), flush=True)
"""


def _env_of(run) -> dict:
    return json.loads(log_read(run, after=0).lines[0])


def test_two_node_run_gets_distinct_ranks_and_one_master(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker(name="node-a")
    engine_worker(name="node-b")

    rank0 = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SHOW_ENV], node_count=2)
    ranks = list(Run.objects.filter(group=rank0.group).order_by("node_rank"))
    finished = [wait_status(r, {RunStatus.SUCCEEDED, RunStatus.FAILED}) for r in ranks]

    assert [(r.status, r.status_reason) for r in finished] == [(RunStatus.SUCCEEDED, "Exited with code 0.")] * 2
    assert len({r.worker_id for r in finished}) == 2  # one node per worker
    env0, env1 = _env_of(finished[0]), _env_of(finished[1])
    master_port = finished[0].master_port
    assert master_port
    common = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(master_port), "WORLD_SIZE": "2", "LOCAL_RANK": "0",
              "MA_NUM_HOSTS": "2", "VC_WORKER_NUM": "2", "VC_WORKER_HOSTS": "127.0.0.1,127.0.0.1",
              "MA_NUM_GPUS": "0", "MA_CURRENT_IP": "127.0.0.1"}
    assert env0 == common | {"RANK": "0", "NODE_RANK": "0", "VC_TASK_INDEX": "0"}
    assert env1 == common | {"RANK": "1", "NODE_RANK": "1", "VC_TASK_INDEX": "1"}
    assert events_of(finished[1])[0] == "[worker-1] Queued in pool local with flavor cpu-1c-1g (1 CPU, 1 GiB)."


FAIL_ON_RANK_1 = """
import os, sys, time
print("rank", os.environ["RANK"], flush=True)
if os.environ["RANK"] == "1":
    time.sleep(0.5)
    sys.exit(3)
time.sleep(600)
"""


def test_one_node_failing_stops_the_others(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker(name="node-a")
    engine_worker(name="node-b")

    rank0 = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", FAIL_ON_RANK_1], node_count=2)
    rank1 = Run.objects.get(group=rank0.group, node_rank=1)

    rank1 = wait_status(rank1, {RunStatus.FAILED})
    rank0 = wait_status(rank0, {RunStatus.STOPPED}, timeout=15)

    assert rank1.exit_code == 3
    assert rank0.status_reason == "Node 1 ended (Exited with exit code 3 (error reported by the program)); " \
                                  "stopping the others."
    assert rank0.exit_code == 143
