"""Labeling pages: list, create, detail per scene, labels, modify, delete, workbench; outsiders get 404."""
from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.datasets.choices import LabelType
from apps.labeling.models import LabelingJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_owner(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_list_shows_progress_and_type_filter(client_owner, make_job, add_sample, owner):
    job = make_job(LabelType.IMAGE_CLASSIFICATION, name="cls-job")
    add_sample(job.dataset)
    response = client_owner.get("/labeling/?type=image_classification")
    assert response.status_code == 200
    body = response.content.decode()
    assert "cls-job" in body and "0% (0/1)" in body and "Created by me" in body and "I participate in" in body


def test_create_page_and_post(client_owner, make_dataset):
    dataset = make_dataset(LabelType.OBJECT_DETECTION, name="boxes")
    assert client_owner.get("/labeling/new").status_code == 200
    response = client_owner.post("/labeling/new", {
        "name": "boxes-job", "description": "", "labeling_type": "object_detection", "dataset": dataset.pk,
        "label_name": ["car", ""], "label_color": ["#ff0000", "#00ff00"], "label_kind": ["entity", "entity"],
        "label_from": ["", ""], "label_to": ["", ""], "label_category": ["", ""], "label_shortcut": ["", ""],
        "label_attributes": ["occluded: yes, no", ""]})
    job = LabelingJob.objects.get(name="boxes-job")
    assert response.status_code == 302 and response["Location"] == f"/labeling/{job.pk}/"
    assert list(job.dataset.labels.values_list("name", "attributes")) == [
        ("car", [{"name": "occluded", "values": ["yes", "no"]}])]


def test_create_post_shows_label_errors_inline(client_owner, make_dataset):
    dataset = make_dataset(LabelType.OBJECT_DETECTION, name="boxes2")
    response = client_owner.post("/labeling/new", {
        "name": "j2", "labeling_type": "object_detection", "dataset": dataset.pk, "description": "d" * 257,
        "label_name": ["car"], "label_color": [""]})
    assert response.status_code == 400
    assert "The description has 257 characters; at most 256 are allowed." in response.content.decode()
    assert not LabelingJob.objects.filter(name="j2").exists()


@pytest.mark.parametrize("label_type, text", [
    (LabelType.OBJECT_DETECTION, "Unlabeled"), (LabelType.NAMED_ENTITY, "Unlabeled"),
    (LabelType.SOUND_CLASSIFICATION, "Sync data source"), (LabelType.VIDEO, "All")])
def test_detail_pages_render_per_scene(client_owner, make_job, add_sample, label_type, text):
    job = make_job(label_type)
    add_sample(job.dataset, text="some text") if job.dataset.data_type == "text" else add_sample(job.dataset)
    response = client_owner.get(f"/labeling/{job.pk}/")
    assert response.status_code == 200 and text in response.content.decode()


def test_labels_edit_delete_and_workbench_pages(client_owner, make_job, add_sample):
    job = make_job(LabelType.TEXT_TRIPLET, name="triples")
    sample = add_sample(job.dataset, text="Liu Cixin wrote Three Body.")
    assert "protected" in client_owner.get(f"/labeling/{job.pk}/labels").content.decode()
    assert client_owner.get(f"/labeling/{job.pk}/edit").status_code == 200
    assert client_owner.get(f"/labeling/{job.pk}/delete").status_code == 200
    response = client_owner.get(f"/labeling/{job.pk}/label/{sample.pk}")
    assert response.status_code == 200 and 'id="workbench-config"' in response.content.decode()
    assert client_owner.get(f"/labeling/{job.pk}/label/").status_code == 302


@pytest.mark.parametrize("label_type, shown, hidden", [
    (LabelType.OBJECT_DETECTION, ["attributes"], ["kind", "start", "end", "category", "shortcut"]),
    (LabelType.TEXT_TRIPLET, ["kind", "start", "end"], ["category", "shortcut", "attributes"]),
    (LabelType.SOUND_CLASSIFICATION, ["shortcut"], ["kind", "start", "end", "category", "attributes"]),
    (LabelType.SPEECH_SEGMENTATION, ["category"], ["kind", "start", "end", "shortcut", "attributes"]),
])
def test_label_form_offers_only_the_fields_of_the_job_type(client_owner, make_job, label_type, shown, hidden):
    job = make_job(label_type)
    body = client_owner.get(f"/labeling/{job.pk}/labels").content.decode()
    assert [f for f in shown if f'name="{f}"' in body] == shown
    assert [f for f in hidden if f'name="{f}"' in body] == []
    response = client_owner.post(f"/labeling/{job.pk}/labels", {"action": "create", "name": "extra", "color": "#123456"})
    assert response.status_code == 302
    assert job.dataset.labels.filter(name="extra").exists()


def test_outsider_gets_404_everywhere(outsider, make_job, add_sample):
    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset)
    client = Client()
    client.force_login(outsider)
    for url in (f"/labeling/{job.pk}/", f"/labeling/{job.pk}/labels", f"/labeling/{job.pk}/label/{sample.pk}",
                f"/labeling/{job.pk}/samples/{sample.pk}/media", f"/labeling/{job.pk}/review"):
        assert client.get(url).status_code == 404, url


