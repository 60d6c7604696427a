"""Publishing versions: names, split rules, manifest/VOC/mask files, round trip, set current, delete (items 39–47)."""
import json

import pytest
from django.core.exceptions import ValidationError

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.models import Annotation, DatasetVersion, Sample
from apps.datasets.operations import operation_execute
from apps.datasets.services import version_delete, version_set_current
from apps.datasets.versions import SPLIT_RULE, version_publish

from .conftest import image_bytes, labels_by_file, publish, put, read
from .test_imports import FIXTURES


def test_default_names_and_custom_name_rules(owner, cls_dataset):
    assert publish(owner, cls_dataset).name == "V001"
    assert publish(owner, cls_dataset).name == "V002"
    assert publish(owner, cls_dataset, name="release_1").name == "release_1"
    with pytest.raises(ValidationError) as exc:
        version_publish(user=owner, dataset=cls_dataset, name="V001")
    assert exc.value.message_dict["name"] == ['The version "V001" already exists; choose another name.']
    with pytest.raises(ValidationError) as exc:
        version_publish(user=owner, dataset=cls_dataset, name="bad name!")
    assert "name" in exc.value.message_dict
    assert DatasetVersion.objects.filter(dataset=cls_dataset).count() == 3
    assert publish(owner, cls_dataset).name == "V003"


def test_split_assigns_usage_reproducibly(owner, cls_dataset):
    version = publish(owner, cls_dataset, split_enabled=True, train_ratio=0.8)
    usage = dict(Sample.objects.filter(dataset=cls_dataset, label_status="labeled").values_list("pk", "usage"))
    assert sorted(usage.values()).count("TRAIN") == 9 and sorted(usage.values()).count("EVAL") == 2
    assert version.stats["split"] == {"train": 9, "eval": 2}
    assert Sample.objects.get(dataset=cls_dataset, file_name="unlabeled.jpg").usage == ""
    # Same seed, same assignment.
    from apps.datasets.versions import _split

    Sample.objects.filter(dataset=cls_dataset).update(usage="")
    _split(cls_dataset, version)
    assert dict(Sample.objects.filter(dataset=cls_dataset, label_status="labeled").values_list("pk", "usage")) == usage


def test_split_rule_refuses_small_labels(owner, make_dataset, run_import, root):
    for label, count in (("Cat", 5), ("Dog", 4)):
        for i in range(count):
            put(f"{root}/src/{label}/{i}.jpg", image_bytes())
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    with pytest.raises(ValidationError) as exc:
        version_publish(user=owner, dataset=dataset, split_enabled=True, train_ratio=0.8)
    assert exc.value.message_dict["split_enabled"] == [SPLIT_RULE + ' "Dog" has 4 labeled samples.']
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 0
    with pytest.raises(ValidationError) as exc:
        version_publish(user=owner, dataset=dataset, split_enabled=True, train_ratio=1.5)
    assert exc.value.message_dict["train_ratio"] == ["The training ratio is a number from 0 to 1."]


def test_split_rule_single_multi_label_sample(owner, make_dataset, run_import, root):
    for label in ("Cat", "Dog"):
        for i in range(5):
            put(f"{root}/src/{label}{i}.jpg", image_bytes())
            put(f"{root}/src/{label}{i}.txt", label)
    put(f"{root}/src/both.jpg", image_bytes())
    put(f"{root}/src/both.txt", "Cat\nDog\n")
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "image-cls-txt")
    with pytest.raises(ValidationError) as exc:
        version_publish(user=owner, dataset=dataset, split_enabled=True, train_ratio=0.5)
    assert exc.value.message_dict["split_enabled"] == [SPLIT_RULE + " There is 1 multi-label sample."]


def test_split_and_hard_only_for_their_label_types(owner, make_dataset):
    dataset = make_dataset(data_type="text", label_type="text_entity")
    with pytest.raises(ValidationError) as exc:
        version_publish(user=owner, dataset=dataset, split_enabled=True, train_ratio=0.8, hard_attribute=True)
    assert set(exc.value.message_dict) == {"split_enabled", "hard_attribute"}


