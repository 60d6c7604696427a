"""Exports: COCO checked by pycocotools, VOC/YOLO read back by our importer and by an independent reader,
CSV formula escaping, new-dataset export, refusals (spec §15 items 44, 49–52).

The independent reader of VOC and YOLO exports is globox (a detection-dataset converter and
evaluator, with parsers of its own), backed by the standard library's ElementTree and a Darknet
parse written in the test from the files alone; datumaro is not used because its release pins
pandas 2.x (older than ours) and pulls in OpenCV and shapely.
"""
import csv
import io
import json
import xml.etree.ElementTree as StdET

import pytest
from django.core.exceptions import ValidationError

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.exports import export_start
from apps.datasets.models import Annotation, Dataset, DatasetOperation
from apps.datasets.operations import operation_execute

from .conftest import image_bytes, labels_by_file, put, read


def boxes_of(dataset):
    return sorted((a.sample.file_name, a.label.name, tuple(round(a.geometry[k], 2) for k in
                   ("xmin", "ymin", "xmax", "ymax"))) for a in Annotation.objects.filter(dataset=dataset,
                                                                                        shape="bndbox"))


@pytest.fixture
def det_dataset(make_dataset, run_import, root):
    put(f"{root}/coco/images/a.jpg", image_bytes(100, 80))
    put(f"{root}/coco/images/b.jpg", image_bytes(120, 90))
    put(f"{root}/coco/images/c.jpg", image_bytes(50, 50))
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                      {"id": 2, "file_name": "b.jpg", "width": 120, "height": 90},
                      {"id": 3, "file_name": "c.jpg", "width": 50, "height": 50}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30]},
                           {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 5, 10, 10]},
                           {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 120, 90]}],
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    put(f"{root}/coco/instances.json", json.dumps(doc))
    dataset = make_dataset(label_type="object_detection")
    run_import(dataset, f"{root}/coco/instances.json", "coco")
    return dataset


def local_copy(folder: str, tmp_path):
    """The files below storage folder `folder`, copied to `tmp_path` for a reader that wants a disk."""
    base = parse(folder)
    for info in get_storage().walk(base):
        target = tmp_path / info.key[len(base.key) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read(f"storage://{base.bucket}/{info.key}"))
    return tmp_path


def globox_boxes(annotation_set, names=None):
    """(file, label, (xmin, ymin, xmax, ymax)) of every box globox read; `names` maps class ids to labels."""
    return sorted((str(ann.image_id).rsplit("/", 1)[-1], names[int(box.label)] if names else box.label,
                   tuple(round(v, 2) for v in box.ltrb)) for ann in annotation_set for box in ann.boxes)


def run_export(owner, dataset, path, **kwargs):
    op = export_start(user=owner, dataset=dataset, path=parse(path), method=kwargs.pop("method", "storage"), **kwargs)
    assert operation_execute(op.pk) == "succeeded", DatasetOperation.objects.get(pk=op.pk).message
    op.refresh_from_db()
    return op


def test_coco_export_loads_in_pycocotools(owner, det_dataset, root, tmp_path):
    from pycocotools.coco import COCO

    op = run_export(owner, det_dataset, f"{root}/exp-coco", format="coco")
    assert op.result["exported"] == 3
    local = tmp_path / "annotations.json"
    local.write_bytes(read(f"{root}/exp-coco/annotations.json"))
    coco = COCO(str(local))
    assert (len(coco.getImgIds()), len(coco.getAnnIds()), len(coco.getCatIds())) == (3, 3, 2)
    cat_id = coco.getCatIds(catNms=["cat"])[0]
    (ann,) = coco.loadAnns(coco.getAnnIds(catIds=[cat_id]))
    assert ann["bbox"] == [10, 10, 20, 30]
    assert coco.loadImgs(ann["image_id"])[0]["file_name"] == "a.jpg"
    assert get_storage().exists(parse(f"{root}/exp-coco/images/a.jpg"))


