"""The job form's optional sections: run-as uid, custom flavor, extra mounts, log persistence,
notifications, the high-priority permission, dataset-constrained inputs (the picker itself is in
test_dataset_picker.py) and "get input data size"."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.runtime.models import Flavor, WorkerNode
from apps.training.forms import TrainingJobForm
from apps.training.launch_spec import launch_spec
from apps.training.models import TrainingJob
from apps.training.services import training_job_create

from .conftest import put, put_tree

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(bucket):
    return put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})


def _custom(owner, workspace, pool, flavor, **overrides):
    values = dict(user=owner, workspace=workspace, name="job-1", pool=pool, flavor=flavor, experiment="none",
                  boot_mode="custom", boot_command="echo a; echo b && echo c")
    values.update(overrides)
    return training_job_create(**values)


def _errors(call) -> dict:
    with pytest.raises(ValidationError) as exc:
        call()
    assert not TrainingJob.objects.exists()  # a refused job leaves nothing behind
    return exc.value.message_dict


def _node(pool, cpus=8, memory_mb=16384, gpus=0):
    node = WorkerNode.objects.create(hostname=f"n{cpus}@h", host="127.0.0.1", cpus=cpus, memory_mb=memory_mb,
                                     gpus=[{"index": i, "name": "GPU", "memory_mb": 1000} for i in range(gpus)],
                                     started_at=timezone.now(), last_heartbeat=timezone.now())
    node.pools.add(pool)
    return node


def test_run_as_uid_ranges_of_shared_and_dedicated_pools(owner, workspace, local_pool, cpu_flavor, settings):
    errors = _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor, run_as_uid=999))
    assert errors["run_as_uid"] == ["The uid must be 1000–65535 on the shared pool local."]
    assert "not a uid" in _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor,
                                                  run_as_uid="abc"))["run_as_uid"][0]
    assert "65535" in _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor,
                                              run_as_uid=70000))["run_as_uid"][0]
    job = _custom(owner, workspace, local_pool, cpu_flavor)
    assert job.run_as_uid == 1000  # the default
    assert job.boot_command == "echo a; echo b && echo c"  # ; and && are allowed
    assert launch_spec(job)["run_as_uid"] == 1000
    local_pool.dedicated = True  # Resources > Pools > Make dedicated
    local_pool.save(update_fields=["dedicated"])
    assert _custom(owner, workspace, local_pool, cpu_flavor, name="job-2", run_as_uid=0).run_as_uid == 0


def test_boot_command_with_a_newline_is_refused(owner, workspace, local_pool, cpu_flavor):
    errors = _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor, boot_command="echo a\necho b"))
    assert "newlines are not supported" in errors["boot_command"][0]


def test_preset_jobs_ignore_the_uid(owner, workspace, local_pool, cpu_flavor, code):
    job = training_job_create(user=owner, workspace=workspace, name="job-p", pool=local_pool, flavor=cpu_flavor,
                              experiment="none", code_dir="storage://train-data/code", boot_file="train.py",
                              run_as_uid=5)
    assert job.run_as_uid is None and launch_spec(job)["run_as_uid"] is None


def test_mount_rules(owner, workspace, local_pool, cpu_flavor, settings, tmp_path):
    settings.ATELIER_TRAINING_HOST_MOUNT_ROOTS = [str(tmp_path)]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")

    def refused(mounts):
        return _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor, mounts=mounts))["mounts"][0]

    assert refused([{"source": f"{a}{i}", "path": f"m{i}"} for i in range(9)]) == "9 mounts given; at most 8."
    assert "mounted twice" in refused([{"source": a, "path": "x"}, {"source": a, "path": "y"}])
    assert "used twice" in refused([{"source": a, "path": "x"}, {"source": b, "path": "/x"}])
    assert "cannot be a mount path" in refused([{"source": a, "path": "/"}])
    assert "scratch" in refused([{"source": a, "path": "/cache"}])
    assert "platform mount root" in refused([{"source": a, "path": f"{settings.ATELIER_RUNTIME_WORK_ROOT}/x"}])
    assert "folder the platform mounts" in refused([{"source": a, "path": "inputs/x"}])
    assert "folder the platform mounts" in refused([{"source": a, "path": "user-job-dir"}])
    assert "not below an allowed host folder" in refused([{"source": "/etc", "path": "etc"}])
    assert "absolute host folder" in refused([{"source": "rel", "path": "x"}])
    job = _custom(owner, workspace, local_pool, cpu_flavor, mounts=[{"source": a, "path": "/data/a"},
                                                                   {"source": b, "path": "b"}])
    assert job.mounts == [{"source": a, "path": "data/a"}, {"source": b, "path": "b"}]
    assert launch_spec(job)["mounts"] == job.mounts


def test_custom_flavor_is_bounded_by_the_largest_node(owner, workspace, local_pool, cpu_flavor):
    _node(local_pool, cpus=4, memory_mb=8192)
    errors = _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor,
                                     custom_flavor={"cpus": 8, "memory_mb": 1024, "gpus": 0}))
    assert "exceeds the largest online node of pool local (4 CPU, 8192 MiB, 0 GPU): CPU cores 8 > 4" in \
        errors["custom_flavor"][0]
    assert "GPUs 1 > 0" in _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor, custom_flavor={
        "cpus": 1, "memory_mb": 1024, "gpus": 1}))["custom_flavor"][0]
    job = _custom(owner, workspace, local_pool, cpu_flavor, custom_flavor={"cpus": 2, "memory_mb": 2048})
    assert job.custom_flavor == {"cpus": 2, "memory_mb": 2048, "gpus": 0}
    assert (job.flavor.name, job.flavor.cpus, job.flavor.memory_mb) == ("custom-2c-2048m-0g", 2, 2048)
    assert job.flavor.pools.filter(pk=local_pool.pk).exists()
    # The job form lists the real flavors only.
    assert list(TrainingJobForm(workspace=workspace).fields["flavor"].queryset) == [cpu_flavor]


def test_log_persistence_needs_a_path(owner, workspace, local_pool, cpu_flavor, bucket):
    errors = _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor, persist_logs=True))
    assert errors["log_path"] == ["Persisting logs needs a job log path (an empty storage folder)."]
    job = _custom(owner, workspace, local_pool, cpu_flavor, persist_logs=True, log_path="storage://train-data/logs")
    assert (job.persist_logs, job.log_path) == (True, "storage://train-data/logs")


def test_notification_settings(owner, workspace, local_pool, cpu_flavor):
    gpu_flavor = Flavor.objects.create(name="gpu-1x", cpus=1, memory_mb=1024, gpus=1)
    gpu_flavor.pools.add(local_pool)
    def refused(field, **kw):
        return _errors(lambda: _custom(owner, workspace, local_pool, cpu_flavor, **kw))[field][0]

    assert "not an e-mail address" in refused("notify_target", notify_channel="email", notify_target="nope",
                                              notify_events=["ended"])
    assert "http(s) URL" in refused("notify_target", notify_channel="webhook", notify_target="ftp://x",
                                    notify_events=["ended"])
    assert "at least one event" in refused("notify_events", notify_channel="email", notify_target="a@b.io",
                                           notify_events=[])
    assert "Unknown event" in refused("notify_events", notify_channel="email", notify_target="a@b.io",
                                      notify_events=["exploded"])
    assert refused("notify_events", notify_channel="email", notify_target="a@b.io",
                   notify_events=["hang"]) == "Only GPU jobs are watched for a suspected hang."
    job = _custom(owner, workspace, local_pool, gpu_flavor, notify_channel="email", notify_target="a@b.io; c@d.io",
                  notify_events=["hang", "started"])
    assert (job.notify_target, job.notify_events) == ("a@b.io, c@d.io", ["started", "hang"])


def test_priority_three_needs_the_permission(owner, teammate, workspace, local_pool, cpu_flavor):
    from apps.core.permissions import has_perm

    # Workspace admins hold trainjob:set_high_priority; developers (ordinary users) pick 1 or 2.
    assert has_perm(owner, workspace, "trainjob:set_high_priority")
    assert not has_perm(teammate, workspace, "trainjob:set_high_priority")
    errors = _errors(lambda: _custom(teammate, workspace, local_pool, cpu_flavor, priority=3))
    assert errors["priority"] == ["Priority 3 needs the set_high_priority permission."]
    assert _custom(teammate, workspace, local_pool, cpu_flavor, priority=2).priority == 2
    # The form offers 3 only to those who hold the permission (the view passes has_perm's answer).
    assert [c[0] for c in TrainingJobForm(workspace=workspace).fields["priority"].choices] == [1, 2, 3]
    form = TrainingJobForm(workspace=workspace, can_high_priority=False)
    assert [c[0] for c in form.fields["priority"].choices] == [1, 2]


def test_job_form_saves_the_new_sections(client, owner, workspace, local_pool, cpu_flavor, bucket, settings,
                                         tmp_path):
    settings.ATELIER_TRAINING_HOST_MOUNT_ROOTS = [str(tmp_path)]
    _node(local_pool)
    client.force_login(owner)
    response = client.post("/training/jobs/new", {
        "name": "form-job", "experiment": "none", "boot_mode": "custom", "boot_command": "echo hi",
        "image": "team/custom:2", "local_code_dir": "my-code", "working_dir": "work/here", "run_as_uid": "1234", "inputs": "[]",
        "outputs": "[]", "hyperparameters": "{}", "pool": local_pool.pk, "flavor": cpu_flavor.pk, "node_count": 1,
        "priority": 1, "auto_restart": 0, "custom_flavor_on": "on", "custom_cpus": 2, "custom_memory_mb": 2048,
        "custom_gpus": 0, "mounts": f"{tmp_path} => data/host", "persist_logs": "on",
        "log_path": "storage://train-data/joblogs", "notify_channel": "webhook",
        "notify_target": "http://127.0.0.1:9/hook", "notify_events": ["started", "failed"],
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    job = TrainingJob.objects.get(name="form-job")
    assert (job.local_code_dir, job.working_dir, job.run_as_uid) == ("my-code", "work/here", 1234)
    assert job.image == "team/custom:2"
    assert job.custom_flavor == {"cpus": 2, "memory_mb": 2048, "gpus": 0}
    assert job.mounts == [{"source": str(tmp_path), "path": "data/host"}]
    assert (job.persist_logs, job.log_path) == (True, "storage://train-data/joblogs")
    assert (job.notify_channel, job.notify_events) == ("webhook", ["started", "failed"])
    spec = launch_spec(job)
    assert (spec["local_code_dir"], spec["working_dir"]) == ("my-code", "work/here")
    # Rebuild pre-fills every new section.
    page = client.get(f"/training/jobs/new?from={job.pk}").content.decode()
    assert f"{tmp_path} =&gt; data/host" in page and 'value="1234"' in page
    assert 'name="custom_flavor_on"' in page and 'value="storage://train-data/joblogs"' in page


def test_job_form_shows_a_mount_error_inline(client, owner, workspace, local_pool, cpu_flavor):
    client.force_login(owner)
    response = client.post("/training/jobs/new", {
        "name": "form-job", "experiment": "none", "boot_mode": "custom", "boot_command": "echo hi",
        "local_code_dir": "user-job-dir", "pool": local_pool.pk, "flavor": cpu_flavor.pk, "node_count": 1,
        "priority": 1, "auto_restart": 0, "mounts": "just text"})
    assert response.status_code == 400
    assert "Line 1: write /host/folder =&gt; mount/path." in response.content.decode()


def test_input_size_check(client, owner, workspace, outsider, bucket, settings):
    put("storage://train-data/in/a.bin", b"x" * 3000)
    put("storage://train-data/in/b/c.bin", b"y" * 1000)
    client.force_login(owner)
    body = client.get("/training/jobs/input-size", {"uri": "storage://train-data/in"}).json()
    assert (body["bytes"], body["fits"], body["errors"]) == (4000, True, [])
    settings.ATELIER_TRAINING_SCRATCH_BYTES = 3500
    body = client.get("/training/jobs/input-size", {"uri": "storage://train-data/in"}).json()
    assert body["fits"] is False and "more than the" in body["message"]
    missing = client.get("/training/jobs/input-size", {"uri": "storage://train-data/nothing"})
    assert missing.status_code == 400 and missing.json()["errors"]
    client.force_login(outsider)  # another workspace's bucket: measured as nothing, with the reason
    refused = client.get("/training/jobs/input-size", {"uri": "storage://train-data/in"})
    assert refused.status_code == 400 and refused.json()["bytes"] == 0 and refused.json()["errors"]


def test_flavor_row_is_reused_for_the_same_shape(owner, workspace, local_pool, cpu_flavor):
    _node(local_pool)
    _custom(owner, workspace, local_pool, cpu_flavor, custom_flavor={"cpus": 1, "memory_mb": 512})
    _custom(owner, workspace, local_pool, cpu_flavor, name="job-2", custom_flavor={"cpus": 1, "memory_mb": 512})
    assert Flavor.objects.filter(name="custom-1c-512m-0g").count() == 1


def test_api_accepts_and_refuses_the_new_sections(api, owner, workspace, local_pool, cpu_flavor, settings, tmp_path):
    settings.ATELIER_TRAINING_HOST_MOUNT_ROOTS = [str(tmp_path)]
    base = {"name": "api-job", "pool": "local", "flavor": cpu_flavor.name, "experiment": "none", "boot_mode": "custom",
            "boot_command": "echo hi"}
    refused = api.post("/api/v1/training/jobs/", {**base, "mounts": [{"source": str(tmp_path), "path": "/cache"}]},
                       format="json")
    assert refused.status_code == 400
    assert "/cache is the scratch folder" in str(refused.json())
    created = api.post("/api/v1/training/jobs/", {
        **base, "run_as_uid": 2000, "mounts": [{"source": str(tmp_path), "path": "data"}],
        "notify_channel": "email", "notify_target": "ops@example.com", "notify_events": ["failed"]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["run_as_uid"], body["mounts"], body["notify_events"]) == (
        2000, [{"source": str(tmp_path), "path": "data"}], ["failed"])


def test_dataset_constrained_input_needs_a_matching_published_version(owner, workspace, local_pool, cpu_flavor,
                                                                      bucket, code):
    from apps.datasets.choices import DataType, VersionStatus
    from apps.datasets.models import Dataset, DatasetVersion
    from apps.training.models import Algorithm

    dataset = Dataset.objects.create(workspace=workspace, name="flowers", data_type=DataType.values[0],
                                     label_type="image_classification", input_location="storage://train-data/in",
                                     output_location="storage://train-data/out")
    for name, split in (("V001", True), ("V002", False)):
        put(f"storage://train-data/versions/{name}/manifest.json", "{}")
        DatasetVersion.objects.create(dataset=dataset, name=name, label_type="image_classification",
                                      status=VersionStatus.NORMAL, split_enabled=split,
                                      storage_uri=f"storage://train-data/versions/{name}")
    put("storage://train-data/plain/a.txt", "x")
    algorithm = Algorithm.objects.create(
        workspace=workspace, name="cls", boot_mode="preset", engine="python", code_dir="storage://train-data/code",
        boot_file="train.py", inputs=[{"name": "data_url", "description": "", "acquisition": "hyperparameter",
                                       "constraint": {"source": "dataset", "label_type": "image_classification",
                                                      "data_format": ["Default"], "split": "split_only"}}])

    def create(uri, name="ds-job"):
        return training_job_create(user=owner, workspace=workspace, name=name, pool=local_pool, flavor=cpu_flavor,
                                   experiment="none", algorithm=algorithm, inputs=[{"name": "data_url", "uri": uri}])

    for uri in ("storage://train-data/plain", "storage://train-data/versions/V002"):
        errors = _errors(lambda: create(uri))
        assert errors["inputs"] == [f"data_url: choose a published dataset version (image_classification, Default, "
                                    f"split); {uri} is not one."]
    assert create("storage://train-data/versions/V001").inputs[0]["uri"] == "storage://train-data/versions/V001"


def test_preset_framework_with_a_custom_image_is_its_own_boot_mode(owner, workspace, local_pool, cpu_flavor, code):
    """Item 1/8: preset_framework_custom_image keeps the engine's conventions and needs the image."""
    values = dict(user=owner, workspace=workspace, pool=local_pool, flavor=cpu_flavor, experiment="none",
                  code_dir="storage://train-data/code", boot_file="train.py")
    errors = _errors(lambda: training_job_create(name="job-i", boot_mode="preset_image", **values))
    assert errors["image"] == ["A preset framework with a custom image needs the image, e.g. team/pytorch:2.3."]
    job = training_job_create(name="job-i", boot_mode="preset_image", image="team/torch:2", **values)
    assert (job.boot_mode, job.image, job.get_boot_mode_display()) == \
           ("preset_image", "team/torch:2", "Preset framework (custom image)")
    spec = launch_spec(job)
    assert spec["boot"] == {"kind": "file", "path": "train.py"} and spec["install_requirements"] is True
    # An image given with the plain preset mode is that framework's custom image; without one it stays plain.
    assert training_job_create(name="job-j", boot_mode="preset", image="team/torch:3", **values).boot_mode == \
           "preset_image"
    plain = training_job_create(name="job-k", boot_mode="preset", **values)
    assert (plain.boot_mode, plain.image) == ("preset", "")


