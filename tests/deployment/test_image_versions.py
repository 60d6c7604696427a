"""Container-image versions without Docker: the optional model folder (checked, snapshotted,
staged and mounted at /home/mind/model) and the import on a worker without Docker. The real
containers are in test_container.py."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.services import events_for
from apps.deployment import services
from apps.deployment.choices import ModelStatus
from apps.deployment.models import AiAppVersion
from apps.deployment.serving import instance_command
from tests.deployment.conftest import upload_package

pytestmark = pytest.mark.django_db


def image_version(owner, workspace, **fields):
    return services.ai_app_create(user=owner, workspace=workspace, name=fields.pop("name", "boxed"),
                                  source_type="image", image="registry.local/srv:1", **fields)


@pytest.fixture
def model_folder(models_bucket, tmp_path):
    root = tmp_path / "boxed"
    (root / "model").mkdir(parents=True)
    (root / "model" / "weights.bin").write_bytes(b"\0" * 16)
    return upload_package(root, "models", "boxed")


def test_the_model_folder_must_exist_and_hold_model_files(owner, workspace, models_bucket, tmp_path):
    with pytest.raises(ValidationError) as caught:
        image_version(owner, workspace, source_uri="storage://models/nowhere")
    assert list(caught.value.message_dict) == ["source_uri"]
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "weights.bin").write_bytes(b"1")
    flat = upload_package(tmp_path / "flat", "models", "flat")
    with pytest.raises(ValidationError) as caught:
        image_version(owner, workspace, source_uri=flat)
    assert caught.value.message_dict == {"source_uri": [
        "The folder has no model/ folder with files in it; the image finds that folder's files at /home/mind/model."]}
    with pytest.raises(ValidationError) as caught:
        image_version(owner, workspace, source_uri="storage://models/a b")
    assert caught.value.message_dict == {"source_uri": ["The path must not contain spaces."]}


def test_the_model_folder_is_snapshotted_and_mounted_at_home_mind_model(owner, workspace, model_folder, monkeypatch):
    monkeypatch.setattr(services.shutil, "which", lambda name: None)  # no Docker on this worker
    row = image_version(owner, workspace, source_uri=model_folder)
    assert services.ai_app_version_import(version_id=row.pk) == "normal"
    version = AiAppVersion.objects.select_related("app").get(pk=row.pk)
    assert version.package_uri == f"storage://models/atelier-models/boxed-{version.app_id}/0.0.1"
    events = list(events_for(version).values_list("message", flat=True))
    assert ("Docker is not installed on the worker that imports models; the image is checked when an instance "
            "starts.") in events
    argv, _health, inputs, _env = instance_command(version, ["THRESHOLD"])
    assert inputs == [{"name": "package", "uri": version.package_uri}]
    at = argv.index("--")
    grace = str(settings.ATELIER_GATEWAY_TIMEOUT_SECONDS + 5)  # Docker's stop grace ends before the engine's
    assert argv[:at] == ["python", "-m", "atelier_modelserver.container", "--image", "registry.local/srv:1",
                         "--container-port", "8080", "--stop-grace", grace, "--pass-env", "THRESHOLD",
                         "--mount", "inputs/package/model:/home/mind/model"]


def test_image_copy_needs_docker_on_the_importing_worker(owner, workspace, monkeypatch):
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    row = image_version(owner, workspace, image_copy=True)
    assert services.ai_app_version_import(version_id=row.pk) == "failed"
    row.refresh_from_db()
    assert row.status == ModelStatus.FAILED and row.status_reason == "docker is not installed on the worker"