def test_voc_export_reads_back_identically(owner, det_dataset, make_dataset, run_import, root, tmp_path):
    from globox import AnnotationSet

    run_export(owner, det_dataset, f"{root}/exp-voc", format="voc")
    again = make_dataset(name="voc-again", label_type="object_detection")
    run_import(again, f"{root}/exp-voc", "voc")
    assert boxes_of(again) == boxes_of(det_dataset)
    # An independent reader (the standard library's XML parser) sees the same boxes.
    independent = []
    for info in get_storage().walk(parse(f"{root}/exp-voc")):
        if info.key.endswith(".xml"):
            doc = StdET.fromstring(read(f"storage://{parse(root).bucket}/{info.key}"))
            for obj in doc.iter("object"):
                box = obj.find("bndbox")
                independent.append((doc.findtext("filename"), obj.findtext("name"),
                                    tuple(float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))))
    assert sorted(independent) == boxes_of(det_dataset)
    # And globox, reading the folder as PASCAL VOC.
    assert globox_boxes(AnnotationSet.from_pascal_voc(local_copy(f"{root}/exp-voc", tmp_path))) == boxes_of(
        det_dataset)


def shapes_of(dataset):
    """(file, label, shape, geometry, attributes, line style) of every shaped annotation."""
    from apps.datasets.choices import LINE_STYLE_KEY
    from apps.datasets.formats.voc import FLAGS

    def attributes(a):
        return json.dumps({k: v for k, v in a.properties.items() if k not in FLAGS and k != LINE_STYLE_KEY},
                          sort_keys=True)

    return sorted((a.sample.file_name, a.label.name, a.shape, json.dumps(a.geometry, sort_keys=True), attributes(a),
                   a.properties.get(LINE_STYLE_KEY, "solid"))
                  for a in Annotation.objects.filter(dataset=dataset).exclude(shape="none").select_related(
                      "sample", "label"))


def test_voc_round_trip_keeps_every_shape_attributes_and_dashed_lines(owner, det_dataset, make_dataset, run_import,
                                                                      root):
    from apps.datasets.choices import LINE_STYLE_KEY
    from apps.datasets.services import label_update, sample_annotations_replace

    cat = det_dataset.labels.get(name="cat")
    label_update(user=owner, label=cat, name="cat", color=cat.color,
                 attributes=[{"name": "color", "values": ["white", "black"]}, {"name": "kind"}])
    sample = det_dataset.samples.get(file_name="b.jpg")
    sample_annotations_replace(user=owner, sample=sample, expected_version=sample.annotation_version, annotations=[
        {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 1, "ymin": 2, "xmax": 30.5, "ymax": 40},
         "properties": {"color": "white", "kind": "Persian & <cat>"}},
        {"label": "cat", "shape": "polygon", "geometry": {"points": [[10, 10], [50, 12], [30, 60]]},
         "properties": {"color": "black"}},
        {"label": "dog", "shape": "circle", "geometry": {"cx": 60, "cy": 45, "r": 20}},
        {"label": "dog", "shape": "line", "geometry": {"points": [[0, 0], [100, 80], [110, 5]]},
         "properties": {LINE_STYLE_KEY: "dashed"}},
        {"label": "dog", "shape": "line", "geometry": {"points": [[5, 5], [6, 70]]}},
        {"label": "cat", "shape": "point", "geometry": {"x": 7, "y": 8}, "properties": {"kind": "tabby"}},
    ])
    run_export(owner, det_dataset, f"{root}/exp-voc", format="voc")
    xml = read(f"{root}/exp-voc/b.xml").decode()
    assert "<dashed>1</dashed>" in xml and "<name>kind</name>" in xml and "Persian &amp; &lt;cat&gt;" in xml
    again = make_dataset(name="voc-again", label_type="object_detection")
    op = run_import(again, f"{root}/exp-voc", "voc")
    assert op.error_count == 0
    assert shapes_of(again) == shapes_of(det_dataset)
    dashed = Annotation.objects.get(dataset=again, shape="line", properties__has_key=LINE_STYLE_KEY)
    assert dashed.geometry["points"] == [[0, 0], [100, 80], [110, 5]]
    # An independent reader (the standard library's XML parser) sees the attributes and the flag.
    doc = StdET.fromstring(read(f"{root}/exp-voc/b.xml"))
    first = doc.find("object")
    assert {a.findtext("name"): a.findtext("value") for a in first.iter("attribute")} == {
        "color": "white", "kind": "Persian & <cat>"}
    assert [o.findtext("dashed") for o in doc.iter("object") if o.find("line") is not None] == ["1", None]