def test_media_serves_ranges_and_previews(client_owner, make_job, add_sample, settings):
    job = make_job(LabelType.OBJECT_DETECTION)
    sample = add_sample(job.dataset, width=300, height=200)
    full = b"".join(client_owner.get(f"/labeling/{job.pk}/samples/{sample.pk}/media").streaming_content)
    part = client_owner.get(f"/labeling/{job.pk}/samples/{sample.pk}/media", HTTP_RANGE="bytes=0-9")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 0-9/{len(full)}"
    assert b"".join(part.streaming_content) == full[:10]
    settings.ATELIER_LABELING_PREVIEW_EDGE = 100
    preview = client_owner.get(f"/labeling/{job.pk}/samples/{sample.pk}/media?preview=1")
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(b"".join(preview.streaming_content))).size == (100, 67)


def _boxes(owner, job, sample, boxes):
    from apps.labeling.services import annotations_save

    annotations_save(user=owner, job=job, sample=sample, version=sample.annotation_version, annotations=[
        {"label": label, "shape": "bndbox", "geometry": dict(zip(("xmin", "ymin", "xmax", "ymax"), box))}
        for label, box in boxes])


def _review_ids(response) -> list[str]:
    return [item["id"] for item in response.context["config"]["items"]]


def test_quick_review_filters_by_label_and_sorts_by_area_and_ratio(client_owner, owner, make_job, add_sample,
                                                                  django_assert_max_num_queries):
    job = make_job(LabelType.OBJECT_DETECTION)
    wide, tall, small, dog_only = (add_sample(job.dataset) for _ in range(4))
    _boxes(owner, job, wide, [("cat", (0, 0, 400, 100))])       # area 40,000, ratio 4
    _boxes(owner, job, tall, [("cat", (0, 0, 100, 300))])       # area 30,000, ratio 0.33
    _boxes(owner, job, small, [("cat", (0, 0, 20, 20)), ("cat", (0, 0, 500, 400))])  # smallest 400, ratio 1–1.25
    _boxes(owner, job, dog_only, [("dog", (0, 0, 10, 10))])
    cat = job.dataset.labels.get(name="cat")
    with django_assert_max_num_queries(16):
        response = client_owner.get(f"/labeling/{job.pk}/review?label={cat.pk}&sort=area")
    assert response.status_code == 200
    assert _review_ids(response) == [small.pk, tall.pk, wide.pk]
    assert _review_ids(client_owner.get(f"/labeling/{job.pk}/review?label={cat.pk}&sort=-area")) == [
        small.pk, wide.pk, tall.pk]  # small's largest box is 200,000
    assert _review_ids(client_owner.get(f"/labeling/{job.pk}/review?label={cat.pk}&sort=ratio")) == [
        tall.pk, small.pk, wide.pk]
    everything = client_owner.get(f"/labeling/{job.pk}/review?sort=area")
    assert _review_ids(everything) == [dog_only.pk, small.pk, tall.pk, wide.pk]
    item = everything.context["config"]["items"][0]
    assert (item["width"], item["height"], item["version"], item["annotations"][0]["label"]) == (640, 480, 1, "dog")
    detail = client_owner.get(f"/labeling/{job.pk}/?status=labeled")
    assert f'href="/labeling/{job.pk}/review"' in detail.content.decode()


def test_quick_review_is_only_for_detection_and_segmentation(client_owner, make_job):
    job = make_job(LabelType.IMAGE_CLASSIFICATION)
    response = client_owner.get(f"/labeling/{job.pk}/review")
    assert response.status_code == 302 and response["Location"] == f"/labeling/{job.pk}/"
    assert client_owner.get(f"/labeling/{make_job(LabelType.IMAGE_SEGMENTATION).pk}/review").status_code == 200


