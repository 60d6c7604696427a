"""Operations run by a real Celery worker on pool.local, enqueued after commit; a second delivery is a no-op."""
import time

import pytest

from apps.datasets.models import DatasetOperation
from apps.datasets.operations import operation_execute
from apps.datasets.services import operation_start

from .conftest import image_bytes, put

pytestmark = pytest.mark.worker


def wait_finished(pk: int, timeout: float = 60) -> DatasetOperation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = DatasetOperation.objects.get(pk=pk)
        if op.is_finished:
            return op
        time.sleep(0.2)
    raise AssertionError(f"operation {pk} still {DatasetOperation.objects.get(pk=pk).status} after {timeout}s")


def test_import_runs_on_worker_and_is_idempotent(transactional_db, celery_worker, make_dataset, root, owner):
    celery_worker(queues=["pool.local"])
    put(f"{root}/src/Cat/1.jpg", image_bytes())
    put(f"{root}/src/Dog/2.jpg", image_bytes())
    dataset = make_dataset()
    op = operation_start(user=owner, dataset=dataset, kind="import",
                         params={"path": f"{root}/src", "format": "imagenet-folder"})
    done = wait_finished(op.pk)
    assert (done.status, done.result["created"], done.progress_done) == ("succeeded", 2, 2)
    assert done.started_at is not None and done.finished_at >= done.started_at
    # A redelivered task finds the record no longer queued and leaves it alone.
    assert operation_execute(op.pk) == "succeeded"
    dataset.refresh_from_db()
    assert dataset.sample_count == 2
    again = wait_finished(operation_start(user=owner, dataset=dataset, kind="import",
                                          params={"path": f"{root}/src", "format": "imagenet-folder"}).pk)
    assert (again.result["created"], again.result["existing"]) == (0, 2)
    # Every other kind goes through the same queue and runner: an export and a validation on the worker.
    from apps.core.paths import parse
    from apps.datasets.exports import export_start
    from apps.datasets.processing import processing_start

    export = wait_finished(export_start(user=owner, dataset=dataset, method="storage", path=parse(f"{root}/exp")).pk)
    assert (export.status, export.result["exported"], export.progress_done) == ("succeeded", 2, 2)
    validation = wait_finished(processing_start(user=owner, dataset=dataset, operation="validate").pk)
    assert (validation.status, validation.error_count) == ("succeeded", 0)
