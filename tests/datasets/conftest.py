"""Fixtures of the Data section: a bucket per test, files written into storage, images made on the fly."""
from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from apps.core.paths import parse
from apps.core.storage import get_storage


def image_bytes(width: int = 64, height: int = 48, color=(200, 40, 40), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt)
    return out.getvalue()


def put(uri: str, data: bytes | str) -> None:
    """Write a file into storage at `uri` (storage://bucket/key)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    get_storage().save(parse(uri), io.BytesIO(data))


def read(uri: str) -> bytes:
    with get_storage().open(parse(uri)) as fh:
        return fh.read()


@pytest.fixture
def bucket(owner, workspace):
    from apps.storage.services import bucket_create

    return bucket_create(user=owner, workspace=workspace, name=f"ds-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def root(bucket) -> str:
    """`storage://<bucket>` of this test's bucket."""
    return f"storage://{bucket.name}"


@pytest.fixture
def make_dataset(owner, workspace, root):
    """Factory: an empty dataset with input `<root>/<name>-in` and output `<root>/<name>-out`."""
    from apps.datasets.services import dataset_create

    def make(name="dataset-8153", data_type="image", label_type="image_classification", **kwargs):
        kwargs.setdefault("input_location", parse(f"{root}/{name}-in"))
        kwargs.setdefault("output_location", parse(f"{root}/{name}-out"))
        return dataset_create(user=owner, workspace=workspace, name=name, data_type=data_type,
                              label_type=label_type, **kwargs)

    return make


@pytest.fixture
def run_import(owner):
    """Start an import of `path` in `fmt` and run it in this process; returns the finished operation."""
    from apps.datasets.operations import operation_execute
    from apps.datasets.services import operation_start

    def run(dataset, path, fmt, **params):
        op = operation_start(user=owner, dataset=dataset, kind="import",
                             params={"path": path, "format": fmt, **params})
        operation_execute(op.pk)
        op.refresh_from_db()
        dataset.refresh_from_db()
        return op

    return run


def errors_of(op) -> list[tuple[str, int | None, str]]:
    """(item name, line, code) of each error row, item shortened to its last path segment."""
    return [(e.item.rpartition("/")[2], e.line, e.code) for e in op.errors.order_by("id")]


def labels_by_file(dataset) -> dict[str, list[str]]:
    out = {}
    for sample in dataset.samples.prefetch_related("annotations__label"):
        out[sample.file_name or sample.text] = sorted(a.label.name for a in sample.annotations.all() if a.label_id)
    return out


@pytest.fixture
def client_for():
    """`client_for(user)`: a Django test client signed in as `user`."""
    from django.test import Client

    def make(user):
        client = Client()
        client.force_login(user)
        return client
    return make


def publish(owner, dataset, **kwargs):
    """Publish a version of `dataset` and run it here; the published DatasetVersion."""
    from apps.datasets.models import DatasetOperation
    from apps.datasets.operations import operation_execute
    from apps.datasets.versions import version_publish

    op = version_publish(user=owner, dataset=dataset, **kwargs)
    assert operation_execute(op.pk) == "succeeded", DatasetOperation.objects.get(pk=op.pk).message
    op.refresh_from_db()
    return op.version


@pytest.fixture
def cls_dataset(make_dataset, run_import, root):
    """Image classification: Cat0–Cat5, Dog0–Dog4 labeled by folder, and one unlabeled image."""
    for label, count in (("Cat", 6), ("Dog", 5)):
        for i in range(count):
            put(f"{root}/src/{label}/{label}{i}.jpg", image_bytes(color=(i * 20, 10, 10)))
    put(f"{root}/src/unlabeled.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    return dataset