def test_voc_attribute_without_a_name_is_a_per_file_error(make_dataset, run_import, root):
    put(f"{root}/bad/a.jpg", image_bytes(100, 80))
    put(f"{root}/bad/a.xml", "<annotation><size><width>100</width><height>80</height></size><object><name>cat</name>"
                             "<attributes><attribute><value>x</value></attribute></attributes>"
                             "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
                             "</annotation>")
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/bad", "voc")
    (error,) = op.errors.all()
    assert error.item.endswith("a.xml") and error.message.startswith('attribute 1 of object 1 ("cat") has no <name>.')


def test_yolo_export_reads_back_identically(owner, det_dataset, make_dataset, run_import, root, tmp_path):
    from globox import AnnotationSet

    run_export(owner, det_dataset, f"{root}/exp-yolo", format="yolo")
    assert read(f"{root}/exp-yolo/obj.names").decode() == "cat\ndog\n"
    again = make_dataset(name="yolo-again", label_type="object_detection")
    op = run_import(again, f"{root}/exp-yolo", "yolo")
    assert op.error_count == 0
    assert boxes_of(again) == boxes_of(det_dataset)
    # An independent reader: the Darknet layout parsed here from the files alone (obj.names, the
    # subset lists, each image's size from Pillow), every line converted back to pixel corners.
    from PIL import Image

    names = read(f"{root}/exp-yolo/obj.names").decode().split()
    independent = []
    for subset in ("train.txt", "valid.txt"):
        if not get_storage().exists(parse(f"{root}/exp-yolo/{subset}")):
            continue
        for image_rel in read(f"{root}/exp-yolo/{subset}").decode().split():
            image_rel = image_rel.removeprefix("data/")
            width, height = Image.open(io.BytesIO(read(f"{root}/exp-yolo/{image_rel}"))).size
            for line in read(f"{root}/exp-yolo/{image_rel.rsplit('.', 1)[0]}.txt").decode().splitlines():
                cls, xc, yc, w, h = int(line.split()[0]), *map(float, line.split()[1:])
                independent.append((image_rel.rsplit("/", 1)[-1], names[cls], tuple(round(v, 2) for v in (
                    (xc - w / 2) * width, (yc - h / 2) * height, (xc + w / 2) * width, (yc + h / 2) * height))))
    assert sorted(independent) == boxes_of(det_dataset)
    # And globox's Darknet reader, over each subset folder (images and their .txt side by side).
    local = local_copy(f"{root}/exp-yolo", tmp_path)
    read_by_globox = []
    for folder in sorted(p for p in local.iterdir() if p.is_dir() and any(p.glob("*.txt"))):
        read_by_globox += globox_boxes(AnnotationSet.from_yolo_darknet(folder, image_folder=folder), names)
    assert sorted(read_by_globox) == boxes_of(det_dataset)


