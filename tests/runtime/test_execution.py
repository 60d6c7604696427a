"""Runs executed by a real Celery worker process: success, failure, stop, metrics, environment."""
from __future__ import annotations

import sys

import pytest

from apps.core.models import Event
from apps.runtime.choices import RunStatus
from apps.runtime.logstream import log_read
from apps.runtime.models import Metric

from .conftest import submit, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PRINT_AND_METRICS = """
from atelier import log_metric
for i in range(5):
    print(f"line {i}")
    log_metric("loss", 1.0 / (i + 1), step=i)
print("ATELIER_METRIC {\\"name\\": \\"acc\\", \\"value\\": 0.5}")
print("done")
"""


def test_script_printing_lines_and_metrics_succeeds(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", PRINT_AND_METRICS])

    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    assert run.status == RunStatus.SUCCEEDED
    assert run.exit_code == 0
    log = log_read(run, after=0)
    assert log.lines[:11] == [
        "line 0", 'ATELIER_METRIC {"name":"loss","value":1.0,"step":0}',
        "line 1", 'ATELIER_METRIC {"name":"loss","value":0.5,"step":1}',
        "line 2", 'ATELIER_METRIC {"name":"loss","value":0.3333333333333333,"step":2}',
        "line 3", 'ATELIER_METRIC {"name":"loss","value":0.25,"step":3}',
        "line 4", 'ATELIER_METRIC {"name":"loss","value":0.2,"step":4}',
        'ATELIER_METRIC {"name": "acc", "value": 0.5}',
    ]
    assert log.lines[11:] == ["done", "[atelier] Process exited with exit code 0 (success)."]
    assert run.log_lines == 13
    points = list(Metric.objects.filter(run=run).values_list("name", "step", "value"))
    assert points == [("acc", 0, 0.5), ("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 1 / 3), ("loss", 3, 0.25),
                      ("loss", 4, 0.2)]
    messages = [e.message for e in Event.objects.filter(object_id=str(run.pk), content_type__model="run")]
    assert messages[0] == "Queued in pool local with flavor cpu-1c-1g (1 CPU, 1 GiB)."
    assert messages[1].startswith("Scheduled on ")
    assert messages[2].startswith("Process started (pid ")
    assert messages[-1] == "Succeeded: the process exited with code 0."


def test_script_exiting_1_fails_with_the_code_explained(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    failing = "import sys; print('bad'); sys.exit(1)"
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", failing])

    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    assert run.status == RunStatus.FAILED
    assert run.exit_code == 1
    assert run.status_reason == "Exited with exit code 1 (general error)."
    assert run.auto_restarts == 0
