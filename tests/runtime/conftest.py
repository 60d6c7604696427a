"""Fixtures of the run-engine tests: a pool, flavors, fast engine timings, and run helpers."""
from __future__ import annotations

import time

import pytest

# Engine timings for tests: beats and sweeps in about a second instead of tens of seconds.
FAST = {
    "ATELIER_RUNTIME_HEARTBEAT_SECONDS": "1",
    "ATELIER_RUNTIME_LOST_SECONDS": "4",
    "ATELIER_RUNTIME_SWEEP_SECONDS": "1",
    "ATELIER_RUNTIME_STOP_GRACE_SECONDS": "3",
    "ATELIER_RUNTIME_UPLOAD_SECONDS": "1",
    "ATELIER_RUNTIME_REDISPATCH_SECONDS": "5",
    "ATELIER_WORKER_HOST": "127.0.0.1",
}


@pytest.fixture
def fast_engine(settings):
    """The same fast timings in the test process (the sweep and services run here too)."""
    for name, value in FAST.items():
        setattr(settings, name, int(value) if value.isdigit() else value)
    return FAST


@pytest.fixture
def local_pool(db):
    from apps.runtime.models import Pool

    return Pool.objects.create(name="local", job_types=["training", "notebook", "inference"])


@pytest.fixture
def cpu_flavor(local_pool):
    from apps.runtime.models import Flavor

    flavor = Flavor.objects.create(name="cpu-1c-1g", cpus=1, memory_mb=1024)
    flavor.pools.add(local_pool)
    return flavor


@pytest.fixture
def gpu_flavor(local_pool):
    from apps.runtime.models import Flavor

    flavor = Flavor.objects.create(name="gpu-1x", cpus=1, memory_mb=1024, gpus=1)
    flavor.pools.add(local_pool)
    return flavor


@pytest.fixture
def engine_worker(celery_worker, fast_engine):
    """Factory: a real worker on pool.local (plus the control queue) with fast engine timings."""

    def start(*, name=None, queues=("pool.local", "atelier.control"), concurrency=2, env=None):
        from apps.runtime.scheduling import nodes_online

        worker = celery_worker(queues=queues, name=name, concurrency=concurrency, env={**FAST, **(env or {})})
        # Ready and heartbeating: the console places runs only on workers it sees online.
        wait_for(lambda: nodes_online().filter(hostname__startswith=f"{worker.name}@").exists(), timeout=30,
                 message=f"worker {worker.name} to be online")
        return worker

    return start


def submit(user, workspace, flavor, pool, command, **kwargs):
    """Submit a run as `user`; returns the rank-0 row."""
    from apps.runtime.services import run_submit

    return run_submit(user=user, workspace=workspace, name=kwargs.pop("name", "test run"), command=command,
                      flavor=flavor, pool=pool, **kwargs)[0]


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something truthy; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def wait_status(run, statuses, timeout=30.0):
    """Wait until the run row is in one of `statuses`; returns the fresh row."""
    from apps.runtime.models import Run

    statuses = {statuses} if isinstance(statuses, str) else set(statuses)

    def check():
        fresh = Run.objects.get(pk=run.pk)
        return fresh if fresh.status in statuses else None

    try:
        return wait_for(check, timeout=timeout, message=f"run {run.pk} to reach {statuses}")
    except AssertionError:
        fresh = Run.objects.get(pk=run.pk)
        raise AssertionError(f"run {run.pk} is {fresh.status} ({fresh.status_reason}), expected {statuses}") from None


@pytest.fixture
def beat(transactional_db, fast_engine, tmp_path):
    """A real `celery beat` process sending the runtime sweep every second; stopped at teardown."""
    import os
    import signal
    import subprocess
    import sys

    from tests.harness import ROOT, subprocess_env

    log = open(tmp_path / "beat.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "beat", "--schedule", str(tmp_path / "beat-schedule"),
         "--loglevel", "INFO"],
        cwd=ROOT, env=subprocess_env(**FAST), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def events_of(run) -> list[str]:
    from apps.core.models import Event

    events = Event.objects.filter(content_type__model="run", object_id=str(run.pk))
    return list(events.values_list("message", flat=True))


def process_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
