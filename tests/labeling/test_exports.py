"""What the workbench saves comes out of a dataset export as the spec says: segmentation masks in
each label's colour with their VOC XML (item 35), NER offsets (item 37), triplet E#/R# ids
(item 38) and video frames as JPG samples with their time (item 45)."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.choices import LabelType
from apps.datasets.exports import export_start
from apps.datasets.models import DatasetOperation
from apps.datasets.operations import operation_execute
from apps.labeling.services import annotations_save

pytestmark = pytest.mark.django_db


def export(owner, dataset, uri, fmt):
    op = export_start(user=owner, dataset=dataset, path=parse(uri), method="storage", format=fmt)
    assert operation_execute(op.pk) == "succeeded", DatasetOperation.objects.get(pk=op.pk).message
    return uri


def read(uri: str) -> bytes:
    with get_storage().open(parse(uri)) as fh:
        return fh.read()


def save(owner, job, sample, annotations):
    annotations_save(user=owner, job=job, sample=sample, version=sample.annotation_version, annotations=annotations)
    sample.refresh_from_db()


def manifest_lines(uri, dataset):
    return [json.loads(line) for line in read(f"{uri}/{dataset.name}.manifest").decode().splitlines() if line]


def test_segmentation_exports_a_class_colour_mask_and_voc_xml(owner, make_job, add_sample, bucket):
    job = make_job(LabelType.IMAGE_SEGMENTATION)  # road #808080, car #ff0000
    sample = add_sample(job.dataset, width=100, height=80, name="street.png")
    save(owner, job, sample, [{"label": "car", "shape": "polygon", "geometry": {"points": [[10, 10], [60, 10], [60, 50], [10, 50]]}}])
    out = export(owner, job.dataset, f"storage://{bucket.name}/seg-out", "default")
    mask = Image.open(io.BytesIO(read(f"{out}/segmentationClassRaw/street.png"))).convert("RGB")
    assert mask.size == (100, 80)
    assert (mask.getpixel((30, 30)), mask.getpixel((90, 70))) == ((255, 0, 0), (0, 0, 0))
    root = ET.fromstring(read(f"{out}/street.xml"))
    assert root.findtext("segmented") == "1"
    assert root.findtext("mask_source").endswith("segmentationClassRaw/street.png")
    assert root.find("object").findtext("name") == "car"
    assert root.find("object").findtext("mask_color") == "255,0,0"


def test_named_entities_export_start_and_end_indexes(owner, make_job, add_sample, bucket):
    job = make_job(LabelType.NAMED_ENTITY)
    sample = add_sample(job.dataset, text="Michael Jordan visited Paris in May.")
    save(owner, job, sample, [{"label": "place", "shape": "span", "geometry": {"start": 23, "end": 28}}])
    out = export(owner, job.dataset, f"storage://{bucket.name}/ner-out", "manifest")
    (line,) = manifest_lines(out, job.dataset)
    (annotation,) = line["annotation"]
    prop = annotation["property"]
    assert (annotation["name"], prop["@modelarts:start_index"], prop["@modelarts:end_index"]) == ("place", 23, 28)
    assert annotation["annotated-by"] == owner.username


def test_triplets_export_entity_and_relation_ids(owner, make_job, add_sample, bucket):
    job = make_job(LabelType.TEXT_TRIPLET)
    sample = add_sample(job.dataset, text="Liu Cixin wrote Three Body.")
    save(owner, job, sample, [
        {"label": "Person", "shape": "span", "ref_id": "E1", "geometry": {"start": 4, "end": 9}},
        {"label": "Book", "shape": "span", "ref_id": "E2", "geometry": {"start": 22, "end": 26}},
        {"label": "author", "shape": "relation", "ref_id": "R1", "geometry": {"from": "E1", "to": "E2"}}])
    out = export(owner, job.dataset, f"storage://{bucket.name}/tri-out", "manifest")
    (line,) = manifest_lines(out, job.dataset)
    by_id = {a["id"]: a for a in line["annotation"]}
    assert sorted(by_id) == ["E1", "E2", "R1"]
    entity, relation = by_id["E1"]["property"], by_id["R1"]["property"]
    assert (entity["@modelarts:start_index"], entity["@modelarts:end_index"]) == (4, 9)
    assert (by_id["R1"]["name"], relation["@modelarts:from"], relation["@modelarts:to"]) == ("author", "E1", "E2")


def test_labeled_video_frame_exports_as_a_jpg_with_its_box_and_time(owner, make_job, add_sample, bucket):
    """Item 45: a frame labeled at t is exported as an extracted JPG sample beside the video, with its
    annotation and `@modelarts:time_in_video` / `parent_source` / `parent_duration` in the manifest."""
    from apps.labeling.services import video_frame_save

    from .conftest import jpeg_bytes

    job = make_job(LabelType.VIDEO)
    video = add_sample(job.dataset, duration=8.0, name="clip.mp4")
    box = {"label": "car", "shape": "bndbox", "geometry": {"xmin": 10, "ymin": 12, "xmax": 100, "ymax": 90}}
    video_frame_save(user=owner, job=job, video=video, time=2.5, version=0, annotations=[box],
                     image=jpeg_bytes(320, 240))
    out = export(owner, job.dataset, f"storage://{bucket.name}/video-out", "manifest")
    lines = {line["source"].rsplit("/", 1)[-1]: line for line in manifest_lines(out, job.dataset)}
    assert sorted(lines) == ["clip.mp4", "clip_t2.500000.jpg"]
    frame = lines["clip_t2.500000.jpg"]
    assert frame["sample-type"] == 0
    jpg = Image.open(io.BytesIO(read(f"{out}/{frame['source']}")))
    assert (jpg.format, jpg.size) == ("JPEG", (320, 240))
    (annotation,) = frame["annotation"]
    assert annotation["annotation-format"] == "PASCAL VOC"
    obj = ET.fromstring(read(f"{out}/{annotation['annotation-loc']}")).find("object")
    assert obj.findtext("name") == "car"
    assert [obj.find("bndbox").findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] == ["10", "12", "100", "90"]
    prop = frame["property"]
    assert (prop["@modelarts:time_in_video"], prop["@modelarts:parent_duration"]) == (2.5, 8.0)
    assert prop["@modelarts:parent_source"].endswith("clip.mp4")

    # Re-imported (manifest) into another video job, the frame comes back with its box and its time.
    from apps.labeling import selectors
    from apps.labeling.services import job_data_add

    again = make_job(LabelType.VIDEO)
    op = job_data_add(user=owner, job=again, labeled=True, path=f"{out}/{job.dataset.name}.manifest",
                      import_format="manifest")
    assert operation_execute(op.pk) == "succeeded", DatasetOperation.objects.get(pk=op.pk).message
    copy = again.dataset.samples.get(file_name="clip_t2.500000.jpg")
    assert copy.properties["@modelarts:time_in_video"] == 2.5
    (served,) = selectors.annotations_of(copy)
    assert (served["label"], served["shape"], served["geometry"]) == ("car", "bndbox", box["geometry"])
