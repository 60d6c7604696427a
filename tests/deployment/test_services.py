"""AI applications and versions: create from storage, package rules, import snapshot, dependency
builds, new versions, deletes refused while deployed, permissions."""
from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEntry
from apps.core.paths import StoragePath
from apps.core.services import events_for
from apps.core.storage import get_storage
from apps.deployment import services
from apps.deployment.choices import ModelStatus
from apps.deployment.models import AiApp, AiAppVersion
from tests.deployment.conftest import make_version, upload_package
from tests.deployment.packages import fixture_package

pytestmark = pytest.mark.django_db


def events(obj) -> list[str]:
    return list(events_for(obj).values_list("message", flat=True))


def test_create_from_storage_snapshots_the_package_and_becomes_normal(owner, workspace, echo_uri):
    version = make_version(owner, workspace, echo_uri, imported=False)
    assert (version.version, version.status, version.model_type, version.model_algorithm) == (
        "0.0.1", ModelStatus.IMPORTING, "MindSpore", "predict_analysis")
    # The quirks of the official examples are read and reported (seed-06 §8.5).
    assert version.warnings == [
        'apis[0].method "post" read as "POST".',
        'apis[0].request.Content-type "applicaton/json" read as "application/json".',
        'apis[0].request.data.properties.data.properties.req_data uses "item"; read as "items".',
        "No .ckpt file in model/; the inference code loads its own files.",
    ]
    assert version.config["metrics"]["f1"] == 0.9123456789012345  # truncated, not rounded

    assert services.ai_app_version_import(version_id=version.pk) == "normal"
    version.refresh_from_db()
    assert version.status == ModelStatus.NORMAL
    assert version.package_uri == f"storage://models/atelier-models/echo-{version.app_id}/0.0.1"
    snapshot = sorted(i.key for i in get_storage().walk(StoragePath("models", f"atelier-models/echo-{version.app_id}")))
    assert snapshot == [f"atelier-models/echo-{version.app_id}/0.0.1/model/{name}"
                        for name in ("config.json", "customize_service.py", "helpers.py")]
    assert events(version)[0] == "Start model import."
    assert events(version)[-3:] == [
        f"Model file imported successfully. (3 files to {version.package_uri})",
        "Model size calculated successfully.", "Model imported successfully."]
    # Editing the source afterwards does not change the version.
    get_storage().delete(StoragePath("models", "echo/model/helpers.py"))
    assert get_storage().exists(StoragePath("models", f"atelier-models/echo-{version.app_id}/0.0.1/model/helpers.py"))


@pytest.mark.parametrize("mutate, field, message", [
    (lambda root: (root / "model" / "config.json").unlink(), "source_uri",
     "Model size calculated failed.Can not find config.json file in current model directory model."),
    (lambda root: (root / "model" / "customize_service.py").unlink(), "source_uri",
     "Model size calculated failed.Can not find customize_service.py file in current model directory model."),
    (lambda root: ((root / "model" / "sub").mkdir(), (root / "model" / "sub" / "config.json").write_text("{}")),
     "source_uri", "Found 2 config.json files (model/config.json, model/sub/config.json); the package must hold "
                   "exactly one, at model/config.json."),
    (lambda root: _edit_config(root, model_algorithm="1abc"), "source_uri", "model_algorithm: must start with a letter"),
    (lambda root: _edit_config(root, model_algorithm="a&b"), "source_uri",
     "model_algorithm: must not contain any of & ! \" ' < > ="),
    (lambda root: _edit_config(root, swr_location="swr.example/x"), "source_uri",
     "swr_location: Non-custom type models should not contain swr_location."),
    (lambda root: _edit_config(root, apis=[{"url": "/a"}, {"url": "/b"}]), "source_uri",
     'apis: 2 APIs defined; a MindSpore model has exactly one, with url "/"'),
    (lambda root: _edit_config(root, dependencies=[{"installer": "pip", "packages": [
        {"package_name": "numpy", "package_version": "1.0"}]}]), "source_uri",
     "dependencies[0].packages[0].restraint: is required with package_version: EXACT, ATLEAST or ATMOST"),
])
def test_package_rules_refuse_with_the_reason(owner, workspace, models_bucket, tmp_path, mutate, field, message):
    root = fixture_package("echo", tmp_path)
    mutate(root)
    uri = upload_package(root, "models", "bad")
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=owner, workspace=workspace, name="bad", source_uri=uri)
    assert message in caught.value.message_dict[field]
    assert not AiApp.objects.exists()


