"""Run logs when storage is S3 (moto): the worker uploads the log periodically and mirrors
recent batches in Redis, so readers see every line before the upload catches up."""
from __future__ import annotations

import io
import json
import sys

import pytest

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.runtime.choices import RunStatus
from apps.runtime.logstream import _redis, _tail_key, log_read
from tests.storage.backends import moto_endpoint, use_s3  # noqa: F401

from .conftest import submit, wait_for, wait_status


@pytest.fixture
def s3(settings, moto_endpoint):  # noqa: F811
    use_s3(settings, moto_endpoint)
    get_storage.cache_clear()
    yield settings
    get_storage.cache_clear()


@pytest.mark.django_db
def test_readers_merge_the_uploaded_log_with_the_redis_mirror(s3, owner, workspace, cpu_flavor, local_pool):
    run = submit(owner, workspace, cpu_flavor, local_pool, ["true"])
    get_storage().save(parse(run.log_uri), io.BytesIO(b"one\ntwo\n"))
    key = _tail_key(run.pk)
    for first, lines in ((1, ["one", "two"]), (3, ["three"]), (4, ["four", "five"])):
        _redis().xadd(key, {"b": json.dumps({"kind": "log", "first": first, "lines": lines})})
    try:
        whole = log_read(run, after=0)
        tail = log_read(run, limit=2)
        after = log_read(run, after=3)
    finally:
        _redis().delete(key)

    assert (whole.first, whole.lines, whole.total) == (1, ["one", "two", "three", "four", "five"], 5)
    assert (tail.first, tail.lines, tail.total) == (4, ["four", "five"], 5)
    assert (after.first, after.lines) == (4, ["four", "five"])


SLOW = "import time\nfor i in range(3):\n    print(f'early {i}', flush=True)\ntime.sleep(4)\nprint('late', flush=True)\n"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_on_s3_storage_keeps_its_whole_log(s3, engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker(env={"ATELIER_STORAGE_BACKEND": "s3", "ATELIER_S3_ENDPOINT_URL": s3.ATELIER_S3_ENDPOINT_URL,
                       "ATELIER_S3_ACCESS_KEY": "testing", "ATELIER_S3_SECRET_KEY": "testing",
                       "ATELIER_S3_BUCKET": s3.ATELIER_S3_BUCKET})
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SLOW])

    # While it sleeps, readers already have the early lines, and the periodic upload has them too.
    wait_for(lambda: log_read(run, after=0).lines == ["early 0", "early 1", "early 2"], timeout=30,
             message="the early lines")
    wait_for(lambda: _object_text(run) == "early 0\nearly 1\nearly 2\n", timeout=10,
             message="the periodic upload of the log")
    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    with get_storage().open(parse(run.log_uri)) as fh:
        assert fh.read().decode().splitlines() == [
            "early 0", "early 1", "early 2", "late", "[atelier] Process exited with exit code 0 (success)."]
    assert 0 < _redis().ttl(_tail_key(run.pk)) <= 3600


def _object_text(run) -> str:
    try:
        with get_storage().open(parse(run.log_uri)) as fh:
            return fh.read().decode()
    except Exception:  # not uploaded yet
        return ""
