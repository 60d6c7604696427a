"""A run's GPU samples cover only the GPUs leased to it (nvidia-smi --id), not the whole machine."""
from __future__ import annotations

import os
import stat

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
