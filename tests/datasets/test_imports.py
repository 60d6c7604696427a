"""Imports: every layout, every bad input with its per-item message, idempotency, sync (spec §15 items 10–27)."""
import io
import json
import struct
import wave
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.datasets.choices import LabelStatus
from apps.datasets.models import Annotation, Label, Sample
from apps.datasets.operations import operation_execute
from apps.datasets.services import operation_start

from tests.storage.backends import moto_endpoint, storage_backend  # noqa: F401

from .conftest import errors_of, image_bytes, labels_by_file, put, read

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "datasets"


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack("<h", 0) * int(rate * seconds))
    return out.getvalue()


def test_imagenet_folder_labels_from_innermost_folder(make_dataset, run_import, root):
    put(f"{root}/src/Cat/1.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/src/Dog/2.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/src/a/b/Cat/x.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/src/loose.jpg", image_bytes(fmt="JPEG"))
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/src", "imagenet-folder")
    assert op.status == "succeeded", op.message
    assert labels_by_file(dataset) == {"1.jpg": ["Cat"], "2.jpg": ["Dog"], "x.jpg": ["Cat"], "loose.jpg": []}
    assert (dataset.sample_count, dataset.labeled_count) == (4, 3)
    assert sorted(Label.objects.filter(dataset=dataset).values_list("name", flat=True)) == ["Cat", "Dog"]
    # Files were copied into the dataset's input folder (item 27), thumbnails made.
    sample = dataset.samples.get(file_name="x.jpg")
    assert sample.source == f"{dataset.input_location}/a/b/Cat/x.jpg"
    assert get_storage().exists(parse(sample.source))
    assert (sample.width, sample.height, len(sample.sha256)) == (64, 48, 64)
    assert get_storage().exists(parse(sample.thumbnail))


def test_reimport_is_idempotent(make_dataset, run_import, root):
    put(f"{root}/src/Cat/1.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/src/Dog/2.jpg", image_bytes(fmt="JPEG"))
    dataset = make_dataset()
    run_import(dataset, f"{root}/src", "imagenet-folder")
    op = run_import(dataset, f"{root}/src", "imagenet-folder")
    assert op.result["created"] == 0 and op.result["existing"] == 2
    assert Sample.objects.filter(dataset=dataset).count() == 2
    assert Annotation.objects.filter(dataset=dataset).count() == 2


def test_image_cls_txt_multi_label(make_dataset, run_import, root):
    put(f"{root}/src/d1/2.jpg", image_bytes())
    put(f"{root}/src/d1/2.txt", "Cat\nDog\n")
    put(f"{root}/src/d2/3.png", image_bytes(fmt="PNG"))
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/src", "image-cls-txt")
    assert op.status == "succeeded"
    assert labels_by_file(dataset) == {"2.jpg": ["Cat", "Dog"], "3.png": []}
    assert dataset.samples.get(file_name="3.png").label_status == LabelStatus.UNLABELED


def test_voc_shapes_bounds_and_parse_errors(make_dataset, run_import, root):
    put(f"{root}/voc/260730932.jpg", image_bytes(767, 959, fmt="JPEG"))
    put(f"{root}/voc/260730932.xml", (FIXTURES / "detection_voc.xml").read_text())
    put(f"{root}/voc/out.jpg", image_bytes(100, 100, fmt="JPEG"))
    put(f"{root}/voc/out.xml", "<annotation><size><width>100</width><height>100</height></size>"
        "<object><name>ok</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax><ymax>50</ymax></bndbox></object>"
        "<object><name>far</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>150</xmax><ymax>50</ymax></bndbox>"
        "</object></annotation>")
    put(f"{root}/voc/typo.jpg", image_bytes(554, 606, fmt="JPEG"))
    put(f"{root}/voc/typo.xml", "<annotation><size><width>554</width><height>606</height></size><object>"
        "<name>Cat</name><bndbox><xmin>279</xmin><ymin>198</ymin><xmax>456</xmax><ymin>421</ymin></bndbox>"
        "</object></annotation>")
    put(f"{root}/voc/evil.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/voc/evil.xml", (FIXTURES / "voc_external_entity.xml").read_text())
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/voc", "voc")
    assert op.status == "succeeded"
    shapes = sorted((a.label.name, a.shape) for a in Annotation.objects.filter(sample__file_name="260730932.jpg"))
    assert shapes == [("bag", "bndbox"), ("boots", "polygon"), ("circle", "circle"), ("line", "line"),
                      ("point", "point")]
    boots = Annotation.objects.get(label__name="boots")
    assert boots.geometry == {"points": [[373, 264], [500, 198], [437, 76], [310, 142]]}
    assert (boots.hard, boots.hard_coefficient) == (True, 0.8)
    assert labels_by_file(dataset)["out.jpg"] == ["ok"]
    errors = {(item, code): e for (item, line, code), e in zip(errors_of(op), op.errors.order_by("id"))}
    assert set(errors) == {("out.jpg", "BOX_OUT_OF_BOUNDS"), ("typo.xml", "ANNOTATION_PARSE_ERROR"),
                           ("evil.xml", "ANNOTATION_PARSE_ERROR")}
    assert errors[("typo.xml", "ANNOTATION_PARSE_ERROR")].message == '<bndbox> of object 1 ("Cat") has no <ymax>.'
    assert "entities or external references" in errors[("evil.xml", "ANNOTATION_PARSE_ERROR")].message
    assert "far" in errors[("out.jpg", "BOX_OUT_OF_BOUNDS")].message
    # Images whose XML was refused still arrive, unlabeled; nothing else is lost.
    assert dataset.sample_count == 4
    assert labels_by_file(dataset)["evil.jpg"] == [] and labels_by_file(dataset)["typo.jpg"] == []


