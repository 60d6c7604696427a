"""The labeling JSON API: the save contract (version, 409 with the other change, 400 naming the
rule, 404 outside the workspace), next sample, batch saves, batch labels, frames, peaks, jobs."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.core.choices import Role
from apps.datasets.choices import LabelType
from apps.datasets.models import Annotation, Sample
from apps.labeling.models import LabelingJob

from .conftest import jpeg_bytes

pytestmark = pytest.mark.django_db
BOX = {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 1, "ymin": 2, "xmax": 30, "ymax": 40}}


def url(job, rest=""):
    return f"/api/v1/labeling/jobs/{job.pk}/{rest}"


@pytest.fixture
def detection(make_job, add_sample):
    job = make_job(LabelType.OBJECT_DETECTION)
    return job, add_sample(job.dataset, width=640, height=480)


def test_sample_get_save_and_serve_back(api, detection):
    job, sample = detection
    body = api.get(url(job, f"samples/{sample.pk}/")).json()
    assert (body["version"], body["annotations"], body["width"], body["kind"]) == (0, [], 640, "image")
    response = api.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 0, "annotations": [BOX]}, format="json")
    assert response.status_code == 200
    saved = response.json()
    assert (saved["version"], saved["created"], saved["status"]) == (1, 1, "labeled")
    (annotation,) = saved["annotations"]
    assert {k: annotation[k] for k in ("label", "shape", "geometry", "source", "annotated_by", "confidence")} == {
        "label": "cat", "shape": "bndbox", "geometry": BOX["geometry"], "source": "human", "annotated_by": "alice",
        "confidence": None}


def test_stale_save_answers_409_with_the_other_change(api, teammate, detection):
    job, sample = detection
    bob = APIClient()
    bob.force_authenticate(teammate)
    assert bob.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 0, "annotations": [BOX]},
                   format="json").status_code == 200
    response = api.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 0, "annotations": []}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "conflict"
    assert body["error"]["message"].startswith("bob saved this sample (now version 1) after you opened it")
    assert (body["current"]["version"], [a["label"] for a in body["current"]["annotations"]]) == (1, ["cat"])
    assert body["current"]["last_change"]["by"] == "bob"
    assert Annotation.objects.filter(sample=sample).count() == 1


def test_bad_input_answers_400_in_the_error_format(api, detection):
    job, sample = detection
    response = api.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 0, "annotations": [
        {"label": "cat", "shape": "bndbox", "geometry": {"xmin": 5, "ymin": 5, "xmax": 5, "ymax": 9}}]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "annotations.0.geometry: The box has zero area; a "
                                         "box needs a width and a height inside the image.", "fields": {
        "annotations.0.geometry": ["The box has zero area; a box needs a width and a height inside the image."]}}}
    response = api.put(url(job, f"samples/{sample.pk}/annotations/"), {"annotations": []}, format="json")
    assert response.json()["error"]["fields"] == {
        "version": ["Send the sample's annotation version you started from (an integer)."]}


def test_another_workspaces_sample_is_404_and_untouched(api, outsider, make_job, add_sample, make_dataset, bucket):
    from apps.core.paths import parse
    from apps.datasets.services import dataset_create
    from apps.labeling.services import job_create

    ws = outsider.default_workspace
    dataset = dataset_create(user=outsider, workspace=ws, name="theirs", data_type="image",
                             label_type="object_detection", input_location=parse(f"storage://{bucket.name}/t-in"),
                             output_location=parse(f"storage://{bucket.name}/t-out"))
    their_job = job_create(user=outsider, workspace=ws, name="theirs", dataset=dataset,
                           labeling_type="object_detection", labels=[{"name": "cat", "color": "#ff0000"}])
    their_sample = add_sample(dataset)
    mine, _ = make_job(LabelType.OBJECT_DETECTION), None
    for path in (url(their_job, f"samples/{their_sample.pk}/annotations/"),
                 url(mine, f"samples/{their_sample.pk}/annotations/")):
        response = api.put(path, {"version": 0, "annotations": [BOX]}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert Annotation.objects.count() == 0
    their_sample.refresh_from_db()
    assert their_sample.annotation_version == 0


def test_labeler_saves_but_cannot_create_labels(owner, workspace, teammate, detection):
    from apps.accounts.services import membership_set

    job, sample = detection
    membership_set(actor=owner, workspace=workspace, user=teammate, role=Role.LABELER)
    client = APIClient()
    client.force_authenticate(teammate)
    response = client.post(url(job, "labels/"), {"name": "horse", "color": "#123456"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["message"] == (
        "Your role does not allow labeling:update.")
    assert not job.dataset.labels.filter(name="horse").exists()
    assert client.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 0, "annotations": [BOX]},
                      format="json").status_code == 200


def test_next_sample_walks_the_unlabeled_in_order_and_ends_with_404(api, make_job, add_sample):
    job = make_job(LabelType.IMAGE_CLASSIFICATION)
    a, b, c = (add_sample(job.dataset) for _ in range(3))  # newest first: c, b, a
    first = api.get(url(job, "samples/next/")).json()
    second = api.get(url(job, f"samples/next/?after={first['id']}")).json()
    assert [first["id"], second["id"]] == [c.pk, b.pk]
    for s in (a, b, c):
        api.put(url(job, f"samples/{s.pk}/annotations/"), {"version": 0, "annotations": [{"label": "cat"}]},
                format="json")
    response = api.get(url(job, f"samples/next/?after={c.pk}"))
    assert response.status_code == 404 and response.json()["error"]["message"] == "No unlabeled sample is left in this job."


def test_batch_save_is_all_or_nothing(api, make_job, add_sample):
    job = make_job(LabelType.TEXT_CLASSIFICATION)
    one, two = add_sample(job.dataset, text="good"), add_sample(job.dataset, text="bad")
    response = api.put(url(job, "annotations/"), {"items": [
        {"sample": one.pk, "version": 0, "annotations": [{"label": "positive"}]},
        {"sample": two.pk, "version": 0, "annotations": [{"label": "nope"}]}]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["items.1.annotations.0.label"]
    assert Annotation.objects.count() == 0
    response = api.put(url(job, "annotations/"), {"items": [
        {"sample": one.pk, "version": 0, "annotations": [{"label": "positive"}]},
        {"sample": two.pk, "version": 0, "annotations": [{"label": "negative"}]}]}, format="json")
    assert [item["version"] for item in response.json()["items"]] == [1, 1]


def test_batch_labels_refuse_unknown_label(api, make_job, add_sample):
    job = make_job(LabelType.IMAGE_CLASSIFICATION)
    samples = [add_sample(job.dataset) for _ in range(2)]
    response = api.post(url(job, "samples/labels/"), {"samples": [s.pk for s in samples], "labels": ["horse"]},
                        format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {
        "labels": ['The label "horse" does not exist in this job; add it to the label set first.']}
    response = api.post(url(job, "samples/labels/"), {"samples": [s.pk for s in samples], "labels": ["cat"]},
                        format="json")
    assert response.json() == {"changed": 2}


def test_video_frames_through_the_api(api, make_job, add_sample):
    import base64

    job = make_job(LabelType.VIDEO)
    video = add_sample(job.dataset, duration=4.0, name="v.mp4")
    box = {"label": "car", "shape": "bndbox", "geometry": {"xmin": 1, "ymin": 1, "xmax": 50, "ymax": 50}}
    response = api.post(url(job, f"samples/{video.pk}/frames/"), {"time": 1.25, "version": 0, "annotations": [box]},
                        format="json")
    assert response.json()["error"]["fields"] == {"image": ["The first save of a frame sends the frame as a JPEG image."]}
    image = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(100, 80)).decode()
    response = api.post(url(job, f"samples/{video.pk}/frames/"), {"time": 1.25, "version": 0, "annotations": [box],
                                                                  "image": image}, format="json")
    assert response.status_code == 200
    (frame,) = response.json()["frames"]
    assert (frame["time"], frame["width"], frame["version"], frame["annotations"][0]["label"]) == (1.25, 100, 1, "car")
    stale = api.post(url(job, f"samples/{video.pk}/frames/"), {"time": 1.25, "version": 0, "annotations": []},
                     format="json")
    assert stale.status_code == 409
    deleted = api.delete(url(job, f"samples/{video.pk}/frames/{frame['id']}/"))
    assert deleted.json() == {"frames": []} and not Sample.objects.filter(pk=frame["id"]).exists()


def test_waveform_peaks(api, make_job, add_sample):
    job = make_job(LabelType.SPEECH_SEGMENTATION)
    sample = add_sample(job.dataset, duration=3.0)
    body = api.get(url(job, f"samples/{sample.pk}/peaks/?columns=100")).json()
    assert body["duration"] == 3.0 and len(body["peaks"]) == 100
    assert all(-1 <= lo <= hi <= 1 for lo, hi in body["peaks"])


def test_job_create_list_and_copy_through_the_api(api, make_dataset, django_assert_max_num_queries):
    dataset = make_dataset(LabelType.NAMED_ENTITY)
    response = api.post("/api/v1/labeling/jobs/", {"name": "ner-1", "labeling_type": "text_entity",
                                                   "dataset": dataset.pk, "labels": [{"name": "person",
                                                                                      "color": "#112233"}]},
                        format="json")
    assert response.status_code == 201 and response.json()["progress"]["text"] == "0% (0/0)"
    job = LabelingJob.objects.get(name="ner-1")
    copy = api.post(url(job, "copy/"), {}, format="json").json()
    assert copy["name"].startswith("ner-1-copy-")
    with django_assert_max_num_queries(12):
        listing = api.get("/api/v1/labeling/jobs/?type=text_entity").json()
    assert sorted(row["name"] for row in listing["results"]) == sorted(["ner-1", copy["name"]])
    response = api.post("/api/v1/labeling/jobs/", {"name": "x", "labeling_type": "video", "dataset": dataset.pk,
                                                   "team_enabled": True}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"dataset", "team_enabled"}


def test_sample_delete_api_contract(api, outsider_api, detection):
    job, sample = detection
    assert outsider_api.post(url(job, "samples/delete/"), {"samples": [sample.pk]}, format="json").status_code == 404
    refused = api.post(url(job, "samples/delete/"), {"samples": [sample.pk], "delete_source": True}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["confirm"]
    bad = api.post(url(job, "samples/delete/"), {"samples": sample.pk}, format="json")
    assert bad.json()["error"]["fields"] == {"samples": ["Send the ids of the samples to delete as a list."]}
    assert Sample.objects.filter(pk=sample.pk).exists()
    done = api.post(url(job, "samples/delete/"), {"samples": [sample.pk]}, format="json")
    assert done.status_code == 200 and done.json() == {"deleted": 1, "frames": 0, "files_deleted": 0,
                                                       "files_failed": []}
    assert api.post(url(job, "samples/delete/"), {"samples": [sample.pk]}, format="json").status_code == 404


def test_add_data_api_starts_an_import_and_lists_history(api, outsider_api, detection, bucket):
    from .conftest import png_bytes, put

    job, _ = detection
    put(f"storage://{bucket.name}/more/x.png", png_bytes(20, 20))
    assert outsider_api.post(url(job, "data/"), {"labeled": False, "path": f"storage://{bucket.name}/more/"},
                             format="json").status_code == 404
    missing = api.post(url(job, "data/"), {"path": f"storage://{bucket.name}/more/"}, format="json")
    assert missing.json()["error"]["fields"] == {"labeled": ["Say whether the data is labeled: true or false."]}
    started = api.post(url(job, "data/"), {"labeled": False, "path": f"storage://{bucket.name}/more/"}, format="json")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    (row,) = api.get(url(job, "data/")).json()["results"]
    assert (row["uid"], row["mode"], row["path"], row["status"]) == (
        started.json()["operation"], "Storage path", f"storage://{bucket.name}/more", "queued")
    from apps.datasets.models import DatasetOperation
    from apps.datasets.operations import operation_execute

    operation_execute(DatasetOperation.objects.get(uid=row["uid"]).pk)
    (row,) = api.get(url(job, "data/")).json()["results"]
    assert (row["status"], row["total"], row["imported"], row["imported_labeled"]) == ("succeeded", 1, 1, 0)


def test_add_data_api_upload_to_a_chosen_storage_path(api, detection, bucket):
    """Multipart upload with `upload_path` (spec §3.6); a refusal names the field in the error format."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .conftest import png_bytes

    job, _ = detection
    refused = api.post(url(job, "data/"), {"labeled": "false", "files": [SimpleUploadedFile("u.png", png_bytes(8, 8))],
                                           "upload_path": job.dataset.output_location}, format="multipart")
    assert refused.status_code == 400 and list(refused.json()["error"]["fields"]) == ["upload_path"]
    started = api.post(url(job, "data/"), {"labeled": "false", "files": [SimpleUploadedFile("u.png", png_bytes(8, 8))],
                                           "upload_path": f"storage://{bucket.name}/drop"}, format="multipart")
    assert started.status_code == 202
    (row,) = api.get(url(job, "data/")).json()["results"]
    assert row["mode"] == "Local upload" and row["path"].startswith(f"storage://{bucket.name}/drop/upload-")


