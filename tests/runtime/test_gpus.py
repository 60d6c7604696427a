"""GPU leases on a worker that declares GPUs: disjoint CUDA_VISIBLE_DEVICES, waiting when all are busy."""
from __future__ import annotations

import sys

import pytest

from apps.runtime.choices import RunStatus
from apps.runtime.logstream import log_read
from apps.runtime.models import GpuLease

from .conftest import submit, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOW_GPUS = """
import os, time
print("CUDA_VISIBLE_DEVICES=" + os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(float(os.environ["HOLD"]))
"""


def test_runs_on_a_two_gpu_worker_get_disjoint_devices_and_a_third_waits(engine_worker, owner, workspace, gpu_flavor,
                                                                         local_pool):
    engine_worker(name="gpu-box", concurrency=3, env={"ATELIER_WORKER_GPUS": "2"})
    cmd = [sys.executable, "-c", SHOW_GPUS]
    first = submit(owner, workspace, gpu_flavor, local_pool, cmd, env={"HOLD": "3"})
    second = submit(owner, workspace, gpu_flavor, local_pool, cmd, env={"HOLD": "3"})
    first, second = wait_status(first, RunStatus.RUNNING), wait_status(second, RunStatus.RUNNING)

    third = submit(owner, workspace, gpu_flavor, local_pool, cmd, env={"HOLD": "0"})
    third.refresh_from_db()
    assert third.status == RunStatus.QUEUED
    assert third.status_reason == "Waiting for 1 GPU to free up on a worker of pool local."
    assert sorted(GpuLease.objects.values_list("index", flat=True)) == [0, 1]

    runs = [wait_status(r, RunStatus.SUCCEEDED, timeout=30) for r in (first, second, third)]
    devices = [log_read(r, after=0).lines[0] for r in runs]
    assert sorted(devices[:2]) == ["CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=1"]
    assert devices[2] in {"CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=1"}
    assert runs[0].gpu_indices != runs[1].gpu_indices
    wait_for(lambda: not GpuLease.objects.exists(), timeout=5, message="leases to be released")