def test_voc_segmentation_reads_polygon_and_mask_colour(make_dataset, run_import, root):
    put(f"{root}/seg/image_0006.jpg", image_bytes(230, 300, fmt="JPEG"))
    put(f"{root}/seg/image_0006.xml", (FIXTURES / "segmentation_voc.xml").read_text())
    dataset = make_dataset(label_type="image_segmentation")
    op = run_import(dataset, f"{root}/seg", "voc-seg")
    assert op.status == "succeeded" and op.error_count == 0
    ann = Annotation.objects.get(dataset=dataset)
    assert (ann.label.name, ann.shape, ann.properties["mask_color"]) == ("bike", "polygon", "193,243,53")
    assert len(ann.geometry["points"]) == 7
    assert dataset.samples.get().properties["mask_source"].endswith("segmentationClassRaw/image_0006.png")


def _yolo(root, *, names=True, train=True, valid=True):
    if names:
        put(f"{root}/yolo/obj.names", "cat\ndog\n")
    put(f"{root}/yolo/obj.data", "classes = 2\nnames = obj.names\ntrain = train.txt\nvalid = valid.txt\n")
    if train:
        put(f"{root}/yolo/train.txt", "obj_train_data/a.jpg\n")
        put(f"{root}/yolo/obj_train_data/a.jpg", image_bytes(200, 100, fmt="JPEG"))
        put(f"{root}/yolo/obj_train_data/a.txt", "0 0.250000 0.400000 0.300000 0.400000\n1 0.5 0.5 0.2 0.2\n7 1 1 1 1\n")
    if valid:
        put(f"{root}/yolo/valid.txt", "obj_valid_data/b.jpg\n")
        put(f"{root}/yolo/obj_valid_data/b.jpg", image_bytes(100, 100, fmt="JPEG"))
        put(f"{root}/yolo/obj_valid_data/b.txt", "1 0.5 0.5 0.5 0.5\n")
    put(f"{root}/yolo/test.txt", "obj_test_data/c.jpg\n")


def test_yolo_boxes_to_pixels_and_usage(make_dataset, run_import, root):
    _yolo(root)
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/yolo", "yolo")
    assert op.status == "succeeded"
    a = dataset.samples.get(file_name="a.jpg")
    b = dataset.samples.get(file_name="b.jpg")
    assert (a.usage, b.usage) == ("TRAIN", "EVAL")
    cat = Annotation.objects.get(sample=a, label__name="cat")
    assert cat.geometry == {"xmin": 20, "ymin": 20, "xmax": 80, "ymax": 60}
    assert errors_of(op) == [("a.txt", 3, "ANNOTATION_PARSE_ERROR")]
    assert dataset.sample_count == 2  # the test subset is ignored


@pytest.mark.parametrize("missing,message", [
    ({"names": False}, "The YOLO layout needs obj.names (the label set); it is missing."),
    ({"train": False, "valid": False},
     "The YOLO layout needs train.txt or valid.txt (at least one subset); both are missing."),
])
def test_yolo_structure_errors_fail_the_run(make_dataset, run_import, root, missing, message):
    _yolo(root, **missing)
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/yolo", "yolo")
    assert (op.status, op.message) == ("failed", message)


def test_text_combined_gbk_and_utf8(make_dataset, run_import, root):
    put(f"{root}/txt/gbk.txt", (FIXTURES / "text_cls_gbk.txt").read_bytes())
    put(f"{root}/txt/utf8.txt", "手感很好\tpositive\n音量键不好用\tnegative,bad\n\n")
    dataset = make_dataset(data_type="text", label_type="text_classification")
    op = run_import(dataset, f"{root}/txt", "text-cls-combined")
    assert op.status == "succeeded" and op.error_count == 0
    texts = {s.text: sorted(a.label.name for a in s.annotations.all()) for s in dataset.samples.all()}
    assert texts == {"手感很好，反应速度很快": ["positive"], "没充一会电源怎么也会发热呢": ["negative"],
                     "手感很好": ["positive"], "音量键不好用": ["bad", "negative"]}


def test_text_separate_mode_and_line_count_mismatch(make_dataset, run_import, root):
    put(f"{root}/txt/C1.txt", "good phone\nbad battery\n")
    put(f"{root}/txt/C1_result.txt", "positive\nnegative\n")
    put(f"{root}/txt/C2.txt", "one\ntwo\nthree\n")
    put(f"{root}/txt/C2_result.txt", "positive\n")
    dataset = make_dataset(data_type="text", label_type="text_classification")
    op = run_import(dataset, f"{root}/txt", "text-cls-separate")
    assert {s.text: [a.label.name for a in s.annotations.all()] for s in dataset.samples.all()} == {
        "good phone": ["positive"], "bad battery": ["negative"]}
    assert errors_of(op) == [("C2_result.txt", None, "LINE_COUNT_MISMATCH")]
    assert op.errors.get().message == ("C2_result.txt has 1 lines but C2.txt has 3; line i of the result file labels "
                                       "line i of the text file.")


