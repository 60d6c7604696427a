"""Algorithm pages (create, edit, detail tabs, "Save as algorithm") and the list filters, sorting and
column chooser of the algorithm and job lists."""
from __future__ import annotations

import json
import uuid

import pytest
from django.utils import timezone

from apps.runtime.models import Flavor, NodeSample, Run, WorkerNode
from apps.training.choices import TrainingStatus
from apps.training.models import Algorithm, TrainingJob
from apps.training.services import training_job_create

from .conftest import put, put_tree

pytestmark = pytest.mark.django_db

HPS = [{"name": "lr", "type": "Float", "default": 0.1, "constraint": {"kind": "range", "min": 0.001, "max": 1},
        "required": True, "description": "learning rate, step"},
       {"name": "opt", "type": "String", "default": "adam", "constraint": {"kind": "enum", "values": ["adam", "sgd"]},
        "required": False, "description": ""}]
INPUTS = [{"name": "data_url", "description": "images", "acquisition": "hyperparameter",
           "constraint": {"source": "dataset", "label_type": "image_classification", "data_format": ["Default"],
                          "split": "split_only"}}]
OUTPUTS = [{"name": "train_url", "description": "", "acquisition": "env"}]


@pytest.fixture
def code(bucket):
    return put_tree("storage://train-data/code", {"train.py": "print('hi')\n", "lib/util.py": "X = 1\n"})


def _post(client, url, **overrides):
    data = {"name": "algo-1", "description": "first", "boot_mode": "preset", "engine": "python",
            "code_dir": "storage://train-data/code", "boot_file": "train.py", "inputs": json.dumps(INPUTS),
            "outputs": json.dumps(OUTPUTS), "hyperparameters": json.dumps(HPS), "policies": "",
            "resource_types": ["cpu"], "distributed": "on"}
    data.update(overrides)
    return client.post(url, {k: v for k, v in data.items() if v is not None})


def test_create_algorithm_with_every_section(client, owner, workspace, code):
    client.force_login(owner)
    assert client.get("/training/algorithms/new").status_code == 200
    response = _post(client, "/training/algorithms/new", policies='{"algorithm": "tpe"}', image="team/torch:1")
    assert response.status_code == 302, response.content.decode()[:2000]
    algorithm = Algorithm.objects.get(name="algo-1")
    assert response["Location"] == f"/training/algorithms/{algorithm.pk}/"
    assert (algorithm.boot_file, algorithm.code_dir, algorithm.engine) == ("train.py", "storage://train-data/code",
                                                                          "python")
    assert algorithm.inputs == INPUTS and algorithm.outputs == OUTPUTS
    assert [h["name"] for h in algorithm.hyperparameters] == ["lr", "opt"]
    assert algorithm.policies == {"algorithm": "tpe"}
    assert (algorithm.boot_mode, algorithm.image) == ("preset_image", "team/torch:1")  # preset + custom image
    assert "Preset framework (custom image)" in client.get(response["Location"]).content.decode()
    assert (algorithm.resource_types, algorithm.distributed, algorithm.multi_card) == (["cpu"], True, False)


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"boot_file": "train.sh"}, "boot_file", "the boot file must end in .py"),
    ({"boot_file": "../x.py"}, "boot_file", "must lie inside the code folder"),
    ({"boot_file": "nothere.py"}, "boot_file", "does not exist"),
    ({"boot_mode": "custom", "boot_command": ""}, "boot_command", "Give the boot command"),
    ({"hyperparameters": json.dumps([{**HPS[0], "name": "bad name"}])}, "hyperparameters", "not a valid name"),
    ({"hyperparameters": json.dumps([{**HPS[0], "default": 5}])}, "hyperparameters",
     "Hyperparameter lr default: 5 is outside the allowed range 0.001 to 1."),
    ({"hyperparameters": json.dumps([{**HPS[1], "default": "rmsprop"}])}, "hyperparameters",
     "rmsprop is not one of the allowed values (adam, sgd)."),
    ({"hyperparameters": json.dumps([{**HPS[0], "description": "bad; text!"}])}, "hyperparameters",
     "the description may hold only"),
    ({"policies": "[1, 2]"}, "policies", "Give a JSON object"),
    ({"name": "bad name!"}, "name", "is not a valid name"),
])
def test_bad_algorithm_input_is_refused_inline(client, owner, workspace, code, overrides, field, message):
    client.force_login(owner)
    response = _post(client, "/training/algorithms/new", **overrides)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Algorithm.objects.exists()


def test_size_warning_above_50_mb(client, owner, workspace, bucket, monkeypatch):
    from apps.training import codedirs

    put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})
    monkeypatch.setattr(codedirs, "WARN_BYTES", 5)  # the same rule as 50 MiB, without writing 50 MiB
    client.force_login(owner)
    response = _post(client, "/training/algorithms/new")
    page = client.get(response["Location"]).content.decode()
    assert "keep it under 50 MiB" in page


