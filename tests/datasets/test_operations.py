"""Every long operation is a recorded background run (spec §15 item 54, issue 4): import, sync,
publish, export, feature analysis, auto-grouping and processing each leave a DatasetOperation with
start/finish times, progress done/total and a per-item error report naming the file and the rule,
while the valid items still go through. A run started twice is not run twice, and re-running the
same import adds no duplicate."""
import json

import pytest

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.analysis import analysis_start
from apps.datasets.exports import export_start
from apps.datasets.grouping import auto_group_start
from apps.datasets.models import DatasetOperation
from apps.datasets.operations import operation_execute
from apps.datasets.processing import processing_start
from apps.datasets.services import operation_start
from apps.datasets.versions import version_publish

from .conftest import image_bytes, put

pytestmark = pytest.mark.django_db


def finished(op) -> DatasetOperation:
    """Run a queued operation here (the worker path is tests/datasets/test_tasks.py) and check its record."""
    assert operation_execute(op.pk) == "succeeded", DatasetOperation.objects.get(pk=op.pk).message
    op = DatasetOperation.objects.get(pk=op.pk)
    assert op.started_at is not None and op.finished_at >= op.started_at, op.kind
    assert op.progress_total >= op.progress_done > 0, (op.kind, op.progress_done, op.progress_total)
    assert op.error_count == op.errors.count(), op.kind
    # A second delivery of the same task finds the record finished and changes nothing.
    assert operation_execute(op.pk) == "succeeded"
    return op


def report(op) -> set[tuple[str, str]]:
    """(file name, rule code) of each error row; every row also carries a message for the user."""
    rows = list(op.errors.all())
    assert all(row.message for row in rows), op.kind
    return {(row.item.rpartition("/")[2], row.code) for row in rows}


def test_every_long_operation_is_a_recorded_run_with_progress_and_per_item_errors(owner, make_dataset, root):
    for i in range(3):
        put(f"{root}/src/Dark/d{i}.png", image_bytes(40, 30, color=(20 + i, 20, 20)))
        put(f"{root}/src/Light/l{i}.png", image_bytes(60, 30, color=(230, 230 - i, 230)))
    put(f"{root}/src/Light/fake.png", b"not an image at all")
    dataset = make_dataset()

    def import_once():
        return finished(operation_start(user=owner, dataset=dataset, kind="import",
                                        params={"path": f"{root}/src", "format": "imagenet-folder"}))

    op = import_once()
    assert (op.result["created"], report(op)) == (6, {("fake.png", "CORRUPT_IMAGE")})
    again = import_once()  # idempotent: the same files are recognised, nothing is duplicated
    assert (again.result["created"], again.result["existing"], dataset.samples.count()) == (0, 6, 6)

    published = finished(version_publish(user=owner, dataset=dataset))
    assert (published.result["samples"], published.error_count) == (6, 0)

    # One sample's file is broken after import: the image runs report it and handle the others.
    broken = dataset.samples.get(file_name="d0.png")
    put(broken.source, b"garbage now")
    analysis = finished(analysis_start(user=owner, version=published.version))
    assert (len(analysis.result["images"]), report(analysis)) == (5, {("d0.png", "CORRUPT_IMAGE")})
    grouping = finished(auto_group_start(user=owner, dataset=dataset, groups=2, handling="attribute",
                                         attribute="cluster"))
    assert report(grouping) == {("d0.png", "CORRUPT_IMAGE")}
    validation = finished(processing_start(user=owner, dataset=dataset, operation="validate"))
    assert (validation.result["invalid"], report(validation)) == (1, {("d0.png", "CORRUPT_IMAGE")})

    # Another sample's file disappears: the export names it and writes the rest.
    gone = dataset.samples.get(file_name="l0.png")
    get_storage().delete(parse(gone.source))
    export = finished(export_start(user=owner, dataset=dataset, method="storage", path=parse(f"{root}/exp")))
    assert (export.result["exported"], report(export)) == (5, {("l0.png", "MISSING_SOURCE")})

    # Sync: the vanished file's sample goes, a new good file comes in, a new broken one is reported.
    input_root = dataset.input_location.rstrip("/")
    put(f"{input_root}/new/n1.png", image_bytes())
    put(f"{input_root}/new/n2.jpg", b"\xff\xd8\xff truncated")
    sync = finished(operation_start(user=owner, dataset=dataset, kind="sync", params={}))
    assert (sync.result["added"], sync.result["removed"], report(sync)) == (1, 1, {("n2.jpg", "CORRUPT_IMAGE")})
    assert dataset.samples.count() == 6


@pytest.mark.parametrize("fmt", ["voc", "manifest", "coco", "yolo"])
def test_rerunning_a_labeled_import_duplicates_neither_samples_nor_annotations(owner, make_dataset, root, fmt):
    from apps.datasets.models import Annotation

    bucket = parse(root).bucket
    put(f"{root}/src/a.jpg", image_bytes(100, 80, fmt="JPEG"))
    box = {"xmin": 10, "ymin": 10, "xmax": 40, "ymax": 50}
    if fmt == "voc":
        put(f"{root}/src/a.xml", "<annotation><size><width>100</width><height>80</height></size><object><name>cat"
                                 "</name><bndbox>" + "".join(f"<{k}>{v}</{k}>" for k, v in box.items())
            + "</bndbox></object></annotation>")
        path = f"{root}/src"
    elif fmt == "manifest":
        put(f"{root}/src/set.manifest", json.dumps({"source": f"s3://{bucket}/src/a.jpg", "annotation": [
            {"type": "modelarts/object_detection", "annotation-loc": f"s3://{bucket}/src/a.xml",
             "annotation-format": "PASCAL VOC"}]}) + "\n")
        put(f"{root}/src/a.xml", "<annotation><size><width>100</width><height>80</height></size><object><name>cat"
                                 "</name><bndbox>" + "".join(f"<{k}>{v}</{k}>" for k, v in box.items())
            + "</bndbox></object></annotation>")
        path = f"{root}/src/set.manifest"
    elif fmt == "coco":
        put(f"{root}/src/images/a.jpg", image_bytes(100, 80, fmt="JPEG"))
        put(f"{root}/src/instances.json", json.dumps({
            "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 40]}],
            "categories": [{"id": 1, "name": "cat"}]}))
        path = f"{root}/src/instances.json"
    else:
        put(f"{root}/src/obj.names", "cat\n")
        put(f"{root}/src/obj.data", "classes = 1\nnames = data/obj.names\ntrain = data/train.txt\n")
        put(f"{root}/src/train.txt", "data/obj_train_data/a.jpg\n")
        put(f"{root}/src/obj_train_data/a.jpg", image_bytes(100, 80, fmt="JPEG"))
        put(f"{root}/src/obj_train_data/a.txt", "0 0.25 0.375 0.3 0.5\n")
        path = f"{root}/src"
    dataset = make_dataset(label_type="object_detection")
    for _ in range(2):
        op = finished(operation_start(user=owner, dataset=dataset, kind="import", params={"path": path, "format": fmt}))
        assert op.error_count == 0, list(op.errors.values_list("item", "message"))
    assert dataset.samples.count() == 1
    assert list(Annotation.objects.filter(dataset=dataset).values_list("label__name", flat=True)) == ["cat"]
