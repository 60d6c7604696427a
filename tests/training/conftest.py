"""Fixtures of the training tests: a bucket, code folders in storage, pools/flavors and fast workers."""
from __future__ import annotations

import io
import time

import pytest

from apps.core.paths import StoragePath, parse
from apps.core.storage import get_storage
from tests.runtime.conftest import FAST, beat, cpu_flavor, engine_worker, fast_engine, local_pool  # noqa: F401

# Training tests log every step; the launcher's pre-check uses tiny limits so any test machine passes.
TRAINING_FAST = {**FAST, "ATELIER_TRAINING_PRECHECK_ROOT_BYTES": "1", "ATELIER_TRAINING_PRECHECK_CACHE_BYTES": "1"}


@pytest.fixture
def bucket(owner, workspace):
    import shutil

    from apps.storage.services import bucket_create

    yield bucket_create(user=owner, workspace=workspace, name="train-data")
    # Storage outlives the test database: drop the files so the next test can create the bucket again.
    root = get_storage().local_path(StoragePath("train-data", ""))
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def put(uri: str, content: bytes | str) -> StoragePath:
    """Write one file into storage."""
    path = parse(uri)
    get_storage().save(path, io.BytesIO(content.encode() if isinstance(content, str) else content))
    return path


def put_tree(base: str, files: dict[str, bytes | str]) -> StoragePath:
    for rel, content in files.items():
        put(f"{base}/{rel}", content)
    return parse(base)


def read(uri: str) -> bytes:
    with get_storage().open(parse(uri)) as fh:
        return fh.read()


@pytest.fixture
def training_worker(engine_worker, settings):
    """Factory: a real worker with the fast engine timings and a permissive pre-check."""
    settings.ATELIER_TRAINING_PRECHECK_ROOT_BYTES = 1
    settings.ATELIER_TRAINING_PRECHECK_CACHE_BYTES = 1

    def start(**kwargs):
        env = {**TRAINING_FAST, **(kwargs.pop("env", None) or {})}
        return engine_worker(env=env, **kwargs)

    return start


def wait_job(job, statuses, timeout=60.0):
    """Wait until the job reaches one of `statuses`; returns the fresh row (fails with its reason)."""
    from apps.training.models import TrainingJob

    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = TrainingJob.objects.get(pk=job.pk)
        if fresh.status in statuses:
            return fresh
        time.sleep(0.1)
    fresh = TrainingJob.objects.get(pk=job.pk)
    raise AssertionError(f"job {fresh.name} is {fresh.status} ({fresh.status_reason}), expected {statuses}")


def job_events(job) -> list[str]:
    from apps.core.services import events_for

    return [e.message for e in events_for(job)]


def job_log(job, rank: int = 0) -> list[str]:
    from apps.runtime.logstream import log_read
    from apps.training.selectors import job_runs

    run = job_runs(job)[rank]
    return log_read(run, after=0, limit=100000).lines
