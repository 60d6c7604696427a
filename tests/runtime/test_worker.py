"""Worker-side discovery without a worker process: GPUs from nvidia-smi or settings, the bootstrap command."""
from __future__ import annotations

import io
import os
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from apps.runtime.scheduling import gpus_discover, gpus_sample, host_address

pytestmark = pytest.mark.django_db

FAKE_SMI = """#!/bin/sh
case "$*" in
  *index,name,memory.total*) printf '0, NVIDIA H200, 143771\\n1, NVIDIA H200, 143771\\n' ;;
  *utilization.gpu*) printf '30, 1024, 143771\\n70, 4096, 143771\\n' ;;
esac
"""


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An `nvidia-smi` on PATH that prints what the real one prints on a two-GPU machine."""
    tool = tmp_path / "nvidia-smi"
    tool.write_text(FAKE_SMI)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return tool


def test_gpus_are_listed_by_nvidia_smi(fake_nvidia_smi, settings):
    settings.ATELIER_WORKER_GPUS = ""
    gpus = gpus_discover()
    assert gpus == [{"index": 0, "name": "NVIDIA H200", "memory_mb": 143771},
                    {"index": 1, "name": "NVIDIA H200", "memory_mb": 143771}]
    util, memory = gpus_sample(gpus)
    assert util == 50.0
    assert round(memory, 3) == round((1024 + 4096) / 2 / 143771 * 100, 3)


def test_declared_gpus_win_and_are_not_sampled(fake_nvidia_smi, settings):
    settings.ATELIER_WORKER_GPUS = "3"
    gpus = gpus_discover()
    assert [g["index"] for g in gpus] == [0, 1, 2]
    assert gpus_sample(gpus) == (None, None)
    settings.ATELIER_WORKER_GPUS = "0"
    assert gpus_discover() == []


def test_a_malformed_gpu_setting_stops_the_worker_with_its_name(settings):
    settings.ATELIER_WORKER_GPUS = "two"
    with pytest.raises(ImproperlyConfigured) as caught:
        gpus_discover()
    assert "ATELIER_WORKER_GPUS must be a number of GPUs" in str(caught.value)


def test_worker_host_comes_from_the_setting(settings):
    settings.ATELIER_WORKER_HOST = "10.0.0.7"
    assert host_address() == "10.0.0.7"


def test_bootstrap_command_reports_what_it_created(settings):
    settings.ATELIER_WORKER_GPUS = "0"
    out = io.StringIO()
    call_command("runtime_bootstrap", stdout=out)
    assert out.getvalue().startswith("Created pool(s): local\nCreated flavor(s): cpu-1c-2g")
    again = io.StringIO()
    call_command("runtime_bootstrap", stdout=again)
    assert again.getvalue() == "Resources already set up; nothing created.\n"