def test_the_pool_picker_shows_nodes_and_gpus(client, owner, workspace, local_pool, cpu_flavor, django_assert_max_num_queries):
    """Item 13: under the pool, its status, node flavor, idle/fragment nodes, available/total nodes and GPUs."""
    from apps.runtime.models import GpuLease, Run
    from apps.training.selectors import pool_overview

    idle = _node(local_pool, cpus=8, memory_mb=16384, gpus=2)
    busy = _node(local_pool, cpus=4, memory_mb=8192)
    busy.slots = 2
    busy.save(update_fields=["slots"])
    gone = _node(local_pool, cpus=2, memory_mb=4096)
    gone.status = "offline"
    gone.save(update_fields=["status"])
    run = Run.objects.create(workspace=workspace, created_by=owner, name="r", pool=local_pool, flavor=cpu_flavor,
                             worker=busy, status="running", command=["true"])
    GpuLease.objects.create(node=idle, index=0, run=run)
    with django_assert_max_num_queries(4):
        info = pool_overview()[local_pool.pk]
    assert info == {"status": "Enabled", "dedicated": False, "nodes_total": 3, "nodes_online": 2, "nodes_idle": 1,
                    "nodes_fragment": 1, "nodes_available": 2, "gpus_total": 2, "gpus_free": 1,
                    "node_flavor": "8 CPU · 16 GiB · 2 GPU (GPU)"}
    client.force_login(owner)
    page = client.get("/training/jobs/new").content.decode()
    assert "data-pool-info" in page and '"nodes_fragment": 1' in page