def test_text_not_utf8_nor_gbk_reported(make_dataset, run_import, root):
    put(f"{root}/txt/bad.txt", b"\xff\xfe\xfa\x80\x81 broken")
    put(f"{root}/txt/ok.txt", "fine line\n")
    dataset = make_dataset(data_type="text", label_type="text_entity")
    op = run_import(dataset, f"{root}/txt", "raw")
    assert errors_of(op) == [("bad.txt", None, "ENCODING_ERROR")]
    assert [s.text for s in dataset.samples.all()] == ["fine line"]


def test_sound_classification_folder(make_dataset, run_import, root):
    put(f"{root}/audio/Cat/10.wav", wav_bytes(0.5))
    dataset = make_dataset(data_type="audio", label_type="audio_classification")
    op = run_import(dataset, f"{root}/audio", "audio-cls-folder")
    assert op.status == "succeeded"
    sample = dataset.samples.get()
    assert (labels_by_file(dataset), sample.duration) == ({"10.wav": ["Cat"]}, 0.5)


@pytest.mark.parametrize("data_type,label_type,files", [
    ("audio", "audio_content", {"a.wav": None, "skip.mp3": None}),
    ("audio", "audio_segmentation", {"a.wav": None}),
    ("video", "video", {"clip.mp4": b"\x00\x00\x00\x18ftypmp42"}),
    ("free_format", "free_format", {"x.gif": b"GIF89a", "deep/er/tool.exe": b"MZ", "n.txt": b"hi",
                                    "p.png": image_bytes(), "broken.jpg": b"not really"}),
])
def test_raw_directory_import(make_dataset, run_import, root, data_type, label_type, files):
    for name, data in files.items():
        put(f"{root}/raw/{name}", data if data is not None else wav_bytes())
    dataset = make_dataset(data_type=data_type, label_type=label_type)
    op = run_import(dataset, f"{root}/raw", "raw")
    accepted = {n.rpartition("/")[2] for n in files if not n.endswith(".mp3")}
    assert {s.file_name for s in dataset.samples.all()} == accepted
    if "skip.mp3" in files:
        assert errors_of(op) == [("skip.mp3", None, "UNSUPPORTED_EXTENSION")]
        assert op.errors.get().message == ('".mp3" files are not accepted by Audio datasets; accepted: .wav.')
    if data_type == "free_format":
        formats = {s.file_name: s.format_category for s in dataset.samples.all()}
        assert formats == {"x.gif": "other", "tool.exe": "other", "n.txt": "text", "p.png": "image",
                           "broken.jpg": "image"}
        assert dataset.samples.get(file_name="p.png").thumbnail != ""
        assert dataset.samples.get(file_name="broken.jpg").thumbnail == ""
        assert dataset.samples.get(file_name="tool.exe").path_display.endswith("-in/deep/er)")


def _manifest(root, name, text_replace=True):
    text = (FIXTURES / name).read_text()
    return text.replace("s3://path/", f"s3://{parse(root).bucket}/path/") if text_replace else text


MANIFEST_CASES = [
    ("image_classification.manifest", "image", "image_classification", {"path/to/image1.jpg": image_bytes()}),
    ("image_segmentation.manifest", "image", "image_segmentation",
     {"path/to/image1.jpg": image_bytes(230, 300), "path/to/annotation/image1.xml": "seg"}),
    ("text_classification.manifest", "text", "text_classification", {}),
    ("named_entity.manifest", "text", "text_entity", {}),
    ("text_triplet.manifest", "text", "text_triplet", {}),
    ("object_detection.manifest", "image", "object_detection",
     {"path/to/image1.jpg": image_bytes(767, 959), "path/to/annotation1.xml": "det"}),
    ("sound_classification.manifest", "audio", "audio_classification", {"path/to/pets.wav": "wav"}),
    ("speech_content.manifest", "audio", "audio_content", {"path/to/audio1.wav": "wav"}),
    ("speech_segmentation.manifest", "audio", "audio_segmentation", {"path/to/audio1.wav": "wav"}),
    ("video.manifest", "video", "video",
     {"path/to/annotation1_t1.473722.jpg": image_bytes(767, 959), "path/to/annotation1_t1.473722.xml": "det"}),
]
EXPECTED = {
    "image_classification.manifest": [("animal", "none", "model"), ("cat", "none", "human")],
    "image_segmentation.manifest": [("bike", "polygon", "human")],
    "text_classification.manifest": [("positive", "none", "human")],
    "named_entity.manifest": [("Category", "span", "human"), ("Person", "span", "human")],
    "text_triplet.manifest": [("Author", "relation", "human"), ("Book", "span", "human"), ("Person", "span", "human"),
                              ("Works", "relation", "human")],
    "object_detection.manifest": [("bag", "bndbox", "human"), ("boots", "polygon", "human"),
                                  ("circle", "circle", "human"), ("line", "line", "human"),
                                  ("point", "point", "human")],
    "sound_classification.manifest": [("cat", "none", "human")],
    "speech_content.manifest": [("", "none", "human")],
    "speech_segmentation.manifest": [("", "segment", "human"), ("", "segment", "human")],
    "video.manifest": [("bag", "bndbox", "human"), ("boots", "polygon", "human"), ("circle", "circle", "human"),
                       ("line", "line", "human"), ("point", "point", "human")],
}


