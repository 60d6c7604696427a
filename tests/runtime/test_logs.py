"""Run logs on a real worker: the size cap with its notice, and long lines."""
from __future__ import annotations

import sys

import pytest

from apps.runtime.choices import RunStatus
from apps.runtime.logstream import log_read

from .conftest import submit, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_log_cap_keeps_the_start_and_says_it_was_truncated(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker(env={"ATELIER_RUNTIME_LOG_CAP_BYTES": "2000"})
    run = submit(owner, workspace, cpu_flavor, local_pool,
                 [sys.executable, "-c", "for i in range(1000): print(f'line {i:04d}')"])

    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    assert run.status == RunStatus.SUCCEEDED
    lines = log_read(run, after=0).lines
    assert lines[-1] == ("[atelier] The log reached its size limit of 1.953 KiB; further output of this run is "
                         "not kept.")
    assert lines[:-1] == [f"line {i:04d}" for i in range(len(lines) - 1)]
    assert run.log_truncated is True
    assert run.log_bytes <= 2000
    assert run.log_lines == len(lines)


def test_a_very_long_line_is_split_into_pieces(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", "print('x' * 40000)"])

    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    lines = log_read(run, after=0).lines
    assert [len(line) for line in lines[:3]] == [16384, 16384, 40000 - 2 * 16384]
