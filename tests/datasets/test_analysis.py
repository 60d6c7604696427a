"""Feature analysis metrics, auto-grouping and data processing (items 30–38)."""
import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image, ImageDraw, ImageFilter

from apps.datasets.analysis import analysis_results, analysis_start, box_metrics
from apps.datasets.grouping import auto_group_start
from apps.datasets.imaging import brightness, clarity, colorfulness, load_rgb, saturation
from apps.datasets.models import DatasetOperation, Sample, SampleAttribute
from apps.datasets.operations import operation_execute
from apps.datasets.processing import OPERATORS, processing_start
from apps.datasets.versions import version_publish

from .conftest import image_bytes, put


def pattern(blur: float = 0, level: int = 128) -> np.ndarray:
    im = Image.new("RGB", (96, 96), (level, level, level))
    draw = ImageDraw.Draw(im)
    for x in range(0, 96, 12):
        draw.rectangle((x, 0, x + 5, 95), fill=(min(level + 80, 255),) * 3)
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    im.save(out, "PNG")
    return load_rgb(out.getvalue())[0]


def test_metrics_are_monotonic():
    assert brightness(pattern(level=40)) < brightness(pattern(level=100)) < brightness(pattern(level=160))
    assert clarity(pattern(blur=0)) > clarity(pattern(blur=1)) > clarity(pattern(blur=3))
    grey = np.asarray(Image.new("RGB", (8, 8), (120, 120, 120)), dtype=float)
    red = np.asarray(Image.new("RGB", (8, 8), (220, 30, 30)), dtype=float)
    assert saturation(grey) == 0 and saturation(red) > 0.8
    assert colorfulness(grey) == 0 and colorfulness(red) > 50