def test_edit_keeps_name_and_id(client, owner, workspace, code):
    client.force_login(owner)
    _post(client, "/training/algorithms/new")
    algorithm = Algorithm.objects.get()
    page = client.get(f"/training/algorithms/{algorithm.pk}/edit").content.decode()
    assert "cannot be changed" in page and 'name="name"' in page and "disabled" in page
    response = _post(client, f"/training/algorithms/{algorithm.pk}/edit", name="renamed", description="second",
                     boot_mode="custom", boot_command="python train.py && echo ok", resource_types=None)
    assert response.status_code == 302, response.content.decode()[:2000]
    algorithm.refresh_from_db()
    assert (algorithm.pk, algorithm.name, algorithm.description) == (algorithm.pk, "algo-1", "second")
    assert (algorithm.boot_mode, algorithm.boot_command, algorithm.resource_types) == (
        "custom", "python train.py && echo ok", [])


def test_detail_tabs_and_runtime_preview(client, owner, workspace, code, local_pool, cpu_flavor):
    client.force_login(owner)
    _post(client, "/training/algorithms/new")
    algorithm = Algorithm.objects.get()
    page = client.get(f"/training/algorithms/{algorithm.pk}/").content.decode()
    for text in ("Basic info", "Training jobs", "Runtime environment preview", "$MA_MOUNT_PATH/user-job-dir/code/train.py",
                 "$MA_MOUNT_PATH/inputs/data_url_0/", "$MA_MOUNT_PATH/outputs/train_url_0/", "learning rate, step",
                 "range 0.001 to 1", "one of adam, sgd", "split: split_only"):
        assert text in page, text
    job = TrainingJob.objects.create(workspace=workspace, created_by=owner, name="uses-algo", pool=local_pool,
                                     flavor=cpu_flavor, algorithm=algorithm, status=TrainingStatus.PENDING)
    jobs_tab = client.get(f"/training/algorithms/{algorithm.pk}/", {"tab": "jobs"}).content.decode()
    assert "uses-algo" in jobs_tab and "Pending" in jobs_tab
    assert f'href="/training/jobs/{job.pk}/"' in jobs_tab
    # Inline description edit.
    client.post(f"/training/algorithms/{algorithm.pk}/", {"description": "edited inline"})
    algorithm.refresh_from_db()
    assert algorithm.description == "edited inline"


def test_save_as_algorithm_opens_the_prefilled_form(client, owner, workspace, code, local_pool, cpu_flavor):
    job = training_job_create(user=owner, workspace=workspace, name="src-job", pool=local_pool, flavor=cpu_flavor,
                              experiment="none", code_dir="storage://train-data/code", boot_file="train.py",
                              inputs=[{"name": "data_url", "uri": "storage://train-data/code"}],
                              outputs=[{"name": "train_url", "uri": "storage://train-data/out",
                                        "acquisition": "env"}],
                              hyperparameters={"lr": "0.5"})
    client.force_login(owner)
    response = client.post(f"/training/jobs/{job.pk}/save-as-algorithm")
    assert response["Location"] == f"/training/algorithms/new?from_job={job.pk}"
    page = client.get(response["Location"]).content.decode()
    assert 'value="src-job-algorithm"' in page and "Pre-filled from training job" in page
    assert 'value="storage://train-data/code"' in page and 'value="train.py"' in page
    assert "train_url" in page and "data_url" in page
    assert not Algorithm.objects.exists()  # nothing is saved until the form is submitted


def test_outsiders_get_404(client, outsider, owner, workspace, code):
    algorithm = Algorithm.objects.create(workspace=workspace, name="mine", boot_mode="custom", boot_command="x")
    client.force_login(outsider)
    assert client.get(f"/training/algorithms/{algorithm.pk}/").status_code == 404
    assert client.get(f"/training/algorithms/{algorithm.pk}/edit").status_code == 404
    assert client.post(f"/training/algorithms/{algorithm.pk}/").status_code == 404
    assert client.post(f"/training/algorithms/{algorithm.pk}/delete", {"confirm_name": "mine"}).status_code == 404
    assert Algorithm.objects.filter(pk=algorithm.pk).exists()