@pytest.mark.parametrize("fixture,data_type,label_type,files", MANIFEST_CASES)
def test_manifest_fixtures_import(make_dataset, run_import, root, fixture, data_type, label_type, files):
    for key, data in files.items():
        data = {"seg": (FIXTURES / "segmentation_voc.xml").read_text(), "det": (FIXTURES / "detection_voc.xml")
                .read_text(), "wav": wav_bytes()}.get(data, data) if isinstance(data, str) else data
        put(f"{root}/{key}", data)
    put(f"{root}/m/{fixture}", _manifest(root, fixture))
    dataset = make_dataset(data_type=data_type, label_type=label_type)
    op = run_import(dataset, f"{root}/m/{fixture}", "manifest")
    assert op.status == "succeeded" and errors_of(op) == [], list(op.errors.values_list("message", flat=True))
    sample = dataset.samples.get()
    got = sorted((a.label.name if a.label_id else "", a.shape, a.source) for a in sample.annotations.all())
    assert got == EXPECTED[fixture]
    if fixture == "text_classification.manifest":
        assert sample.text == "I like this product "  # content kept verbatim, label name trimmed
    if fixture == "text_triplet.manifest":
        assert sample.text.startswith('"Three Body"')
        assert Annotation.objects.get(ref_id="R1").geometry == {"from": "E1", "to": "E2"}
        assert Label.objects.get(dataset=dataset, name="Author").kind == "relation"
    if fixture == "named_entity.manifest":
        person = Annotation.objects.get(label__name="Person")
        assert sample.text[person.geometry["start"]:person.geometry["end"]] == "Michael Jordan"
    if fixture == "speech_segmentation.manifest":
        assert sorted(a.geometry["start"] for a in sample.annotations.all()) == [70.123, 82.754]
    if fixture == "image_classification.manifest":
        assert (sample.pk, sample.usage, sample.hard, sample.hard_coefficient) == (
            "0162005993f8065ef47eefb59d1e4970", "TRAIN", True, 0.8)
        assert sample.properties == {"inference-loc": "/path/to/inference-output"}
        model = Annotation.objects.get(sample=sample, label__name="animal")
        assert (model.annotated_by, model.confidence) == ("modelarts/active-learning", 0.8)
    if fixture == "video.manifest":
        assert sample.properties["@modelarts:time_in_video"] == 1.473722


def test_manifest_bad_lines_reported_others_imported(make_dataset, run_import, root):
    bucket = parse(root).bucket
    for name in ("a", "b", "c"):
        put(f"{root}/imgs/{name}.jpg", image_bytes())
    lines = [
        json.dumps({"source": f"s3://{bucket}/imgs/a.jpg", "usage": "train"}),
        '{"source": "imgs/b.jpg", "usage": ',
        json.dumps({"source": "../imgs/b.jpg", "usage": "Eval", "annotation": [
            {"type": "image_classification", "name": "dog"}]}),
        json.dumps({"source": f"obs://{bucket}/imgs/missing.jpg"}),
        json.dumps({"source": f"/{bucket}/imgs/c.jpg", "hard": True}),
        json.dumps({"usage": "TRAIN"}),
    ]
    put(f"{root}/m/set.manifest", "\n".join(lines) + "\n")
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/m/set.manifest", "manifest")
    assert op.status == "succeeded"
    assert sorted(errors_of(op)) == [("set.manifest", 2, "MALFORMED_LINE"), ("set.manifest", 4, "MISSING_SOURCE"),
                                     ("set.manifest", 6, "MALFORMED_LINE")]
    samples = {s.file_name: (s.usage, s.hard) for s in dataset.samples.all()}
    assert samples == {"a.jpg": ("TRAIN", False), "b.jpg": ("EVAL", False), "c.jpg": ("", True)}
    assert labels_by_file(dataset)["b.jpg"] == ["dog"]
    # Decoding and thumbnails were left to a background run, started on commit.
    from apps.datasets.models import DatasetOperation

    thumbs = DatasetOperation.objects.get(dataset=dataset, kind="thumbnails")
    assert operation_execute(thumbs.pk) == "succeeded"
    assert dataset.samples.get(file_name="a.jpg").width == 64


