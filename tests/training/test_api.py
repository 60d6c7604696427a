"""Training REST API: create, list, detail, stop, delete; refusals in the one error format; scoping; query counts."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.models import AuditEntry
from apps.training.models import Algorithm, TrainingJob

from .conftest import put_tree

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/training/jobs/"
ALGORITHMS = "/api/v1/training/algorithms/"
EXPERIMENTS = "/api/v1/training/experiments/"

HYPERPARAMETERS = [{"name": "lr", "type": "Float", "default": 0.01,
                    "constraint": {"kind": "range", "min": 0.0001, "max": 1}, "required": True,
                    "description": "learning rate"},
                   {"name": "epochs", "type": "Integer", "default": 3, "constraint": None, "required": False,
                    "description": ""}]


@pytest.fixture
def code(bucket):
    return put_tree("storage://train-data/code", {"train.py": "print('hi')\n", "lib/util.py": "X = 1\n"})


@pytest.fixture
def algorithm(api, code):
    response = api.post(ALGORITHMS, {"name": "algo", "code_dir": "storage://train-data/code", "boot_file": "train.py",
                                     "hyperparameters": HYPERPARAMETERS}, format="json")
    assert response.status_code == 201, response.json()
    return Algorithm.objects.get(pk=response.json()["id"])


def _job(api, django_capture_on_commit_callbacks, **overrides):
    body = {"name": "job-1", "pool": "local", "flavor": "cpu-1c-1g", "experiment": "none",
            "code_dir": "storage://train-data/code", "boot_file": "train.py"}
    body.update(overrides)
    with django_capture_on_commit_callbacks(execute=True):
        return api.post(JOBS, body, format="json")


def test_create_list_detail_stop_delete(api, owner, local_pool, cpu_flavor, algorithm,
                                        django_capture_on_commit_callbacks):
    created = _job(api, django_capture_on_commit_callbacks, algorithm=algorithm.pk, experiment="new",
                   experiment_name="exp-1", hyperparameters={"lr": 0.5}, env={"MY_FLAG": "1"}, priority=2)
    assert created.status_code == 201, created.json()
    job = created.json()
    assert job["name"] == "job-1"
    assert job["experiment"] == "exp-1" and job["algorithm"] == algorithm.pk and job["priority"] == 2
    assert job["hyperparameters"] == [{"name": "lr", "type": "Float", "value": 0.5},
                                      {"name": "epochs", "type": "Integer", "value": 3}]
    assert job["env"] == {"MY_FLAG": "1"} and job["node_count"] == 1 and job["restart_count"] == 0

    listed = api.get(JOBS).json()
    assert listed["count"] == 1 and [r["name"] for r in listed["results"]] == ["job-1"]
    detail = api.get(f"{JOBS}{job['id']}/").json()
    assert (detail["status"], detail["status_zh"]) == ("pending", "等待中")
    assert detail["status_reason"].startswith("Queued (position 1 in pool local)")
    experiments = api.get(EXPERIMENTS).json()["results"]
    assert [(e["name"], e["job_count"]) for e in experiments] == [("exp-1", 1)]

    # Delete is refused while the job can still run; nothing is removed.
    refused = api.delete(f"{JOBS}{job['id']}/")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "The job is pending; terminate it before deleting it."
    assert TrainingJob.objects.filter(pk=job["id"]).exists()

    with django_capture_on_commit_callbacks(execute=True):
        stopped = api.post(f"{JOBS}{job['id']}/stop/")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "terminated"
    again = api.post(f"{JOBS}{job['id']}/stop/")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid"

    assert api.delete(f"{JOBS}{job['id']}/").status_code == 204
    assert not TrainingJob.objects.filter(pk=job["id"]).exists()
    assert list(AuditEntry.objects.filter(action__startswith="trainjob:").values_list("action", flat=True)
                .order_by("id")) == ["trainjob:create", "trainjob:stop", "trainjob:delete"]


@pytest.mark.parametrize("overrides, field, message", [
    ({"hyperparameters": {"lr": 2}}, "hyperparameters", "lr: 2 is outside the allowed range 0.0001 to 1."),
    ({"hyperparameters": {"epochs": "three"}}, "hyperparameters", "epochs: 'three' is not an Integer."),
    ({"boot_file": "../outside.py"}, "boot_file",
     "The boot file must lie inside the code folder storage://train-data/code."),
    ({"boot_file": "lib/util.txt"}, "boot_file", '"lib/util.txt" is not a Python file; the boot file must end in .py.'),
    ({"inputs": [{"name": "data_url", "uri": "storage://train-data/nope"}]}, "inputs",
     "data_url: storage://train-data/nope does not exist."),
    ({"node_count": 3}, "node_count",
     "3 nodes requested, but pool local has 0 online workers that can serve cpu-1c-1g; one node runs per worker."),
    ({"name": "has space"}, "name", '"has space" is not a valid name: 1–64 characters: letters, digits, - and _.'),
])
def test_bad_input_is_refused_in_the_error_format(api, local_pool, cpu_flavor, algorithm, overrides, field, message,
                                                  django_capture_on_commit_callbacks):
    if field == "inputs":
        algorithm.inputs = [{"name": "data_url", "description": "", "acquisition": "hyperparameter",
                             "constraint": None}]
        algorithm.save()
    # Hyperparameter and channel rules come from the algorithm; code and node rules are checked on the job's own.
    chosen = {"algorithm": algorithm.pk} if field in ("hyperparameters", "inputs") else {}
    response = _job(api, django_capture_on_commit_callbacks, **chosen, **overrides)
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": f"{field}: {message}",
                                         "fields": {field: [message]}}}
    assert TrainingJob.objects.count() == 0
    assert not AuditEntry.objects.filter(action="trainjob:create").exists()


def test_unknown_pool_and_malformed_body_are_refused(api, local_pool, cpu_flavor, code,
                                                     django_capture_on_commit_callbacks):
    response = _job(api, django_capture_on_commit_callbacks, pool="nowhere")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "pool: no such pool.",
                                         "fields": {"pool": ["No such pool."]}}}
    response = api.post(JOBS, {"pool": "local"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "flavor"}
    assert TrainingJob.objects.count() == 0


def test_another_workspace_sees_404_and_changes_nothing(api, outsider_api, local_pool, cpu_flavor, algorithm,
                                                        django_capture_on_commit_callbacks):
    job = _job(api, django_capture_on_commit_callbacks).json()
    for call in (lambda: outsider_api.get(f"{JOBS}{job['id']}/"),
                 lambda: outsider_api.post(f"{JOBS}{job['id']}/stop/"),
                 lambda: outsider_api.delete(f"{JOBS}{job['id']}/"),
                 lambda: outsider_api.get(f"{JOBS}{job['id']}/metrics/"),
                 lambda: outsider_api.get(f"{ALGORITHMS}{algorithm.pk}/"),
                 lambda: outsider_api.delete(f"{ALGORITHMS}{algorithm.pk}/")):
        response = call()
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
    assert TrainingJob.objects.get(pk=job["id"]).status == "pending"
    assert Algorithm.objects.filter(pk=algorithm.pk).exists()
    assert outsider_api.get(JOBS).json()["count"] == 0
    assert not AuditEntry.objects.filter(action__in=["trainjob:stop", "trainjob:delete", "algorithm:delete"]).exists()


def test_list_query_counts_do_not_grow_with_rows(api, local_pool, cpu_flavor, algorithm,
                                                 django_capture_on_commit_callbacks):
    _job(api, django_capture_on_commit_callbacks, name="first", experiment="new", experiment_name="e-first")
    counts = {}
    for url in (JOBS, EXPERIMENTS, ALGORITHMS):
        with CaptureQueriesContext(connection) as few:
            assert api.get(url).status_code == 200
        counts[url] = len(few)
    for i in range(4):
        _job(api, django_capture_on_commit_callbacks, name=f"job-{i}", experiment="new", experiment_name=f"e-{i}")
        api.post(ALGORITHMS, {"name": f"algo-{i}", "code_dir": "storage://train-data/code", "boot_file": "train.py"},
                 format="json")
    for url, expected in ((JOBS, 5), (EXPERIMENTS, 5), (ALGORITHMS, 5)):
        with CaptureQueriesContext(connection) as many:
            assert api.get(url).json()["count"] == expected
        assert len(many) == counts[url], url


def test_jobs_and_algorithms_filter_by_tag(api, local_pool, cpu_flavor, code, django_capture_on_commit_callbacks):
    _job(api, django_capture_on_commit_callbacks, name="vision", tags={"team": "vision", "stage": "dev"})
    _job(api, django_capture_on_commit_callbacks, name="speech", tags={"team": "speech"})
    _job(api, django_capture_on_commit_callbacks, name="untagged")
    assert [r["name"] for r in api.get(JOBS, {"tag": "team=vision"}).json()["results"]] == ["vision"]
    assert [r["name"] for r in api.get(JOBS, {"tag": "stage=dev"}).json()["results"]] == ["vision"]
    assert api.get(JOBS, {"tag": "team=nobody"}).json()["results"] == []
    bad = api.get(JOBS, {"tag": "team__contains=v"})
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {
        "tag": ['"team__contains=v" is not a tag; write key=value (keys: letters, digits, - and _).']}
    api.post(ALGORITHMS, {"name": "tagged", "code_dir": "storage://train-data/code", "boot_file": "train.py",
                          "tags": {"team": "vision"}}, format="json")
    api.post(ALGORITHMS, {"name": "plain", "code_dir": "storage://train-data/code", "boot_file": "train.py"},
             format="json")
    listed = api.get(ALGORITHMS, {"tag": "team=vision"}).json()["results"]
    assert [a["name"] for a in listed] == ["tagged"]