def test_manifest_written_and_round_trips(owner, cls_dataset, make_dataset, run_import):
    version = publish(owner, cls_dataset, hard_attribute=False)
    assert version.status == "normal" and version.sample_count == 12 and version.labeled_count == 11
    assert version.manifest_uri == (f"{cls_dataset.output_location}/dataset-8153-{cls_dataset.uid}/annotation/V001/"
                                    "dataset-8153-V001.manifest")
    lines = [json.loads(line) for line in read(version.manifest_uri).decode().splitlines()]
    assert len(lines) == 12
    cat = next(line for line in lines if line["source"].endswith("/Cat/Cat0.jpg"))
    assert cat["source"].startswith("s3://")
    assert [(a["type"], a["name"], a["annotated-by"]) for a in cat["annotation"]] == [
        ("modelarts/image_classification", "Cat", "human")]
    assert "hard" not in cat and "hard" not in cat["annotation"][0]
    cls_dataset.refresh_from_db()
    assert cls_dataset.current_version == version
    fresh = make_dataset(name="roundtrip")
    op = run_import(fresh, version.manifest_uri, "manifest")
    assert op.error_count == 0
    assert labels_by_file(fresh) == labels_by_file(cls_dataset)


def test_hard_attribute_in_manifest_and_xml(owner, make_dataset, run_import, root):
    put(f"{root}/voc/260730932.jpg", image_bytes(767, 959))
    put(f"{root}/voc/260730932.xml", (FIXTURES / "detection_voc.xml").read_text())
    dataset = make_dataset(label_type="object_detection")
    run_import(dataset, f"{root}/voc", "voc")
    Sample.objects.filter(dataset=dataset).update(hard=True, hard_coefficient=0.8)
    version = publish(owner, dataset, hard_attribute=True)
    line = json.loads(read(version.manifest_uri).decode())
    assert (line["hard"], line["hard-coefficient"]) == ("true", 0.8)
    ann = line["annotation"][0]
    assert (ann["type"], ann["annotation-format"]) == ("modelarts/object_detection", "PASCAL VOC")
    xml = read("storage://" + ann["annotation-loc"][len("s3://"):]).decode()
    assert "<hard-coefficient>0.8</hard-coefficient>" in xml and "<bndbox>" in xml and "<circle>" in xml
    off = publish(owner, dataset, hard_attribute=False)
    line = json.loads(read(off.manifest_uri).decode())
    xml = read("storage://" + line["annotation"][0]["annotation-loc"][len("s3://"):]).decode()
    assert "hard" not in line and "hard-coefficient" not in xml
    # The detection manifest re-imports into an empty dataset with the same shapes.
    fresh = make_dataset(name="again", label_type="object_detection")
    run_import(fresh, off.manifest_uri, "manifest")
    shapes = lambda d: sorted((a.label.name, a.shape, json.dumps(a.geometry)) for a in Annotation.objects.filter(dataset=d))
    assert shapes(fresh) == shapes(dataset)


def test_segmentation_version_writes_masks(owner, make_dataset, run_import, root):
    put(f"{root}/seg/image_0006.jpg", image_bytes(230, 300))
    put(f"{root}/seg/image_0006.xml", (FIXTURES / "segmentation_voc.xml").read_text())
    dataset = make_dataset(label_type="image_segmentation")
    run_import(dataset, f"{root}/seg", "voc-seg")
    version = publish(owner, dataset)
    from PIL import Image
    import io

    masks = list(get_storage().walk(parse(version.storage_uri).child("segmentationClassRaw")))
    assert len(masks) == 1
    mask = Image.open(io.BytesIO(read(f"storage://{parse(version.storage_uri).bucket}/{masks[0].key}")))
    assert mask.size == (230, 300) and mask.getpixel((5, 5)) == (0, 0, 0)
    assert sorted(color for _, color in mask.getcolors()) == [(0, 0, 0), (193, 243, 53)]


def test_table_version_csv_escapes_formulas(owner, make_dataset, root):
    put(f"{root}/tbl/a.csv", 'name,formula\nann,=SUM(A1)\nbob,"say ""hi"""\ncid,-3\n')
    dataset = make_dataset(data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                           output_location=parse(f"{root}/tbl_out"))
    operation_execute(dataset.operations.get().pk)
    with pytest.raises(ValidationError):
        version_publish(user=owner, dataset=dataset)  # tables choose CSV or Parquet
    version = publish(owner, dataset, format="csv")
    # A single quote neutralises the formula (OWASP, ASVS V1.2.10); the plain number stays a number.
    assert read(version.manifest_uri).decode() == 'name,formula\nann,\'=SUM(A1)\nbob,"say ""hi"""\ncid,-3\n'
    # The normalised data copy keeps the value verbatim (previews and Parquet see the real data).
    from apps.datasets.formats.table import table_preview

    sample = dataset.samples.get()
    assert table_preview(sample.properties, dataset.table_schema)[1][0] == ["ann", "=SUM(A1)"]