def test_manifest_thumbnails_run_decodes_in_chunks_and_reports_bad_files(storage_backend, make_dataset, run_import,
                                                                           root, monkeypatch, settings):
    """The background run after a metadata import gives each image its size, hash and preview,
    chunk by chunk; a file that is not an image, one deleted since the import and one grown past
    the size limit are reported by name, and their samples keep no preview. On either backend."""
    import hashlib

    from apps.datasets import imports
    from apps.datasets.models import DatasetOperation

    monkeypatch.setattr(imports, "THUMBNAIL_CHUNK", 2)
    bucket = parse(root).bucket
    good = {f"ok{i}.jpg": image_bytes(30 + i, 20, fmt="JPEG") for i in range(5)}
    for name, data in {**good, "fake.jpg": b"not an image", "gone.jpg": image_bytes(), "big.jpg": image_bytes()}.items():
        put(f"{root}/imgs/{name}", data)
    names = [*good, "fake.jpg", "gone.jpg", "big.jpg"]
    put(f"{root}/m/set.manifest", "\n".join(json.dumps({"source": f"s3://{bucket}/imgs/{n}"}) for n in names) + "\n")
    dataset = make_dataset()
    assert run_import(dataset, f"{root}/m/set.manifest", "manifest").result["created"] == 8
    stored = dict(dataset.samples.values_list("file_name", "source"))  # the copies in the input folder
    get_storage().delete(parse(stored["gone.jpg"]))
    put(stored["big.jpg"], b"x" * 2048)
    settings.ATELIER_DATASET_MAX_IMAGE_BYTES = 1024
    thumbs = DatasetOperation.objects.get(dataset=dataset, kind="thumbnails")
    assert operation_execute(thumbs.pk) == "succeeded"
    thumbs.refresh_from_db()
    assert thumbs.result["processed"] == 8
    assert sorted((e.item.rpartition("/")[2], e.code) for e in thumbs.errors.all()) == [
        ("big.jpg", "FILE_TOO_LARGE"), ("fake.jpg", "CORRUPT_IMAGE"), ("gone.jpg", "MISSING_SOURCE")]
    samples = {s.file_name: s for s in dataset.samples.all()}
    for i, (name, data) in enumerate(good.items()):
        sample = samples[name]
        assert (sample.width, sample.height, sample.sha256) == (30 + i, 20, hashlib.sha256(data).hexdigest())
        assert read(sample.thumbnail)[:2] == b"\xff\xd8"  # a JPEG preview
    assert all(samples[n].thumbnail == "" for n in ("fake.jpg", "gone.jpg", "big.jpg"))


def test_manifest_ids_kept_when_free_and_property_checked(make_dataset, run_import, root):
    """A line's 32-hex "id" becomes the sample id unless a sample (of any dataset) has it; a line whose
    "property" is not an object is reported and the others imported; re-importing adds nothing."""
    bucket = parse(root).bucket
    for name in ("a", "b"):
        put(f"{root}/imgs/{name}.jpg", image_bytes())
    ids = ["a" * 32, "B" * 32]
    lines = [json.dumps({"source": f"s3://{bucket}/imgs/a.jpg", "id": ids[0]}),
             json.dumps({"source": f"s3://{bucket}/imgs/b.jpg", "id": ids[1]}),
             json.dumps({"source": f"s3://{bucket}/imgs/a.jpg", "property": "tall"})]
    put(f"{root}/m/set.manifest", "\n".join(lines) + "\n")
    first = make_dataset()
    op = run_import(first, f"{root}/m/set.manifest", "manifest")
    assert errors_of(op) == [("set.manifest", 3, "MALFORMED_LINE")]
    assert "property" in op.errors.get().message
    assert sorted(first.samples.values_list("pk", flat=True)) == ["a" * 32, "b" * 32]
    again = run_import(first, f"{root}/m/set.manifest", "manifest")
    assert (again.result["created"], again.result["existing"]) == (0, 2)
    second = make_dataset(name="second")
    run_import(second, f"{root}/m/set.manifest", "manifest")
    assert second.samples.count() == 2 and not set(second.samples.values_list("pk", flat=True)) & {"a" * 32, "b" * 32}


def test_manifest_hard_only_and_by_label(make_dataset, run_import, root):
    bucket = parse(root).bucket
    for name in ("a", "b", "c"):
        put(f"{root}/imgs/{name}.jpg", image_bytes())
    lines = [json.dumps({"source": f"s3://{bucket}/imgs/{n}.jpg", "hard": hard,
                         "annotation": [{"type": "modelarts/image_classification", "name": label}]})
             for n, hard, label in (("a", "false", "cat"), ("b", "true", "dog"), ("c", "false", "dog"))]
    put(f"{root}/m/set.manifest", "\n".join(lines))
    hard = make_dataset(name="hard-only")
    run_import(hard, f"{root}/m/set.manifest", "manifest", hard_only=True)
    assert [s.file_name for s in hard.samples.all()] == ["b.jpg"]
    by_label = make_dataset(name="by-label")
    run_import(by_label, f"{root}/m/set.manifest", "manifest", labels=["dog"])
    assert labels_by_file(by_label) == {"b.jpg": ["dog"], "c.jpg": ["dog"]}
    assert list(Label.objects.filter(dataset=by_label).values_list("name", flat=True)) == ["dog"]


