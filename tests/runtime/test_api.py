"""Runtime REST API: permissions, validation errors, run submit/stop/restart, logs, metrics, query counts."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.choices import Role
from apps.core.models import AuditEntry
from apps.runtime.choices import RunStatus
from apps.runtime.models import Flavor, Metric, Pool, Run
from apps.runtime.services import run_log_path

from .conftest import submit
from .factories import make_worker, member

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runtime/runs/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# ---- pools and flavors ------------------------------------------------------------------------


def test_members_read_pools_and_staff_alone_create_them(api, staff, owner, workspace, local_pool):
    assert api.get("/api/v1/runtime/pools/").json()["results"][0] == {
        "id": local_pool.pk, "name": "local", "description": "", "job_types": ["training", "notebook", "inference"],
        "status": "enabled", "dedicated": False, "queue": "pool.local",
        "created_at": local_pool.created_at.isoformat().replace("+00:00", "Z"),
    }

    refused = api.post("/api/v1/runtime/pools/", {"name": "gpu", "job_types": ["training"]}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert not Pool.objects.filter(name="gpu").exists()

    created = client_for(staff).post("/api/v1/runtime/pools/", {"name": "gpu", "job_types": ["training"]},
                                     format="json")
    assert created.status_code == 201
    assert created.json()["queue"] == "pool.gpu"
    marked = client_for(staff).patch("/api/v1/runtime/pools/gpu/", {"dedicated": True}, format="json")
    assert marked.status_code == 200 and marked.json()["dedicated"] is True
    assert AuditEntry.objects.filter(action="pool:create", object_repr="gpu", actor=staff).count() == 1


def test_pool_name_rules_are_explained(staff, db):
    response = client_for(staff).post("/api/v1/runtime/pools/", {"name": "Bad_Name"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"name": [
        "A pool name has 1–40 characters: lowercase letters, digits and hyphens, starting with a letter and not "
        "ending with a hyphen."]}


def test_resources_need_a_signed_in_user(db, local_pool):
    for path in ("pools/", "flavors/", "workers/", "runs/"):
        response = APIClient().get(f"/api/v1/runtime/{path}")
        assert response.status_code in (401, 403)
        assert response.json()["error"]["code"] == "not_authenticated"


def test_flavor_shows_why_it_is_unavailable_until_a_worker_can_serve_it(api, local_pool, cpu_flavor, gpu_flavor):
    def flavors():
        return {f["name"]: (f["available"], f["unavailable_reason"])
                for f in api.get("/api/v1/runtime/flavors/").json()["results"]}

    assert flavors() == {"cpu-1c-1g": (False, "Unavailable: no online worker in pool local."),
                         "gpu-1x": (False, "Unavailable: no online worker in pool local.")}
    make_worker(pools=[local_pool])
    assert flavors() == {"cpu-1c-1g": (True, ""),
                         "gpu-1x": (False, "Unavailable: no worker in pool local has 1 CPU, 1 GiB, 1 × GPU.")}


def test_flavor_create_validates_resources(staff, local_pool):
    response = client_for(staff).post("/api/v1/runtime/flavors/",
                                      {"name": "big", "cpus": 0, "memory_mb": 10, "pools": ["local"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "cpus": ["CPU cores must be a whole number from 1 to 4096."],
        "memory_mb": ["Memory must be a whole number of MiB from 64 to 67108864."],
    }
    assert not Flavor.objects.filter(name="big").exists()


# ---- runs -------------------------------------------------------------------------------------


def test_submit_queues_a_run_and_says_why_it_waits(api, owner, workspace, local_pool, cpu_flavor,
                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(RUNS, {"name": "train", "command": "python train.py --lr 0.1", "flavor": "cpu-1c-1g"},
                            format="json")

    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["id"])
    body = api.get(f"{RUNS}{run.pk}/").json()
    assert run.command == ["python", "train.py", "--lr", "0.1"]
    assert body["status"] == "queued"
    assert body["status_reason"] == "No online worker serves pool local."
    assert body["nodes"] == [{"id": run.pk, "node_rank": 0, "status": "queued", "worker": ""}]
    assert body["log_lines"] == 0 and body["websocket"] == f"/ws/runtime/runs/{run.pk}/"
    assert AuditEntry.objects.filter(action="run:create", actor=owner, object_id=str(run.pk)).count() == 1


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"flavor": "nope"}, {"flavor": ['There is no flavor named "nope".']}),
        ({"env": {"ATELIER_SECRET": "x"}},
         {"env": ["ATELIER_SECRET: names starting with ATELIER_ are set by Atelier."]}),
        ({"env": {"1BAD": "x"}}, {"env": ["'1BAD' is not a valid variable name (letters, digits, _; not starting "
                                          "with a digit)."]}),
        ({"max_restarts": 4}, {"max_restarts": ["Automatic restarts: give 0, 1, 2 or 3."]}),
        ({"node_count": 2, "long_lived": True}, {"node_count": ["A long-lived run (notebook, model server) runs on "
                                                                "one node."]}),
        ({"inputs": [{"name": "data", "uri": "storage://not-mine/x"}]},
         {"inputs": ['data: The bucket "not-mine" does not exist.']}),
        ({"working_dir": "../etc"}, {"working_dir": ['The path must not contain "." or ".." folders.']}),
        ({"command": "python 'unclosed"}, {"command": ["The command cannot be split into arguments: No closing "
                                                       "quotation."]}),
    ],
)
def test_submit_refusals_name_the_field_and_create_nothing(api, local_pool, cpu_flavor, payload, fields):
    body = {"name": "x", "command": ["python", "-c", "1"], "flavor": "cpu-1c-1g", **payload}
    response = api.post(RUNS, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert not Run.objects.exists()


def test_viewers_cannot_submit_or_stop(owner, workspace, local_pool, cpu_flavor):
    viewer = member(owner, workspace, "vera", Role.VIEWER)
    run = submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"])
    client = client_for(viewer)

    refused = client.post(RUNS, {"workspace": workspace.pk, "name": "x", "command": ["true"], "flavor": "cpu-1c-1g"},
                          format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "Your role does not allow run:create."
    assert client.get(f"{RUNS}{run.pk}/").status_code == 200
    response = client.post(f"{RUNS}{run.pk}/stop/")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Your role does not allow run:stop."
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
    assert Run.objects.count() == 1


def test_outsider_gets_404_everywhere_and_changes_nothing(outsider_api, owner, workspace, local_pool, cpu_flavor):
    run = submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"])
    for suffix in ("", "log/", "log/lines/", "metrics/", "events/"):
        assert outsider_api.get(f"{RUNS}{run.pk}/{suffix}").status_code == 404
    for action in ("stop/", "restart/"):
        response = outsider_api.post(f"{RUNS}{run.pk}/{action}")
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
    assert outsider_api.get(RUNS).json()["count"] == 0
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_stop_then_restart_through_the_api(api, owner, workspace, local_pool, cpu_flavor):
    run = submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"])

    stopped = api.post(f"{RUNS}{run.pk}/stop/").json()
    assert (stopped["status"], stopped["status_reason"]) == ("stopped", "Stopped by alice.")
    again = api.post(f"{RUNS}{run.pk}/stop/")
    assert again.status_code == 400
    assert again.json()["error"]["message"] == "The run is already stopped; there is nothing to stop."

    restarted = api.post(f"{RUNS}{run.pk}/restart/").json()
    assert (restarted["status"], restarted["attempt"], restarted["restart_count"]) == ("queued", 2, 1)
    refused = api.post(f"{RUNS}{run.pk}/restart/")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "The run is queued; stop it before restarting it."


def test_list_filters_and_rejects_unknown_values(api, owner, workspace, local_pool, cpu_flavor):
    first = submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"], name="alpha")
    submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"], name="beta")
    api.post(f"{RUNS}{first.pk}/stop/")

    assert [r["name"] for r in api.get(RUNS, {"status": "stopped"}).json()["results"]] == ["alpha"]
    assert [r["name"] for r in api.get(RUNS, {"q": "bet"}).json()["results"]] == ["beta"]
    bad = api.get(RUNS, {"status": "exploded"})
    assert bad.status_code == 400
    assert list(bad.json()["error"]["fields"]) == ["status"]


def test_run_list_query_count_does_not_grow_with_rows(api, owner, workspace, local_pool, cpu_flavor):
    submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"])
    with CaptureQueriesContext(connection) as few:
        api.get(RUNS)
    for i in range(5):
        submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"], name=f"run {i}")
    with CaptureQueriesContext(connection) as many:
        assert api.get(RUNS).json()["count"] == 6
    assert len(many) == len(few)


def test_log_lines_download_metrics_and_events(api, owner, workspace, local_pool, cpu_flavor):
    from apps.core.storage import get_storage

    run = submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"])
    path = get_storage().local_path(run_log_path(run))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"line {i}\n" for i in range(1, 8)) + "partial")
    now = timezone.now()
    Metric.objects.bulk_create([Metric(run=run, name="loss", step=s, value=1 / (s + 1), created_at=now)
                                for s in range(3)])

    assert api.get(f"{RUNS}{run.pk}/log/lines/", {"after": 5}).json() == {"first": 6, "total": 7,
                                                                          "lines": ["line 6", "line 7"]}
    assert api.get(f"{RUNS}{run.pk}/log/lines/", {"limit": 2}).json() == {"first": 6, "total": 7,
                                                                          "lines": ["line 6", "line 7"]}
    assert api.get(f"{RUNS}{run.pk}/log/lines/", {"limit": 0}).status_code == 400
    download = api.get(f"{RUNS}{run.pk}/log/")
    assert download["Content-Disposition"] == f'attachment; filename="run-{run.pk}.log"'
    assert b"".join(download.streaming_content).startswith(b"line 1\nline 2\n")
    assert api.get(f"{RUNS}{run.pk}/metrics/").json() == {"series": {"loss": [
        {"step": 0, "value": 1.0}, {"step": 1, "value": 0.5}, {"step": 2, "value": 1 / 3}]}}
    events = api.get(f"{RUNS}{run.pk}/events/").json()["results"]
    assert [e["message"] for e in events] == ["Queued in pool local with flavor cpu-1c-1g (1 CPU, 1 GiB)."]


def test_worker_detail_lists_only_runs_the_caller_may_see(api, outsider_api, owner, outsider, workspace, local_pool,
                                                          cpu_flavor):
    node = make_worker(pools=[local_pool])
    mine = submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"])
    Run.objects.filter(pk=mine.pk).update(status=RunStatus.RUNNING, worker=node)

    assert [r["id"] for r in api.get(f"/api/v1/runtime/workers/{node.pk}/").json()["runs"]] == [mine.pk]
    theirs = outsider_api.get(f"/api/v1/runtime/workers/{node.pk}/").json()
    assert theirs["runs"] == [] and theirs["running"] == 1


@pytest.mark.parametrize("path", ["pools/", "flavors/", "workers/"])
def test_resource_lists_keep_their_query_count(api, local_pool, path):
    def add_rows(i):
        flavor = Flavor.objects.create(name=f"flavor-{i}", cpus=1, memory_mb=1024)
        flavor.pools.add(Pool.objects.create(name=f"pool-{i}", job_types=["training"]), local_pool)
        make_worker(pools=[local_pool], hostname=f"w{i}@lab")

    add_rows(0)
    api.get(f"/api/v1/runtime/{path}")  # warm per-user caches (roles) so both counts compare like for like
    with CaptureQueriesContext(connection) as few:
        api.get(f"/api/v1/runtime/{path}")
    for i in range(1, 6):
        add_rows(i)
    with CaptureQueriesContext(connection) as many:
        assert api.get(f"/api/v1/runtime/{path}").json()["count"] >= 6
    assert len(many) == len(few)