def test_save_and_next_sample_query_counts_are_pinned(api, owner, detection, add_sample, django_assert_num_queries):
    """The two hot paths of a labeler's day stay at a fixed number of queries, whatever the
    dataset size: no recount of the dataset, no read-back of the saved rows."""
    job, sample = detection
    later = add_sample(job.dataset)
    newest = add_sample(job.dataset)
    boxes = [{**BOX, "geometry": {**BOX["geometry"], "xmin": n}} for n in range(5)]
    api.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 0, "annotations": boxes}, format="json")
    # job (with the caller's role, read in the same query) + sample, then savepoint, labels, version bump,
    # existing rows, delete, insert, audit entry, release.
    owner.__dict__.pop("_atelier_roles", None)  # a fresh request's user knows no role yet
    with django_assert_num_queries(10):
        response = api.put(url(job, f"samples/{sample.pk}/annotations/"), {"version": 1, "annotations": boxes[:4]},
                           format="json")
    assert response.status_code == 200 and len(response.json()["annotations"]) == 4
    assert [a["id"] for a in response.json()["annotations"]] == list(
        Annotation.objects.filter(sample=sample).order_by("id").values_list("id", flat=True))
    # job and role + the `after` sample + the next one + its annotations (none, so no last-change query).
    owner.__dict__.pop("_atelier_roles", None)
    with django_assert_num_queries(4):
        response = api.get(url(job, f"samples/next/?after={newest.pk}&status=unlabeled"))
    assert (response.status_code, response.json()["id"]) == (200, later.pk)


def test_the_annotation_api_is_documented_for_clients(db):
    """The CLI and SDK label through the same API as the workbench: the schema documents saving
    (with the 409 of a stale version), reading a sample and walking to the next one."""
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    save = paths["/api/v1/labeling/jobs/{id}/samples/{sample_id}/annotations/"]["put"]
    assert {"200", "409"} <= set(save["responses"]) and save["requestBody"]
    assert "version" in save["description"]
    assert "get" in paths["/api/v1/labeling/jobs/{id}/samples/{sample_id}/"]
    assert any(p.startswith("/api/v1/labeling/jobs/{id}/samples/") and "next" in p for p in paths)