def test_algorithm_list_filters_sort_and_column_chooser(client, owner, workspace):
    Algorithm.objects.create(workspace=workspace, name="alpha", boot_mode="custom", boot_command="x",
                             image="org/img:1", code_dir="storage://b/alpha-code", description="vision model")
    Algorithm.objects.create(workspace=workspace, name="beta", boot_mode="custom", boot_command="x",
                             code_dir="storage://b/beta-code", description="tabular")
    client.force_login(owner)
    page = client.get("/training/algorithms/").content.decode()
    assert 'data-column-chooser="algorithms"' in page and 'data-col="image"' in page and "core/column_chooser.js" in page
    assert 'data-default="hidden"' in page  # ID and image start hidden
    for params, shown, hidden in (({"name": "alp"}, "alpha", "beta"), ({"image": "org/img"}, "alpha", "beta"),
                                  ({"code_dir": "beta-code"}, "beta", "alpha"),
                                  ({"description": "tabul"}, "beta", "alpha")):
        html = client.get("/training/algorithms/", params).content.decode()
        assert f">{shown}<" in html and f">{hidden}<" not in html, params
    html = client.get("/training/algorithms/", {"sort": "-name"}).content.decode()
    assert html.index(">beta<") < html.index(">alpha<")
    alpha = Algorithm.objects.get(name="alpha")
    assert f'href="/training/algorithms/{alpha.pk}/delete"' in page  # delete after typing the name
    confirm = client.get(f"/training/algorithms/{alpha.pk}/delete").content.decode()
    assert "Type <strong class=\"mono\">alpha</strong> to confirm" in confirm
    wrong = client.post(f"/training/algorithms/{alpha.pk}/delete", {"confirm_name": "Alpha"})
    assert wrong.status_code == 400 and Algorithm.objects.filter(name="alpha").exists()
    done = client.post(f"/training/algorithms/{alpha.pk}/delete", {"confirm_name": "alpha"})
    assert done["Location"] == "/training/algorithms/" and not Algorithm.objects.filter(name="alpha").exists()


def _gpu_job(owner, workspace, pool, name, util):
    flavor = Flavor.objects.get_or_create(name="gpu-1", defaults={"cpus": 1, "memory_mb": 512, "gpus": 1})[0]
    flavor.pools.add(pool)
    node = WorkerNode.objects.create(hostname=f"{name}@h", host="127.0.0.1", cpus=4, memory_mb=4096,
                                     gpus=[{"index": 0, "name": "GPU", "memory_mb": 1}], started_at=timezone.now(),
                                     last_heartbeat=timezone.now())
    group = uuid.uuid4()
    job = TrainingJob.objects.create(workspace=workspace, created_by=owner, name=name, pool=pool, flavor=flavor,
                                     status=TrainingStatus.RUNNING, run_group=group, boot_mode="custom",
                                     boot_command="x")
    started = timezone.now() - timezone.timedelta(minutes=5)
    Run.objects.create(workspace=workspace, created_by=owner, name=name, command=["x"], flavor=flavor, pool=pool,
                       group=group, node_rank=0, node_count=1, worker=node, started_at=started)
    for value in util:
        NodeSample.objects.create(node=node, at=timezone.now(), cpu_percent=10, memory_percent=10, gpu_percent=value)
    return job


def test_job_list_filters_only_mine_and_low_utilization(client, owner, teammate, workspace, local_pool, cpu_flavor):
    low = _gpu_job(owner, workspace, local_pool, "busy-low", [10, 30])
    _gpu_job(owner, workspace, local_pool, "busy-high", [90, 80])
    other = TrainingJob.objects.create(workspace=workspace, created_by=teammate, name="bobs-job", pool=local_pool,
                                       flavor=cpu_flavor, status=TrainingStatus.FAILED, boot_mode="preset")
    client.force_login(owner)
    page = client.get("/training/").content.decode()
    assert page.count('data-testid="low-util"') == 1 and "Low GPU use 20.0%" in page
    assert 'data-column-chooser="jobs"' in page and "Show only mine" in page
    mine = client.get("/training/", {"mine": "alice"}).content.decode()
    assert "bobs-job" not in mine and "busy-low" in mine
    by_id = client.get("/training/", {"id": str(low.pk)}).content.decode()
    assert "busy-low" in by_id and "busy-high" not in by_id
    assert "bobs-job" in client.get("/training/", {"type": "preset"}).content.decode()
    assert "busy-low" not in client.get("/training/", {"type": "preset"}).content.decode()
    assert "bobs-job" in client.get("/training/", {"status": "failed"}).content.decode()
    assert "bobs-job" in client.get("/training/", {"name": "bobs"}).content.decode()
    bad = client.get("/training/", {"id": "x1"})
    assert bad.status_code == 200 and "is not a valid id; give a whole number" in bad.content.decode()
    assert other.pk


def test_list_pages_queries_do_not_grow_with_rows(client, owner, workspace, local_pool, cpu_flavor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(owner)

    def count(url):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    def add(i):
        algorithm = Algorithm.objects.create(workspace=workspace, name=f"a{i}", boot_mode="custom", boot_command="x")
        TrainingJob.objects.create(workspace=workspace, created_by=owner, name=f"j{i}", pool=local_pool,
                                   flavor=cpu_flavor, algorithm=algorithm, status=TrainingStatus.COMPLETED)

    add(0)
    jobs_one, algorithms_one = count("/training/"), count("/training/algorithms/")
    for i in range(1, 8):
        add(i)
    assert count("/training/") == jobs_one
    assert count("/training/algorithms/") == algorithms_one
