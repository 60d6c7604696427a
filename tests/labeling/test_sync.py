"""Item 14: a job always shows its dataset's current samples. Samples a dataset import adds (run on a real
Celery worker) appear in the job's Unlabeled tab, its tab counts and its progress without a sync step,
including when the page was already viewed (its cached counts follow the dataset's revision)."""
from __future__ import annotations

import time

import pytest
from django.test import Client

from apps.datasets.choices import LabelType
from apps.datasets.models import DatasetOperation
from apps.datasets.services import operation_start

from .conftest import png_bytes, put


def wait_finished(pk, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = DatasetOperation.objects.get(pk=pk)
        if op.status in ("succeeded", "failed", "canceled"):
            return op
        time.sleep(0.2)
    raise AssertionError(f"operation {pk} still {DatasetOperation.objects.get(pk=pk).status} after {timeout}s")


def test_samples_imported_into_the_dataset_appear_in_the_jobs_unlabeled_tab(transactional_db, celery_worker,
                                                                             owner, make_job, add_sample, bucket):
    celery_worker(queues=["pool.local"])
    job = make_job(LabelType.OBJECT_DETECTION)
    add_sample(job.dataset, name="first.png")
    client = Client()
    client.force_login(owner)
    before = client.get(f"/labeling/{job.pk}/?status=unlabeled")
    assert [r["file_name"] for r in before.context["rows"]] == ["first.png"]
    assert before.context["progress"]["text"] == "0% (0/1)"
    assert {t["key"]: t["count"] for t in before.context["tabs"]} == {"unlabeled": 1, "labeled": 0, "all": 1}

    for name in ("new-a.png", "new-b.png"):
        put(f"storage://{bucket.name}/incoming/{name}", png_bytes(64, 48))
    op = operation_start(user=owner, dataset=job.dataset, kind="import",
                         params={"path": f"storage://{bucket.name}/incoming/", "format": "raw"})
    done = wait_finished(op.pk)
    assert (done.status, done.result["created"]) == ("succeeded", 2), done.message

    after = client.get(f"/labeling/{job.pk}/?status=unlabeled")
    assert sorted(r["file_name"] for r in after.context["rows"]) == ["first.png", "new-a.png", "new-b.png"]
    assert {t["key"]: t["count"] for t in after.context["tabs"]} == {"unlabeled": 3, "labeled": 0, "all": 3}
    assert after.context["progress"]["text"] == "0% (0/3)"
    body = after.content.decode()
    assert "new-a.png" in body and "new-b.png" in body
