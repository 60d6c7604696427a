"""Spec item 24: a job's code folder cannot be edited while the job is creating, pending or running;
storage (services, REST API, storage browser) refuses the change with the job named, and allows it
again once the job has ended. Folders next to the code folder stay writable."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.paths import parse
from apps.storage.services import bucket_delete, folder_create, folder_delete, object_delete, object_upload
from apps.training.choices import TrainingStatus
from apps.training.models import TrainingJob
from apps.training.services import training_job_create

from .conftest import put_tree, read

pytestmark = pytest.mark.django_db

UPLOAD = "/api/v1/storage/objects/upload/"
OBJECTS = "/api/v1/storage/objects/"
HELD = ('storage://train-data/team/code is the code folder of training job "locked", which is creating; '
        "its code can be edited once the job has ended (or after terminating it).")
HELD_RUNNING = HELD.replace("which is creating", "which is running")


@pytest.fixture
def job(owner, workspace, bucket, local_pool, cpu_flavor):
    put_tree("storage://train-data/team/code", {"train.py": "print('v1')\n", "lib/util.py": "X = 1\n"})
    put_tree("storage://train-data/team/other", {"notes.txt": "free"})
    job = training_job_create(user=owner, workspace=workspace, name="locked", pool=local_pool, flavor=cpu_flavor,
                              experiment="none", code_dir="storage://train-data/team/code", boot_file="train.py")
    assert job.status == TrainingStatus.CREATING  # the dispatch waits for the commit, which never comes
    return job


def _file(name="train.py", content=b"print('v2')\n"):
    return SimpleUploadedFile(name, content)


def test_services_refuse_every_change_inside_or_above_a_live_jobs_code_folder(owner, job):
    code = parse("storage://train-data/team/code")
    refusals = [
        (lambda: object_upload(user=owner, folder=code, file=_file()), {"files": [HELD]}),
        (lambda: object_upload(user=owner, folder=code.child("lib"), file=_file("util.py")), {"files": [HELD]}),
        (lambda: folder_create(user=owner, parent=code, name="new"), {"name": [HELD]}),
        (lambda: object_delete(user=owner, path=code.child("train.py")), [HELD]),
        (lambda: folder_delete(user=owner, path=code.child("lib"), recursive=True), [HELD]),
        (lambda: folder_delete(user=owner, path=parse("storage://train-data/team"), recursive=True), [HELD]),
        (lambda: bucket_delete(user=owner, bucket=job.workspace.buckets.get(name="train-data"), recursive=True),
         [HELD]),
    ]
    for attempt, expected in refusals:
        with pytest.raises(ValidationError) as caught:
            attempt()
        got = caught.value.message_dict if hasattr(caught.value, "error_dict") else caught.value.messages
        assert got == expected
    assert read("storage://train-data/team/code/train.py") == b"print('v1')\n"
    assert read("storage://train-data/team/code/lib/util.py") == b"X = 1\n"

    # Next to the code folder (and a folder whose name only starts the same) nothing is held.
    object_upload(user=owner, folder=parse("storage://train-data/team/other"), file=_file("notes.txt", b"edited"))
    folder_create(user=owner, parent=parse("storage://train-data/team"), name="code2")
    object_upload(user=owner, folder=parse("storage://train-data/team/code2"), file=_file())
    assert read("storage://train-data/team/other/notes.txt") == b"edited"

    # Once the job has ended the folder is the user's again.
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.TERMINATED)
    object_upload(user=owner, folder=code, file=_file())
    assert read("storage://train-data/team/code/train.py") == b"print('v2')\n"


def test_the_api_and_the_storage_browser_answer_with_the_reason(api, client, owner, job):
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.RUNNING)
    response = api.post(UPLOAD, {"path": "storage://train-data/team/code", "files": [_file()]}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"files": [HELD_RUNNING]}
    response = api.delete(f"{OBJECTS}?path=storage://train-data/team/code/train.py")
    assert response.status_code == 400 and HELD_RUNNING in response.json()["error"]["message"]

    client.force_login(owner)
    response = client.post("/storage/upload", {"path": "storage://train-data/team/code", "files": [_file()]},
                           follow=True)
    assert [str(m) for m in response.context["messages"]] == [HELD_RUNNING]
    assert read("storage://train-data/team/code/train.py") == b"print('v1')\n"

    # The job page offers no "Edit code" link while the job is live.
    page = client.get(f"/training/jobs/{job.pk}/").content.decode()
    assert 'data-testid="edit-code"' not in page


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_storage_browser_upload_dialog_shows_the_lock(page, asgi_server, login, owner, job, tmp_path):
    import os
    import tempfile
    from pathlib import Path

    from playwright.sync_api import expect

    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.RUNNING)
    edited = tmp_path / "train.py"
    edited.write_text("print('v2')\n")
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/storage/b/train-data/team/code")
    page.click("[data-testid=upload-open]")
    upload = page.locator("dialog#upload-dialog")
    upload.locator("input[type=file]").set_input_files([str(edited)])
    upload.locator("[data-upload-submit]").click()
    refused = upload.locator("li.upload-item[data-file='train.py']")
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.locator("[data-upload-status]")).to_have_text(HELD_RUNNING)
    shots = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))
    page.screenshot(path=str(shots / "training-code-lock-upload.png"))
    assert read("storage://train-data/team/code/train.py") == b"print('v1')\n"