def _edit_config(root, **changes):
    path = root / "model" / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_source_path_rules(owner, workspace, outsider, models_bucket, echo_uri):
    cases = [
        ("storage://models/echo folder", "The path must not contain spaces."),
        ("storage://models/missing", "storage://models/missing does not exist."),
        ("storage://nobody/x", 'The bucket "nobody" does not exist.'),
        ("", "Choose the folder that holds the model/ folder."),
    ]
    for uri, message in cases:
        with pytest.raises(ValidationError) as caught:
            services.ai_app_create(user=owner, workspace=workspace, name="x", source_uri=uri)
        assert caught.value.message_dict["source_uri"] == [message]
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=owner, workspace=workspace, name="bad name!", source_uri=echo_uri)
    assert caught.value.message_dict["name"] == [services.NAME_RULE]
    # Another workspace's bucket does not exist for the outsider.
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=outsider, workspace=outsider.default_workspace, name="steal", source_uri=echo_uri)
    assert caught.value.message_dict["source_uri"] == ['The bucket "models" does not exist.']
    assert not AiApp.objects.exists()


def test_new_versions_number_on_and_names_are_unique(owner, workspace, echo_uri):
    first = make_version(owner, workspace, echo_uri)
    second = make_version(owner, workspace, echo_uri, app=first.app)
    third = make_version(owner, workspace, echo_uri, app=first.app, version="1.2.0")
    fourth = make_version(owner, workspace, echo_uri, app=first.app)
    assert [v.version for v in (first, second, third, fourth)] == ["0.0.1", "0.0.2", "1.2.0", "1.2.1"]
    with pytest.raises(ValidationError) as caught:
        make_version(owner, workspace, echo_uri, app=first.app, version="0.0.2")
    assert caught.value.message_dict["version"] == ['Version 0.0.2 of "echo" already exists.']
    with pytest.raises(ValidationError) as caught:
        make_version(owner, workspace, echo_uri, app=first.app, version="v2")
    assert caught.value.message_dict["version"] == ["A version looks like 0.0.1: three whole numbers separated by dots."]
    with pytest.raises(ValidationError) as caught:
        make_version(owner, workspace, echo_uri, name="echo")
    assert caught.value.message_dict["name"] == ['An AI application named "echo" already exists in this workspace.']


def test_dependencies_build_a_cached_environment(owner, workspace, models_bucket, tmp_path, settings):
    root = fixture_package("echo", tmp_path)
    _edit_config(root, dependencies=[{"installer": "pip", "packages": [
        {"package_name": "numpy", "package_version": "1.0", "restraint": "ATLEAST"}]}])
    uri = upload_package(root, "models", "echo-deps")
    first = make_version(owner, workspace, uri, name="deps")
    assert first.status == ModelStatus.NORMAL
    assert first.env_hash and (settings.ATELIER_DEPLOYMENT_ENV_ROOT / first.env_hash / ".complete").exists()
    assert "Start the env image building task." in events(first)
    assert "Image built successfully. (numpy>=1.0)" in events(first)
    second = make_version(owner, workspace, uri, app=first.app)
    assert second.env_hash == first.env_hash
    assert "Use cached env image." in events(second)


def test_a_failed_build_is_reported_and_can_be_rebuilt_with_new_dependencies(owner, workspace, models_bucket, tmp_path):
    root = fixture_package("echo", tmp_path)
    _edit_config(root, dependencies=[{"installer": "pip", "packages": [
        {"package_name": "numpy", "package_version": "not-a-version", "restraint": "EXACT"}]}])
    version = make_version(owner, workspace, upload_package(root, "models", "echo-bad"), name="broken")
    assert version.status == ModelStatus.BUILD_FAILED
    assert "Failed to build the image. For details, view the building log." in events(version)
    log = next(m for m in events(version) if m.startswith("Building log (numpy==not-a-version):"))
    assert "not-a-version" in log

    with pytest.raises(ValidationError) as caught:
        services.ai_app_version_dependencies_update(user=owner, version=version, dependencies=[{"installer": "npm"}])
    assert caught.value.message_dict["dependencies"] == [
        "dependencies[0].installer: 'npm' is not supported; only \"pip\"",
        "dependencies[0].packages: is required: a list of {package_name, package_version, restraint}"]
    services.ai_app_version_dependencies_update(user=owner, version=version, dependencies=[])
    version.refresh_from_db()
    assert version.status == ModelStatus.BUILDING
    assert events(version)[-1] == "Model running dependencies updated. Rebuild the image."
    assert services.ai_app_version_import(version_id=version.pk) == "normal"