def test_add_data_page_shows_history_and_inline_errors(client_owner, make_job, bucket):
    from apps.datasets.models import DatasetOperation

    from .conftest import png_bytes, put

    job = make_job(LabelType.OBJECT_DETECTION)
    page = client_owner.get(f"/labeling/{job.pk}/data")
    assert page.status_code == 200 and "No import yet." in page.content.decode()
    refused = client_owner.post(f"/labeling/{job.pk}/data", {"source": "storage", "path": "", "labeled": "unlabeled"})
    assert refused.status_code == 400
    assert "Give the storage path to import from, or choose files to upload." in refused.content.decode()
    put(f"storage://{bucket.name}/new/a.png", png_bytes(20, 20))
    # Labeled data names the format of its annotations; raw files have none.
    refused = client_owner.post(f"/labeling/{job.pk}/data", {"source": "storage", "labeled": "labeled", "format": "raw",
                                                             "path": f"storage://{bucket.name}/new/"})
    assert refused.status_code == 400 and "Labeled data is imported with its annotations" in refused.content.decode()
    done = client_owner.post(f"/labeling/{job.pk}/data", {"source": "storage", "path": f"storage://{bucket.name}/new/",
                                                          "labeled": "labeled", "format": "voc"})
    assert done.status_code == 302 and done["Location"] == f"/labeling/{job.pk}/data"
    operation = DatasetOperation.objects.get(dataset=job.dataset)
    assert (operation.params["labeled"], operation.params["path"]) == (True, f"storage://{bucket.name}/new")
    history = client_owner.get(f"/labeling/{job.pk}/data").content.decode()
    assert f"storage://{bucket.name}/new" in history and "Imported labeled samples" in history
    detail = client_owner.get(f"/labeling/{job.pk}/").content.decode()
    assert f'href="/labeling/{job.pk}/data"' in detail and 'data-testid="delete-samples"' in detail


def test_guide_renders_rich_text_safely_and_serves_its_images(client_owner, owner, outsider, make_job):
    from apps.labeling import guide

    from .conftest import png_bytes

    job = make_job(LabelType.OBJECT_DETECTION, guide="# Boxes\nTight **around** the *visible* part.\n\n"
                                                  "- occluded: label anyway\n- <script>alert(1)</script>\n\n"
                                                  "[Policy](https://example.org/p) ![x](https://evil.example/i.png)")
    html = str(guide.render(job.guide, job))
    assert html == ('<h3>Boxes</h3><p>Tight <strong>around</strong> the <em>visible</em> part.</p>'
                    '<ul><li>occluded: label anyway</li><li>&lt;script&gt;alert(1)&lt;/script&gt;</li></ul>'
                    '<p><a href="https://example.org/p" rel="noopener noreferrer" target="_blank">Policy</a> '
                    '!<a href="https://evil.example/i.png" rel="noopener noreferrer" target="_blank">x</a></p>')
    refused = client_owner.post(f"/labeling/{job.pk}/guide/images",
                                {"image": SimpleUploadedFile("notes.txt", b"plain text")}, follow=True)
    assert "notes.txt is not a readable image (JPEG, PNG, GIF or WebP)." in refused.content.decode()
    job.refresh_from_db()
    assert "guide:" not in job.guide
    done = client_owner.post(f"/labeling/{job.pk}/guide/images",
                             {"image": SimpleUploadedFile("tight.png", png_bytes(40, 30)), "caption": "Tight box"})
    assert done.status_code == 302
    job.refresh_from_db()
    name = job.guide.rsplit("(guide:", 1)[1].rstrip(")")
    assert job.guide.endswith(f"![Tight box](guide:{name})")
    detail = client_owner.get(f"/labeling/{job.pk}/").content.decode()
    assert f'<img src="/labeling/{job.pk}/guide/{name}" alt="Tight box"' in detail
    image = client_owner.get(f"/labeling/{job.pk}/guide/{name}")
    assert (image.status_code, image["Content-Type"]) == (200, "image/png")
    assert b"".join(image.streaming_content) == png_bytes(40, 30)
    outsider_client = Client()
    outsider_client.force_login(outsider)
    assert outsider_client.get(f"/labeling/{job.pk}/guide/{name}").status_code == 404
    assert client_owner.get(f"/labeling/{job.pk}/guide/..%2Fsecret.png").status_code == 404