def test_box_metrics_definitions():
    rgb = np.zeros((100, 200, 3))
    image, boxes = box_metrics(rgb, (200, 100), [{"xmin": 90, "ymin": 40, "xmax": 110, "ymax": 60}])
    assert image == {"box_count": 1, "box_area_std": 0.0}
    assert boxes[0]["marginalization"] == 0 and boxes[0]["overlap"] == 0
    assert boxes[0]["box_area_ratio"] == pytest.approx(400 / 20000)
    image, boxes = box_metrics(rgb, (200, 100), [{"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 100},
                                                 {"xmin": 50, "ymin": 0, "xmax": 100, "ymax": 50}])
    assert boxes[1]["overlap"] == 1.0 and 0.2 < boxes[0]["overlap"] < 0.3
    assert image["box_area_std"] == pytest.approx(np.std([10000, 2500]))


@pytest.fixture
def cls_dataset(make_dataset, run_import, root):
    for i in range(4):
        put(f"{root}/src/Dark/{i}.png", image_bytes(40, 30, color=(20 + i, 20, 20)))
        put(f"{root}/src/Light/{i}.png", image_bytes(60, 30, color=(230, 230 - i, 230)))
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    return dataset


def test_analysis_of_version_and_histograms(owner, cls_dataset):
    op = version_publish(user=owner, dataset=cls_dataset)
    operation_execute(op.pk)
    op.refresh_from_db()
    analysis = analysis_start(user=owner, version=op.version)
    assert operation_execute(analysis.pk) == "succeeded"
    analysis.refresh_from_db()
    assert len(analysis.result["images"]) == 8
    assert sorted({row["resolution"] for row in analysis.result["images"]}) == [1200, 1800]
    figures = analysis_results([op.version], metrics=["brightness", "aspect_ratio"])
    assert [f["metric"] for f in figures] == ["brightness", "aspect_ratio"]
    assert figures[0]["figure"]["data"][0]["type"] == "histogram" and len(figures[0]["figure"]["data"][0]["x"]) == 8


def test_analysis_refused_for_unlabeled_version(owner, make_dataset, run_import, root):
    put(f"{root}/plain/a.png", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/plain", "raw")
    op = version_publish(user=owner, dataset=dataset)
    operation_execute(op.pk)
    op.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        analysis_start(user=owner, version=op.version)
    assert exc.value.messages == ["The version has no labeled sample."]


def test_auto_group_writes_attribute_and_filters(owner, cls_dataset):
    with pytest.raises(ValidationError):
        auto_group_start(user=owner, dataset=cls_dataset, groups=2, handling="attribute", attribute="")
    op = auto_group_start(user=owner, dataset=cls_dataset, groups=2, handling="attribute", attribute="cluster")
    assert operation_execute(op.pk) == "succeeded"
    assert SampleAttribute.objects.filter(name="cluster").count() == 8
    groups = {}
    for attr in SampleAttribute.objects.filter(name="cluster").select_related("sample"):
        groups.setdefault(attr.value, set()).add(attr.sample.directory.rpartition("/")[2])
    assert sorted(groups.values(), key=sorted) == [{"Dark"}, {"Light"}]
    from apps.datasets.selectors import SampleFilter, samples_filtered
    from django.http import QueryDict

    flt = SampleFilter.from_params(QueryDict("attr=cluster%3D0"))
    assert samples_filtered(cls_dataset, flt).count() == 4


def test_auto_group_to_storage_file(owner, cls_dataset, root):
    from apps.core.paths import parse

    op = auto_group_start(user=owner, dataset=cls_dataset, groups=3, handling="storage",
                          result_path=parse(f"{root}/groups"), features=["brightness", "clarity", "colour"])
    assert operation_execute(op.pk) == "succeeded"
    op.refresh_from_db()
    assert op.result["file"].startswith(f"{root}/groups/auto-group-") and sum(op.result["groups"].values()) == 8


def test_auto_group_stop_request(owner, cls_dataset):
    from apps.datasets.services import operation_stop

    op = auto_group_start(user=owner, dataset=cls_dataset, groups=2, handling="attribute", attribute="c")
    operation_stop(user=owner, operation=op)
    op.refresh_from_db()
    assert op.status == "stopped"
    assert operation_execute(op.pk) == "stopped"


def test_processing_validate_clean_dedupe(owner, make_dataset, run_import, root):
    put(f"{root}/p/a.png", image_bytes(color=(10, 200, 10)))
    put(f"{root}/p/b.png", image_bytes(color=(10, 200, 10)))
    put(f"{root}/p/c.png", image_bytes(color=(200, 10, 10)))
    dataset = make_dataset()
    run_import(dataset, f"{root}/p", "raw")
    # A file broken after import is what validation finds.
    broken = dataset.samples.get(file_name="c.png")
    put(broken.source, b"garbage now")
    op = processing_start(user=owner, dataset=dataset, operation="validate")
    operation_execute(op.pk)
    op.refresh_from_db()
    assert (op.result["invalid"], op.result["removed"]) == (1, 0)
    assert [e.code for e in op.errors.all()] == ["CORRUPT_IMAGE"]
    op = processing_start(user=owner, dataset=dataset, operation="clean")
    operation_execute(op.pk)
    assert not Sample.objects.filter(pk=broken.pk).exists()
    with pytest.raises(ValidationError):
        processing_start(user=owner, dataset=dataset, operation="dedupe", threshold=99)
    op = processing_start(user=owner, dataset=dataset, operation="dedupe", threshold=0)
    operation_execute(op.pk)
    op.refresh_from_db()
    assert op.result["removed"] == 1 and dataset.samples.count() == 1


def test_augmentation_transforms_boxes(owner, make_dataset, run_import, root):
    import json

    assert len(OPERATORS) >= 18
    put(f"{root}/coco/images/a.jpg", image_bytes(100, 50))
    put(f"{root}/coco/c.json", json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 10]}],
        "categories": [{"id": 1, "name": "car"}]}))
    dataset = make_dataset(label_type="object_detection")
    run_import(dataset, f"{root}/coco/c.json", "coco")
    op = processing_start(user=owner, dataset=dataset, operation="augment", operators=["flip_horizontal"], copies=1)
    assert operation_execute(op.pk) == "succeeded"
    flipped = dataset.samples.get(file_name="a_flip_horizontal_1.jpg")
    assert flipped.annotations.get().geometry == {"xmin": 70, "ymin": 5, "xmax": 90, "ymax": 15}
    with pytest.raises(ValidationError) as exc:
        processing_start(user=owner, dataset=dataset, operation="augment", operators=["melt"])
    assert exc.value.message_dict["operators"] == ["Unknown operator(s): melt."]
    assert DatasetOperation.objects.filter(kind="processing").count() == 1
