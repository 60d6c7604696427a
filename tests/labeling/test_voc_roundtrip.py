"""Item 31 end to end, from the labeling side: shapes saved through the labeling JSON API (every tool,
label attributes, VOC flags, a dashed line) go out in a PASCAL VOC export and come back unchanged through
the same API after the export is imported into another job's dataset."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.choices import LabelType
from apps.datasets.exports import export_start
from apps.datasets.models import DatasetOperation
from apps.datasets.operations import operation_execute
from apps.labeling import services

pytestmark = pytest.mark.django_db

FLAGS = {"pose": "Left", "truncated": 1, "occluded": 0, "difficult": 1}
SHAPES = [
    {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 10, "ymin": 12, "xmax": 200, "ymax": 150},
     "attributes": {"color": "white", **FLAGS}},
    {"label": "dog", "shape": "polygon", "geometry": {"points": [[300, 40], [420, 60], [380, 200]]}},
    {"label": "cat", "shape": "circle", "geometry": {"cx": 500, "cy": 300, "r": 40}, "attributes": {"color": "black"}},
    {"label": "dog", "shape": "line", "geometry": {"points": [[20, 400], [600, 420]]}, "style": "dashed"},
    {"label": "dog", "shape": "line", "geometry": {"points": [[20, 300], [200, 310]]}},
    {"label": "cat", "shape": "point", "geometry": {"x": 320, "y": 240}},
]
KEYS = ("label", "shape", "geometry", "style")
# Every VOC object carries the four flags; a shape saved without them reads back with VOC's defaults.
VOC_DEFAULTS = {"pose": "Unspecified", "truncated": 0, "occluded": 0, "difficult": 0}


def comparable(annotations):
    return sorted(({**{k: a.get(k) for k in KEYS}, "attributes": VOC_DEFAULTS | (a.get("attributes") or {})}
                   for a in annotations), key=repr)


def test_shapes_saved_through_the_api_survive_a_voc_export_and_import(api, owner, make_job, add_sample, bucket):
    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset, width=640, height=480, name="street.png")
    base = f"/api/v1/labeling/jobs/{job.pk}/samples/{sample.pk}/"
    saved = api.put(base + "annotations/", {"version": 0, "annotations": SHAPES}, format="json")
    assert saved.status_code == 200, saved.content
    served = api.get(base).json()["annotations"]
    assert len(served) == len(SHAPES) and [a.get("style") for a in served].count("dashed") == 1
    assert {"color": "white", **FLAGS} in [a.get("attributes") for a in served]

    out = f"storage://{bucket.name}/voc-out"
    op = export_start(user=owner, dataset=job.dataset, path=parse(out), method="storage", format="voc")
    assert operation_execute(op.pk) == "succeeded", DatasetOperation.objects.get(pk=op.pk).message
    with get_storage().open(parse(f"{out}/street.xml")) as fh:
        root = ET.fromstring(fh.read())
    tags = sorted(child.tag for obj in root.iter("object") for child in obj
                  if child.tag in ("bndbox", "polygon", "circle", "line", "point"))
    assert tags == ["bndbox", "circle", "line", "line", "point", "polygon"]
    assert sum(obj.findtext("dashed") == "1" for obj in root.iter("object")) == 1

    again = make_job(LabelType.OBJECT_DETECTION)
    operation = services.job_data_add(user=owner, job=again, labeled=True, path=f"{out}/", import_format="voc")
    assert operation_execute(operation.pk) == "succeeded"
    (copy,) = again.dataset.samples.all()
    back = api.get(f"/api/v1/labeling/jobs/{again.pk}/samples/{copy.pk}/").json()
    assert (back["width"], back["height"], back["status"]) == (640, 480, "labeled")
    assert comparable(back["annotations"]) == comparable(served)