def test_auto_grouping_starts_from_the_all_tab(client_owner, outsider, make_job, add_sample):
    from apps.datasets.models import DatasetOperation

    job = make_job(LabelType.OBJECT_DETECTION)
    add_sample(job.dataset)
    # The entry sits on the All tab only (datasets spec §8.2), not on Unlabeled or Labeled.
    assert 'data-testid="auto-group"' not in client_owner.get(f"/labeling/{job.pk}/").content.decode()
    body = client_owner.get(f"/labeling/{job.pk}/?status=all").content.decode()
    assert f'href="/labeling/{job.pk}/auto-group"' in body and 'data-testid="attr-filter"' in body
    page = client_owner.get(f"/labeling/{job.pk}/auto-group")
    assert page.status_code == 200 and "No auto-grouping yet." in page.content.decode()
    refused = client_owner.post(f"/labeling/{job.pk}/auto-group", {"groups": "201", "handling": "attribute",
                                                                   "attribute": "grp"})
    assert refused.status_code == 400 and "Ensure this value is less than or equal to 200." in refused.content.decode()
    missing = client_owner.post(f"/labeling/{job.pk}/auto-group", {"groups": "3", "handling": "attribute"})
    assert missing.status_code == 400 and "Name the sample attribute that receives the group." in missing.content.decode()
    assert not DatasetOperation.objects.filter(dataset=job.dataset, kind="auto_group").exists()
    started = client_owner.post(f"/labeling/{job.pk}/auto-group", {"groups": "3", "handling": "attribute",
                                                                   "attribute": "grp", "features": ["brightness"]})
    assert started.status_code == 302 and started["Location"] == f"/labeling/{job.pk}/?status=all"
    op = DatasetOperation.objects.get(dataset=job.dataset, kind="auto_group")
    assert (op.params["groups"], op.params["attribute"], op.params["features"]) == (3, "grp", ["brightness"])
    # The All tab shows the running task; its history offers Stop, which stops it.
    assert 'data-testid="auto-group-running"' in client_owner.get(f"/labeling/{job.pk}/?status=all").content.decode()
    assert 'data-testid="auto-group-stop"' in client_owner.get(f"/labeling/{job.pk}/auto-group").content.decode()
    assert client_owner.post(f"/labeling/{job.pk}/auto-group", {"stop": op.pk}).status_code == 302
    op.refresh_from_db()
    assert op.status == "stopped"
    client = Client()
    client.force_login(outsider)
    assert client.get(f"/labeling/{job.pk}/auto-group").status_code == 404
    text_job = make_job(LabelType.TEXT_CLASSIFICATION)
    assert client_owner.get(f"/labeling/{text_job.pk}/auto-group").status_code == 404


def test_text_jobs_add_data_from_the_unlabeled_tab_only(client_owner, make_job, add_sample):
    job = make_job(LabelType.TEXT_CLASSIFICATION)
    add_sample(job.dataset, text="some text")
    assert 'data-testid="add-data"' in client_owner.get(f"/labeling/{job.pk}/?status=unlabeled").content.decode()
    assert 'data-testid="add-data"' not in client_owner.get(f"/labeling/{job.pk}/?status=labeled").content.decode()
    image = make_job(LabelType.IMAGE_CLASSIFICATION)
    assert 'data-testid="add-data"' in client_owner.get(f"/labeling/{image.pk}/?status=labeled").content.decode()


def test_add_data_page_picks_the_upload_path_and_dates_history(client_owner, make_job, bucket):
    """The "Add data" form offers the storage path picker for uploaded data, shows its refusal on
    that field, and the history's Created column uses the console's date format (not ISO)."""
    from .conftest import png_bytes

    job = make_job(LabelType.OBJECT_DETECTION)
    page = client_owner.get(f"/labeling/{job.pk}/data").content.decode()
    assert 'name="upload_path"' in page and "data-path-picker" in page and "storage/path_picker.js" in page
    response = client_owner.post(f"/labeling/{job.pk}/data", {
        "source": "upload", "labeled": "unlabeled", "format": "raw",
        "upload_path": job.dataset.output_location, "files": [SimpleUploadedFile("a.png", png_bytes(8, 8))]})
    assert response.status_code == 400
    assert "cannot be the dataset&#x27;s output location" in response.content.decode()
    response = client_owner.post(f"/labeling/{job.pk}/data", {
        "source": "upload", "labeled": "unlabeled", "format": "raw",
        "upload_path": f"storage://{bucket.name}/mine", "files": [SimpleUploadedFile("a.png", png_bytes(8, 8))]})
    assert response.status_code == 302
    page = client_owner.get(f"/labeling/{job.pk}/data").content.decode()
    history = page[page.index('data-testid="import-history"'):]
    assert f"storage://{bucket.name}/mine/upload-" in history
    assert re.search(r"<time datetime=\"[^\"]+\" class=\"nowrap\">\d{4}/\d\d/\d\d \d\d:\d\d:\d\d GMT\+00:00</time>",
                     history), history[:800]
