"""A run's GPU samples cover only the GPUs leased to it (nvidia-smi --id), not the whole machine."""
from __future__ import annotations

import os
import re
import stat
import sys

import pytest

from apps.runtime.scheduling import gpus_sample

pytestmark = pytest.mark.django_db

# Answers like the real tool on a two-GPU machine, honouring --id=<list>.
FAKE_SMI = """#!/bin/sh
ids=all
for arg in "$@"; do case "$arg" in --id=*) ids="${arg#--id=}" ;; esac; done
case "$ids" in
  all) printf '30, 1024, 143771\\n70, 4096, 143771\\n' ;;
  1) printf '70, 4096, 143771\\n' ;;
  *) echo "No devices were found" >&2; exit 6 ;;
esac
"""


def test_a_runs_gpu_sample_reads_only_its_leased_gpus(tmp_path, monkeypatch, settings):
    tool = tmp_path / "nvidia-smi"
    tool.write_text(FAKE_SMI)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    settings.ATELIER_WORKER_GPUS = ""
    gpus = [{"index": 0, "name": "H200", "memory_mb": 143771}, {"index": 1, "name": "H200", "memory_mb": 143771}]

    assert gpus_sample(gpus) == (50.0, pytest.approx((1024 + 4096) / 2 / 143771 * 100))
    assert gpus_sample(gpus[1:], indices=[1]) == (70.0, pytest.approx(4096 / 143771 * 100))
    assert gpus_sample(gpus[:1], indices=[7]) == (None, None)  # the tool failed: unknown, not zero


# A GPU whose utilisation never moves (a collective stuck in a spin loop), for a worker process.
FLAT_SMI = """#!/bin/sh
case "$*" in
  *index,name,memory.total*) printf '0, NVIDIA H200, 143771\\n' ;;
  *utilization.gpu*) printf '97, 2048, 143771\\n' ;;
esac
"""


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_gpu_run_spinning_the_cpu_with_flat_gpu_use_is_reported_hung(engine_worker, owner, workspace, gpu_flavor,
                                                                        local_pool, tmp_path):
    from apps.runtime.choices import HangAction, RunStatus
    from apps.runtime.models import RunSample

    from .conftest import events_of, submit, wait_status

    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text(FLAT_SMI)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    engine_worker(name="gpu-box", env={"PATH": f"{tool.parent}{os.pathsep}{os.environ['PATH']}",
                                       "ATELIER_WORKER_GPUS": "", "ATELIER_RUNTIME_RUN_SAMPLE_SECONDS": "1"})
    # Busy CPU, no output, no I/O: the CPU rule would call this alive; the GPU rule sees the flat GPU.
    run = submit(owner, workspace, gpu_flavor, local_pool, [sys.executable, "-c", "while True: pass"],
                 hang_seconds=2, hang_action=HangAction.STOP)

    run = wait_status(run, {RunStatus.STOPPED, RunStatus.FAILED}, timeout=40)

    assert run.status == RunStatus.STOPPED and run.status_reason == "Stopped: suspected hang."
    assert run.gpu_indices == [0]
    hung = [e for e in events_of(run) if e.startswith("Suspected hang")]
    assert len(hung) == 1
    assert re.fullmatch(r"Suspected hang: no output, no I/O and flat GPU utilisation \(97 %\) for \d s\. "
                        r"Stopping it, as configured\.", hung[0])
    samples = list(RunSample.objects.filter(run=run))
    assert samples and all(s.gpu_percent == 97.0 for s in samples)
    assert max(s.cpu_percent for s in samples) > 15  # spinning (a loaded test machine shares the core)


def test_the_gpu_hang_rule_compares_variance_and_median_of_two_windows():
    """seed-05 §17 item 38: "no change" means the last window's variance and median match the window before."""
    from apps.runtime.executor import gpu_window_unchanged

    assert not gpu_window_unchanged([97] * 11, 6, 1)  # not enough history yet
    assert gpu_window_unchanged([97] * 12, 6, 1)  # stuck at one value
    assert gpu_window_unchanged([90, 95, 90, 95, 90, 95, 95, 90, 95, 90, 95, 90], 6, 1)  # same jitter, same level
    assert not gpu_window_unchanged([97] * 6 + [60] * 6, 6, 1)  # the level moved
    assert not gpu_window_unchanged([50] * 6 + [20, 80, 20, 80, 20, 80], 6, 1)  # same median, new variance
    assert not gpu_window_unchanged([10, 40, 70, 95, 30, 60, 20, 90, 50, 0, 80, 35], 6, 1)  # a training job