def test_custom_command_source(owner, workspace):
    version = services.ai_app_create(
        user=owner, workspace=workspace, name="custom", source_type="command",
        command="python -m http.server --bind 127.0.0.1", port=8080,
        apis=[{"url": "/predict", "method": "post", "request": {"Content-type": "application/json"}}],
        health={"check_method": "HTTP", "url": "/health", "period_seconds": "5", "failure_threshold": 3})
    assert version.command == ["python", "-m", "http.server", "--bind", "127.0.0.1"]
    assert version.health == {"check_method": "HTTP", "url": "/health", "protocol": "http", "period_seconds": 5,
                              "failure_threshold": 3, "initial_delay_seconds": 0, "timeout_seconds": 5}
    assert version.api["url"] == "/predict"
    assert services.ai_app_version_import(version_id=version.pk) == "normal"
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=owner, workspace=workspace, name="custom2", source_type="command", command="",
                               health={"check_method": "HTTP", "period_seconds": 0, "failure_threshold": 1})
    assert caught.value.message_dict == {"command": ["Give the command that starts the server (it listens on $PORT)."]}
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=owner, workspace=workspace, name="custom3", source_type="image", image="Not An Image")
    assert caught.value.message_dict == {"image": ["Give an image reference such as registry.local/team/server:1.0."]}


def test_viewers_cannot_create_and_outsiders_cannot_delete(owner, workspace, echo_version, outsider):
    from apps.accounts.services import membership_set
    from apps.core.choices import Role
    from tests.conftest import make_user

    viewer = make_user("vera")
    membership_set(actor=owner, workspace=workspace, user=viewer, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        services.ai_app_create(user=viewer, workspace=workspace, name="nope", source_uri="storage://models/echo")
    with pytest.raises(PermissionDenied):
        services.ai_app_delete(user=outsider, app=echo_version.app)
    assert AiApp.objects.count() == 1


def test_delete_is_refused_while_deployed(owner, workspace, echo_version, cpu_flavor, local_pool):
    from apps.deployment.serving import service_create, service_delete

    service = service_create(user=owner, workspace=workspace, name="svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    with pytest.raises(ValidationError) as caught:
        services.ai_app_version_delete(user=owner, version=echo_version)
    assert caught.value.messages == ["Version 0.0.1 is deployed in service svc; delete those services first."]
    with pytest.raises(ValidationError) as caught:
        services.ai_app_delete(user=owner, app=echo_version.app)
    assert caught.value.messages == ['"echo" has versions deployed in service svc; delete those services first.']
    assert AiAppVersion.objects.filter(pk=echo_version.pk).exists()

    service_delete(user=owner, service=service)
    services.ai_app_delete(user=owner, app=echo_version.app)
    assert not AiApp.objects.exists()
    assert AuditEntry.objects.filter(action="model:delete", object_repr="echo").exists()


def test_create_from_a_completed_training_job(owner, workspace, echo_uri, cpu_flavor, local_pool, outsider):
    from apps.training.choices import TrainingStatus
    from apps.training.models import TrainingJob

    job = TrainingJob.objects.create(workspace=workspace, created_by=owner, name="train-1", pool=local_pool,
                                     flavor=cpu_flavor, status=TrainingStatus.RUNNING,
                                     outputs=[{"name": "train_url", "uri": echo_uri, "local": "outputs/train_url_0"}])
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=owner, workspace=workspace, name="trained", source_type="training",
                               training_job=job.pk)
    assert caught.value.message_dict == {"training_job": [
        'Training job "train-1" is running; only completed jobs can be imported.']}
    with pytest.raises(ValidationError) as caught:
        services.ai_app_create(user=outsider, workspace=outsider.default_workspace, name="stolen",
                               source_type="training", training_job=job.pk)
    assert caught.value.message_dict == {"training_job": ["No such training job."]}
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.COMPLETED)
    version = services.ai_app_create(user=owner, workspace=workspace, name="trained", source_type="training",
                                     training_job=job.pk)
    assert (version.source_type, version.source_uri, version.training_job_id, version.training_job_name) == (
        "training", echo_uri, str(job.pk), "train-1")
    assert services.ai_app_version_import(version_id=version.pk) == "normal"