def test_set_current_and_delete_keep_files(owner, outsider, cls_dataset):
    v1 = publish(owner, cls_dataset)
    v2 = publish(owner, cls_dataset)
    version_set_current(user=owner, version=v1)
    cls_dataset.refresh_from_db()
    assert cls_dataset.current_version == v1
    DatasetVersion.objects.filter(pk=v2.pk).update(status="failed")
    v2.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        version_set_current(user=owner, version=v2)
    assert exc.value.messages == ["Only versions whose status is Normal can be set as the current version."]
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        version_delete(user=outsider, version=v1)
    version_delete(user=owner, version=v1)
    assert not DatasetVersion.objects.filter(pk=v1.pk).exists()
    assert get_storage().exists(parse(v1.manifest_uri))
    cls_dataset.refresh_from_db()
    assert cls_dataset.current_version is None


def test_training_picker_filters_versions(owner, outsider, cls_dataset, make_dataset, root):
    from apps.datasets.selectors import versions_for_training

    split = publish(owner, cls_dataset, split_enabled=True, train_ratio=0.8)
    plain = publish(owner, cls_dataset)
    put(f"{root}/tbl/a.csv", "a,b\n1,2\n")
    table = make_dataset(name="tbl", data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                         output_location=parse(f"{root}/tbl_out"))
    operation_execute(table.operations.get().pk)
    parquet = publish(owner, table, format="parquet")
    csv = publish(owner, table, format="csv")
    assert list(versions_for_training(owner, split="split")) == [split]
    assert set(versions_for_training(owner, label_type="image_classification", split="unsplit")) == {plain}
    assert list(versions_for_training(owner, format="parquet")) == [parquet]
    assert list(versions_for_training(owner, format="csv")) == [csv]
    assert set(versions_for_training(owner, format="default")) == {split, plain}
    # Several formats: any of them (an algorithm accepting Default or CarbonData = Parquet).
    assert set(versions_for_training(owner, format=["default", "parquet"])) == {split, plain, parquet}
    assert list(versions_for_training(owner, label_type="table", format="csv", split="unsplit")) == [csv]
    assert list(versions_for_training(owner, label_type="table", split="split")) == []
    assert list(versions_for_training(owner, workspace=owner.default_workspace, format="parquet")) == [parquet]
    assert list(versions_for_training(owner, workspace=outsider.default_workspace)) == []
    assert list(versions_for_training(outsider)) == []
    with pytest.raises(ValueError, match="format is one of default, csv, parquet, not 'carbondata'"):
        versions_for_training(owner, format="carbondata")
    with pytest.raises(ValueError, match='split is "split", "unsplit" or "any"'):
        versions_for_training(owner, split="both")
    # A version without a storage folder cannot be trained on: not offered.
    DatasetVersion.objects.filter(pk=csv.pk).update(storage_uri="")
    assert list(versions_for_training(owner, format="csv")) == []


def test_parquet_version_reads_back(owner, make_dataset, root, tmp_path):
    import pyarrow.parquet as pq

    put(f"{root}/tbl/a.csv", "name,age,when\nann,31,2014-05-29\nbob,x,2001-01-02\n")
    dataset = make_dataset(data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                           output_location=parse(f"{root}/tbl_out"),
                           table_schema=[{"name": "name", "type": "String"}, {"name": "age", "type": "Int"},
                                         {"name": "when", "type": "Date"}])
    operation_execute(dataset.operations.get().pk)
    version = publish(owner, dataset, format="parquet")
    local = tmp_path / "v.parquet"
    local.write_bytes(read(version.manifest_uri))
    table = pq.read_table(local)
    assert table.column_names == ["name", "age", "when"]
    import datetime as dt

    assert table.to_pylist() == [{"name": "ann", "age": 31, "when": dt.date(2014, 5, 29)},
                                 {"name": "bob", "age": None, "when": dt.date(2001, 1, 2)}]