def test_classification_default_export_and_filter(owner, make_dataset, run_import, root):
    put(f"{root}/src/Cat/1.jpg", image_bytes())
    put(f"{root}/src/Dog/2.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    dog = dataset.labels.get(name="Dog")
    op = run_export(owner, dataset, f"{root}/exp", filter_params={"label": [str(dog.pk)]})
    assert op.result["exported"] == 1
    assert read(f"{root}/exp/Dog/2.txt").decode() == "Dog\n"
    assert not get_storage().exists(parse(f"{root}/exp/Cat/1.jpg"))


def test_csv_export_escapes_formulas(owner, make_dataset, run_import, root):
    # OWASP CSV Injection / ASVS V1.2.10: a leading = + - @ gets a single quote; quotes are doubled.
    put(f"{root}/txt/a.txt", "=SUM(A1)\tpositive\n@cmd\tnegative\n+1+cmd|' /C calc'!A0\tnegative\n"
                             "-2+3\tpositive\nplain \"quoted\" text\tpositive\n")
    dataset = make_dataset(data_type="text", label_type="text_classification")
    run_import(dataset, f"{root}/txt", "text-cls-combined")
    run_export(owner, dataset, f"{root}/exp", format="csv")
    rows = list(csv.reader(io.StringIO(read(f"{root}/exp/dataset-8153.csv").decode())))
    assert rows[0] == ["id", "file", "text", "labels", "usage", "hard"]
    texts = sorted(r[2] for r in rows[1:])
    assert texts == ["'+1+cmd|' /C calc'!A0", "'-2+3", "'=SUM(A1)", "'@cmd", 'plain "quoted" text']
    assert '"plain ""quoted"" text"' in read(f"{root}/exp/dataset-8153.csv").decode()


def test_export_refusals_have_no_side_effect(owner, outsider, det_dataset, make_dataset, root):
    with pytest.raises(ValidationError) as exc:
        export_start(user=owner, dataset=det_dataset, method="storage",
                     path=parse(f"{det_dataset.input_location}/inside"))
    assert exc.value.message_dict["path"][0].startswith("The save path cannot be the dataset's input location")
    text = make_dataset(name="txt", data_type="text", label_type="text_entity")
    with pytest.raises(ValidationError) as exc:
        export_start(user=owner, dataset=text, method="storage", path=parse(f"{root}/x"), format="voc")
    assert exc.value.message_dict["format"] == ["PASCAL VOC export is not offered for named entity datasets."]
    with pytest.raises(ValidationError) as exc:
        export_start(user=owner, dataset=det_dataset, method="new_dataset", path=parse(f"{root}/new"),
                     name="copy", output_path=parse(f"{root}/new/out"))
    assert exc.value.message_dict["output_path"] == [
        "output location cannot be the same as or a sub-directory of the import path"]
    with pytest.raises(ValidationError) as exc:
        export_start(user=owner, dataset=det_dataset, method="storage", path=parse(f"{root}/x"),
                     filter_params={"hard": "maybe"})
    assert exc.value.message_dict["filter.hard"] == ['"hard" is yes or no.']
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        export_start(user=outsider, dataset=det_dataset, method="storage", path=parse(f"{root}/x"))
    assert DatasetOperation.objects.filter(kind="export").count() == 0


def test_export_as_new_dataset(owner, det_dataset, root):
    op = run_export(owner, det_dataset, f"{root}/newds", method="new_dataset", name="det-copy",
                    output_path=parse(f"{root}/newds_out"))
    created = Dataset.objects.get(name="det-copy")
    assert op.result["new_dataset"] == {"id": created.pk, "name": "det-copy"}
    follow = DatasetOperation.objects.get(dataset=created, kind="import")
    assert operation_execute(follow.pk) == "succeeded"
    assert boxes_of(created) == boxes_of(det_dataset)
    assert labels_by_file(created) == labels_by_file(det_dataset)


def test_exported_file_is_independent_of_later_dataset_writes(owner, det_dataset, root):
    """Exports may hard-link on local storage; replacing the dataset's file afterwards leaves the export intact."""
    run_export(owner, det_dataset, f"{root}/exp-raw", format="coco")
    exported = read(f"{root}/exp-raw/images/a.jpg")
    source = det_dataset.samples.get(file_name="a.jpg").source
    put(source, image_bytes(10, 10))
    assert read(f"{root}/exp-raw/images/a.jpg") == exported != read(source)


def test_coco_segmentation_round_trip_through_pycocotools(owner, make_dataset, run_import, root, tmp_path):
    """COCO polygon segmentation (beyond the spec): imported as polygons, an RLE mask is a per-item
    error, and the export loads in pycocotools with the same polygon and a mask of the right area."""
    from pycocotools.coco import COCO

    put(f"{root}/cs/images/a.jpg", image_bytes(100, 80))
    polygon = [10, 10, 60, 10, 60, 50, 10, 50]
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon],
                            "bbox": [10, 10, 50, 40], "area": 2000, "iscrowd": 0},
                           {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 1, 1],
                            "segmentation": {"counts": [0, 1], "size": [80, 100]}}],
           "categories": [{"id": 1, "name": "road"}]}
    put(f"{root}/cs/instances.json", json.dumps(doc))
    dataset = make_dataset(name="seg", label_type="image_segmentation")
    op = run_import(dataset, f"{root}/cs/instances.json", "coco")
    assert [(e.code, e.message) for e in op.errors.all()] == [
        ("ANNOTATION_PARSE_ERROR", "annotation 2 is an RLE mask; only polygon segmentation is read.")]
    assert Annotation.objects.get(dataset=dataset).geometry == {"points": [[10, 10], [60, 10], [60, 50], [10, 50]]}
    run_export(owner, dataset, f"{root}/exp-cs", format="coco")
    local = tmp_path / "annotations.json"
    local.write_bytes(read(f"{root}/exp-cs/annotations.json"))
    coco = COCO(str(local))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert [float(v) for v in ann["segmentation"][0]] == polygon
    assert coco.loadCats(ann["category_id"])[0]["name"] == "road"
    assert abs(int(coco.annToMask(ann).sum()) - 2000) <= 100  # rasterised 50×40 polygon