def test_bad_images_reported_per_file(make_dataset, run_import, root, settings):
    settings.ATELIER_DATASET_MAX_IMAGE_BYTES = 200_000
    good = image_bytes(fmt="JPEG")
    put(f"{root}/imgs/good.jpg", good)
    put(f"{root}/imgs/truncated.jpg", image_bytes(256, 256, fmt="JPEG")[:400])
    put(f"{root}/imgs/notes.png", b"this is plain text, not a PNG")
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    put(f"{root}/imgs/bomb.png", bomb.getvalue())
    put(f"{root}/imgs/huge.bmp", b"BM" + b"\x00" * 200_001)
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/imgs", "raw")
    assert op.status == "succeeded"
    assert sorted(errors_of(op)) == [("bomb.png", None, "DECOMPRESSION_BOMB"), ("huge.bmp", None, "FILE_TOO_LARGE"),
                                     ("notes.png", None, "CORRUPT_IMAGE"), ("truncated.jpg", None, "CORRUPT_IMAGE")]
    messages = {e.item.rpartition("/")[2]: e.message for e in op.errors.all()}
    assert messages["notes.png"] == "The file has an image extension but is not an image."
    assert "400000000 pixels" in messages["bomb.png"] and "decompression bomb" in messages["bomb.png"]
    assert messages["truncated.jpg"].startswith("The image cannot be decoded (") and \
        "truncated" in messages["truncated.jpg"].lower()
    assert [s.file_name for s in dataset.samples.all()] == ["good.jpg"]


def _zip(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return out.getvalue()


def test_upload_zip_refuses_unsafe_entries(make_dataset, root, owner):
    from apps.datasets.uploads import dataset_upload

    archive = _zip([
        ("Cat/ok.jpg", image_bytes(fmt="JPEG"), None),
        ("../escape.jpg", image_bytes(fmt="JPEG"), None),
        ("/etc/absolute.jpg", image_bytes(fmt="JPEG"), None),
        ("Cat/link.jpg", b"/etc/passwd", 0o120777),
        ("Cat/bad name.jpg", image_bytes(fmt="JPEG"), None),
    ])
    from django.core.files.uploadedfile import SimpleUploadedFile

    dataset = make_dataset()
    op = dataset_upload(user=owner, dataset=dataset, files=[SimpleUploadedFile("batch.zip", archive)],
                        import_format="imagenet-folder")
    operation_execute(op.pk)
    op.refresh_from_db()
    assert op.status == "succeeded", op.message
    items = {e.item.partition("!")[2]: (e.code, e.message) for e in op.errors.all()}
    assert items == {
        "../escape.jpg": ("UNSAFE_ARCHIVE_ENTRY", 'Entries with ".." would leave the upload folder.'),
        "/etc/absolute.jpg": ("UNSAFE_ARCHIVE_ENTRY", "Absolute paths are not extracted from archives."),
        "Cat/link.jpg": ("UNSAFE_ARCHIVE_ENTRY", "Symbolic links are not extracted from archives."),
        "Cat/bad name.jpg": ("INVALID_NAME", 'The file name "bad name.jpg" contains a space; rename the file and '
                                             "try again."),
    }
    assert labels_by_file(dataset) == {"ok.jpg": ["Cat"]}
    storage_root = Path(get_storage().root)
    assert not (storage_root / parse(root).bucket / "escape.jpg").exists()


def test_upload_batch_limits(make_dataset, owner, settings):
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.datasets.uploads import dataset_upload

    settings.ATELIER_DATASET_MAX_UPLOAD_FILES = 2
    dataset = make_dataset()
    files = [SimpleUploadedFile(f"{i}.jpg", image_bytes()) for i in range(3)]
    with pytest.raises(ValidationError) as exc:
        dataset_upload(user=owner, dataset=dataset, files=files, import_format="raw")
    assert exc.value.message_dict["files"] == ["One upload holds at most 2 files; this one has 3."]
    assert dataset.operations.count() == 0


def test_coco_import(make_dataset, run_import, root):
    put(f"{root}/coco/images/a.jpg", image_bytes(100, 80))
    put(f"{root}/coco/images/b.jpg", image_bytes(100, 80))
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                      {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
                      {"id": 3, "file_name": "gone.jpg", "width": 10, "height": 10}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30]},
                           {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 5, 10, 10]},
                           {"id": 3, "image_id": 2, "category_id": 9, "bbox": [1, 1, 2, 2]}],
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    put(f"{root}/coco/instances.json", json.dumps(doc))
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/coco/instances.json", "coco")
    assert sorted(errors_of(op)) == [("instances.json", None, "ANNOTATION_PARSE_ERROR"),
                                     ("instances.json", None, "MISSING_SOURCE")]
    assert Annotation.objects.get(label__name="cat").geometry == {"xmin": 10, "ymin": 10, "xmax": 30, "ymax": 40}
    assert labels_by_file(dataset) == {"a.jpg": ["cat", "dog"], "b.jpg": []}


def test_label_studio_import(make_dataset, run_import, root):
    put(f"{root}/ls/a.jpg", image_bytes(200, 100))
    tasks = [{"id": 1, "data": {"image": "/data/upload/1/1a2b3c4d-a.jpg"}, "annotations": [{
        "completed_by": {"email": "ann@example.test"}, "result": [
            {"type": "rectanglelabels", "original_width": 200, "original_height": 100,
             "value": {"x": 10, "y": 20, "width": 50, "height": 50, "rectanglelabels": ["car"]}}]}]},
             {"id": 2, "data": {"image": "/data/upload/1/missing.jpg"}, "annotations": []}]
    put(f"{root}/ls/export.json", json.dumps(tasks))
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/ls/export.json", "labelstudio")
    assert errors_of(op) == [("export.json", None, "MISSING_SOURCE")]
    ann = Annotation.objects.get(dataset=dataset)
    assert (ann.label.name, ann.geometry, ann.annotated_by) == (
        "car", {"xmin": 20.0, "ymin": 20.0, "xmax": 120.0, "ymax": 70.0}, "ann@example.test")


