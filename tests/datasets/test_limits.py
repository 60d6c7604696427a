"""Spec §15 item 10: the dataset limits are settings, enforced at import with a per-file reason
(which file, which line, which rule) while the files within the limits still come in. Each limit
is lowered here so tiny fixtures cross it; the defaults are checked against the spec's values."""
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.uploads import dataset_upload

from .conftest import errors_of, image_bytes, labels_by_file, put

pytestmark = pytest.mark.django_db


def test_defaults_are_the_spec_values():
    mb, gb = 1024 * 1024, 1024 ** 3
    assert (django_settings.ATELIER_DATASET_MAX_SAMPLES, django_settings.ATELIER_DATASET_MAX_LABELS) == (1_000_000,
                                                                                                          10_000)
    assert (django_settings.ATELIER_DATASET_MAX_IMAGE_BYTES, django_settings.ATELIER_DATASET_MAX_SAMPLE_BYTES,
            django_settings.ATELIER_DATASET_MAX_MANIFEST_BYTES) == (25 * mb, 5 * gb, 5 * gb)
    assert (django_settings.ATELIER_DATASET_MAX_TEXT_LINE_BYTES,
            django_settings.ATELIER_DATASET_MAX_LABEL_FILE_BYTES) == (100 * 1024, 100 * mb)
    assert (django_settings.ATELIER_DATASET_MAX_UPLOAD_FILES, django_settings.ATELIER_DATASET_MAX_UPLOAD_BYTES) == (
        100, 5 * gb)


def test_non_image_sample_size_limit(settings, make_dataset, run_import, root):
    settings.ATELIER_DATASET_MAX_SAMPLE_BYTES = 1000
    put(f"{root}/free/small.bin", b"x" * 100)
    put(f"{root}/free/big.bin", b"x" * 1001)
    dataset = make_dataset(name="free", data_type="free_format", label_type="free_format")
    op = run_import(dataset, f"{root}/free", "raw")
    assert errors_of(op) == [("big.bin", None, "FILE_TOO_LARGE")]
    assert op.errors.get().message == "The file has 1001 bytes; at most 1000 are allowed."
    assert sorted(labels_by_file(dataset)) == ["small.bin"]


def test_text_line_limit_names_the_line(settings, make_dataset, run_import, root):
    settings.ATELIER_DATASET_MAX_TEXT_LINE_BYTES = 20
    put(f"{root}/txt/a.txt", "short one\tpos\n" + "y" * 30 + "\tneg\nshort two\tneg\n")
    dataset = make_dataset(name="txt", data_type="text", label_type="text_classification")
    op = run_import(dataset, f"{root}/txt", "text-cls-combined")
    assert errors_of(op) == [("a.txt", 2, "LINE_TOO_LONG")]
    assert sorted((s.text, [a.label.name for a in s.annotations.all()]) for s in dataset.samples.all()) == [
        ("short one", ["pos"]), ("short two", ["neg"])]


def test_labeling_result_file_limit(settings, make_dataset, run_import, root):
    settings.ATELIER_DATASET_MAX_LABEL_FILE_BYTES = 200
    box = "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
    put(f"{root}/voc/a.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/voc/a.xml", f"<annotation>{box}</annotation>")
    put(f"{root}/voc/b.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/voc/b.xml", f"<annotation>{box * 3}</annotation>")
    dataset = make_dataset(name="voc", label_type="object_detection")
    op = run_import(dataset, f"{root}/voc", "voc")
    assert errors_of(op) == [("b.xml", None, "FILE_TOO_LARGE")]
    assert labels_by_file(dataset) == {"a.jpg": ["cat"], "b.jpg": []}  # the image still comes in, unlabeled


def test_manifest_size_limit_fails_the_run_with_the_rule(settings, make_dataset, run_import, root):
    settings.ATELIER_DATASET_MAX_MANIFEST_BYTES = 50
    put(f"{root}/m/a.jpg", image_bytes(fmt="JPEG"))
    put(f"{root}/m/set.manifest", '{"source": "a.jpg", "usage": "TRAIN"}\n' * 3)
    dataset = make_dataset(name="man")
    op = run_import(dataset, f"{root}/m/set.manifest", "manifest")
    assert [(e.code, e.message) for e in op.errors.all()] == [
        ("FILE_TOO_LARGE", "The manifest has 114 bytes; at most 50 are allowed.")]
    assert dataset.samples.count() == 0


def test_upload_bytes_limit_refuses_the_batch_before_storing(settings, make_dataset, owner):
    settings.ATELIER_DATASET_MAX_UPLOAD_BYTES = 100
    dataset = make_dataset()
    files = [SimpleUploadedFile("a.png", image_bytes()), SimpleUploadedFile("b.png", image_bytes())]
    total = sum(f.size for f in files)
    with pytest.raises(ValidationError) as exc:
        dataset_upload(user=owner, dataset=dataset, files=files, import_format="raw")
    assert exc.value.message_dict == {"files": [f"One upload holds at most 100 bytes; this one has {total}."]}
    assert dataset.operations.count() == 0


def test_upload_with_a_file_name_breaking_the_rules_is_refused_naming_it(make_dataset, owner):
    from apps.core.paths import parse
    from apps.core.storage import get_storage

    dataset = make_dataset()
    files = [SimpleUploadedFile("good.png", image_bytes()), SimpleUploadedFile("bad name.png", image_bytes())]
    with pytest.raises(ValidationError) as exc:
        dataset_upload(user=owner, dataset=dataset, files=files, import_format="raw")
    assert exc.value.message_dict == {"files": [
        'The file name "bad name.png" contains a space; rename the file and try again.']}
    # Nothing was stored: the batch is checked before the first file is written.
    assert dataset.operations.count() == 0
    assert not list(get_storage().walk(parse(dataset.input_location)))