def test_cvat_import(make_dataset, run_import, root):
    put(f"{root}/cvat/images/a.jpg", image_bytes(100, 100))
    put(f"{root}/cvat/annotations.xml", """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
  <image id="0" name="a.jpg" width="100" height="100">
    <box label="car" occluded="0" xtl="10.5" ytl="20" xbr="40" ybr="60"></box>
    <polygon label="road" occluded="1" points="1,1;50,1;50,50"></polygon>
  </image>
  <image id="1" name="nope.jpg" width="10" height="10"></image>
</annotations>""")
    dataset = make_dataset(label_type="object_detection")
    op = run_import(dataset, f"{root}/cvat/annotations.xml", "cvat")
    assert errors_of(op) == [("annotations.xml", None, "MISSING_SOURCE")]
    got = sorted((a.label.name, a.shape, a.geometry) for a in Annotation.objects.filter(dataset=dataset))
    assert got == [("car", "bndbox", {"xmin": 10.5, "ymin": 20.0, "xmax": 40.0, "ymax": 60.0}),
                   ("road", "polygon", {"points": [[1.0, 1.0], [50.0, 1.0], [50.0, 50.0]]})]


def test_table_import_skips_wrong_width_and_nulls_bad_values(make_dataset, root):
    put(f"{root}/tbl/a.csv", "name,age\nann,31\nbob,notanumber\nextra,1,2\n")
    put(f"{root}/tbl/b.csv", "name,age\ncid,22\n")
    dataset = make_dataset(data_type="table", label_type="table", input_location=parse(f"{root}/tbl"),
                           output_location=parse(f"{root}/tbl_out"),
                           table_schema=[{"name": "name", "type": "String"}, {"name": "age", "type": "Int"}])
    from apps.datasets.models import DatasetOperation

    op = DatasetOperation.objects.get(dataset=dataset, kind="import")
    assert operation_execute(op.pk) == "succeeded"
    op.refresh_from_db()
    assert (op.result["rows"], op.result["skipped_rows"], op.result["null_values"]) == (3, 1, 1)
    assert errors_of(op) == [("a.csv", 4, "SCHEMA_MISMATCH")]
    from apps.datasets.formats.table import table_preview

    sample = dataset.samples.get(file_name="a.csv")
    assert table_preview(sample.properties, dataset.table_schema) == (["name", "age"], [["ann", "31"], ["bob", ""]])


def test_sync_adds_new_and_removes_deleted_keeping_files(make_dataset, root, owner):
    dataset = make_dataset()
    for name in ("1", "2"):
        put(f"{dataset.input_location}/{name}.jpg", image_bytes())
    op = operation_start(user=owner, dataset=dataset, kind="sync", params={})
    operation_execute(op.pk)
    dataset.refresh_from_db()
    assert dataset.sample_count == 2
    get_storage().delete(parse(f"{dataset.input_location}/1.jpg"))
    put(f"{dataset.input_location}/3.jpg", image_bytes())
    put(f"{dataset.input_location}/4.jpg", image_bytes())
    op = operation_start(user=owner, dataset=dataset, kind="sync", params={})
    operation_execute(op.pk)
    op.refresh_from_db()
    dataset.refresh_from_db()
    assert (op.result["added"], op.result["removed"], dataset.sample_count) == (2, 1, 3)
    assert sorted(s.file_name for s in dataset.samples.all()) == ["2.jpg", "3.jpg", "4.jpg"]


def test_sample_quota(make_dataset, run_import, root, settings):
    settings.ATELIER_DATASET_MAX_SAMPLES = 2
    for name in ("a", "b", "c"):
        put(f"{root}/imgs/{name}.jpg", image_bytes())
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/imgs", "raw")
    assert dataset.sample_count == 2
    assert errors_of(op) == [("c.jpg", None, "SAMPLE_QUOTA_EXCEEDED")]


def test_create_with_labeled_import_starts_import(make_dataset, root):
    from apps.datasets.models import DatasetOperation

    put(f"{root}/src/Cat/1.jpg", image_bytes())
    dataset = make_dataset(input_location=parse(f"{root}/src"), output_location=parse(f"{root}/out"),
                           labeled=True, import_format="imagenet-folder")
    op = DatasetOperation.objects.get(dataset=dataset)
    assert (op.kind, op.params) == ("import", {"path": f"{root}/src", "format": "imagenet-folder", "labeled": True})
    operation_execute(op.pk)
    assert labels_by_file(dataset) == {"1.jpg": ["Cat"]}


def test_manifest_source_schemes_and_lenient_fields(make_dataset, run_import, root):
    """Item 23/24: file:// and manifest-relative sources, `type` without the modelarts/ prefix,
    `usage` in any case and `hard` as the strings "true"/"false" all import as ModelArts writes them."""
    bucket = parse(root).bucket
    for name in ("a", "b"):
        put(f"{root}/imgs/{name}.jpg", image_bytes())
    lines = [
        json.dumps({"source": f"file:///{bucket}/imgs/a.jpg", "usage": "tRaIn", "hard": "true",
                    "annotation": [{"type": "image_classification", "name": "cat"}]}),
        json.dumps({"source": "../imgs/b.jpg", "usage": "EVAL", "hard": "false",
                    "annotation": [{"type": "modelarts/image_classification", "name": "dog"}]}),
    ]
    put(f"{root}/m/set.manifest", "\n".join(lines) + "\n")
    dataset = make_dataset()
    op = run_import(dataset, f"{root}/m/set.manifest", "manifest")
    assert errors_of(op) == []
    assert {s.file_name: (s.usage, s.hard) for s in dataset.samples.all()} == {
        "a.jpg": ("TRAIN", True), "b.jpg": ("EVAL", False)}
    assert labels_by_file(dataset) == {"a.jpg": ["cat"], "b.jpg": ["dog"]}


def test_manifest_import_writes_the_label_index_per_batch(make_dataset, run_import, root, monkeypatch):
    """A metadata import in several batches leaves SampleLabel equal to a rebuild from its annotations
    (one row per sample and label, the sample's usage and status), touches no other dataset's rows,
    imports nothing twice when repeated, and leaves the index triggers in force for later writers."""
    from django.db import connection

    from apps.datasets import imports
    from apps.datasets.models import SampleLabel

    monkeypatch.setattr(imports, "METADATA_BATCH", 2)

    def ann(name, by="human"):
        return {"type": "modelarts/image_classification", "name": name, "annotated-by": by,
                "creation-time": "2024-01-02 03:04:05"}

    docs = [
        {"source": "img/0.jpg", "usage": "TRAIN", "annotation": [ann("cat"), ann("cat"), ann("dog", "modelarts/x")]},
        {"source": "img/1.jpg", "usage": "EVAL", "annotation": [ann("dog", "modelarts/x")]},
        {"source": "img/2.jpg", "usage": "TRAIN"},
        None,  # line 4: not JSON
        {"source": "img/missing.jpg", "usage": "TRAIN", "annotation": [ann("cat")]},
        {"source": "img/5.jpg", "usage": "TEST", "annotation": [ann("bird")]},
        {"source": "img/6.jpg", "usage": "TRAIN", "annotation": [ann("cat")]},
    ]
    for i in (0, 1, 2, 5, 6):
        put(f"{root}/src/img/{i}.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/src/set.manifest", "\n".join("{broken" if d is None else json.dumps(d) for d in docs) + "\n")

    def index(dataset):
        return sorted(SampleLabel.objects.filter(dataset=dataset).values_list(
            "sample__file_name", "label__name", "usage", "label_status"))

    def rebuilt(dataset):
        return sorted({(a.sample.file_name, a.label.name, a.sample.usage, a.sample.label_status)
                       for a in Annotation.objects.filter(dataset=dataset, label__isnull=False)
                       .select_related("label", "sample")})

    other = make_dataset(name="other")
    run_import(other, f"{root}/src/set.manifest", "manifest")
    other_index = index(other)
    dataset = make_dataset()
    revision = dataset.revision
    op = run_import(dataset, f"{root}/src/set.manifest", "manifest")
    assert op.status == "succeeded" and (op.result["created"], op.result["labeled"]) == (5, 4)
    assert sorted(errors_of(op)) == [("set.manifest", 4, "MALFORMED_LINE"), ("set.manifest", 5, "MISSING_SOURCE")]
    assert index(dataset) == rebuilt(dataset) == [
        ("0.jpg", "cat", "TRAIN", LabelStatus.LABELED), ("0.jpg", "dog", "TRAIN", LabelStatus.LABELED),
        ("1.jpg", "dog", "EVAL", LabelStatus.TO_CONFIRM), ("5.jpg", "bird", "TEST", LabelStatus.LABELED),
        ("6.jpg", "cat", "TRAIN", LabelStatus.LABELED)]
    assert Annotation.objects.filter(dataset=dataset, sample__file_name="0.jpg").count() == 3
    assert dataset.revision > revision and (dataset.sample_count, dataset.labeled_count) == (5, 3)
    assert index(other) == other_index

    again = run_import(dataset, f"{root}/src/set.manifest", "manifest")
    assert (again.result["created"], again.result["existing"]) == (0, 5)
    assert Sample.objects.filter(dataset=dataset).count() == 5 and index(dataset) == rebuilt(dataset)

    # The triggers are back: a later annotation by anyone else is indexed, and usage changes follow.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                           "('datasets_sample', 'datasets_annotation')")
            assert cursor.fetchone() == (6,)
    plain = dataset.samples.get(file_name="2.jpg")
    Annotation.objects.create(sample=plain, dataset=dataset, label=dataset.labels.get(name="bird"),
                              type="image_classification", created_at=plain.created_at)
    Sample.objects.filter(pk=plain.pk).update(usage="EVAL")
    assert ("2.jpg", "bird", "EVAL", LabelStatus.UNLABELED) in index(dataset)
    assert index(dataset) == rebuilt(dataset)
