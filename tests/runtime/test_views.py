"""Resources pages: rendering, permissions, staff forms, live partials and query counts."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.choices import Role
from apps.runtime.choices import RunStatus
from apps.runtime.models import Flavor, NodeSample, Pool, Run

from .conftest import submit
from .factories import make_worker, member

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(owner):
    return client_for(owner)


def test_every_resources_page_renders(alice, owner, workspace, local_pool, cpu_flavor):
    node = make_worker(pools=[local_pool])
    run = submit(owner, workspace, cpu_flavor, local_pool, ["python", "train.py"], name="resnet")
    for url in ("/resources/", "/resources/pools/", "/resources/flavors/", "/resources/workers/",
                f"/resources/workers/{node.pk}/", "/resources/runs/", f"/resources/runs/{run.pk}/",
                "/resources/monitoring/"):
        response = alice.get(url)
        assert response.status_code == 200, url
    page = alice.get(f"/resources/runs/{run.pk}/").content.decode()
    assert "python train.py" in page
    assert f'"socket": "/ws/runtime/runs/{run.pk}/"' in page
    assert 'data-log-viewer' in page and "vendor/plotly/plotly.min.js" in page


def test_sidebar_lists_resources(alice):
    assert 'data-section="resources"' in alice.get("/").content.decode()


def test_outsider_cannot_see_a_run_page_or_act_on_it(owner, outsider, workspace, local_pool, cpu_flavor):
    run = submit(owner, workspace, cpu_flavor, local_pool, ["true"])
    client = client_for(outsider)
    assert client.get(f"/resources/runs/{run.pk}/").status_code == 404
    assert client.get(f"/resources/runs/{run.pk}/log/").status_code == 404
    assert client.post(f"/resources/runs/{run.pk}/stop/").status_code == 404
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
    assert f"/resources/runs/{run.pk}/" not in client.get("/resources/runs/").content.decode()


def test_viewer_sees_no_stop_button_and_cannot_stop(owner, workspace, local_pool, cpu_flavor):
    viewer = member(owner, workspace, "vera", Role.VIEWER)
    run = submit(owner, workspace, cpu_flavor, local_pool, ["true"])
    client = client_for(viewer)
    page = client.get(f"/resources/runs/{run.pk}/").content.decode()
    assert "data-run-stop" not in page
    assert client.post(f"/resources/runs/{run.pk}/stop/").status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_stop_from_the_page(alice, owner, workspace, local_pool, cpu_flavor):
    run = submit(owner, workspace, cpu_flavor, local_pool, ["true"])
    response = alice.post(f"/resources/runs/{run.pk}/stop/", follow=True)
    assert response.redirect_chain[-1][0] == f"/resources/runs/{run.pk}/"
    assert Run.objects.get(pk=run.pk).status == RunStatus.STOPPED
    assert "Stop requested" in response.content.decode()


def test_staff_create_pools_and_flavors_from_the_pages(staff, local_pool):
    client = client_for(staff)
    response = client.post("/resources/pools/", {"name": "gpu-a100", "description": "A100 boxes",
                                                  "job_types": ["training", "inference"], "status": "enabled"})
    assert response.status_code == 302
    assert Pool.objects.get(name="gpu-a100").job_types == ["training", "inference"]

    bad = client.post("/resources/pools/", {"name": "Bad Name", "job_types": ["training"], "status": "enabled"})
    assert bad.status_code == 400
    assert "A pool name has 1–40 characters" in bad.content.decode()

    response = client.post("/resources/flavors/", {"name": "gpu-1x-a100", "cpus": 8, "memory_gib": "32", "gpus": 1,
                                                    "gpu_type": "A100", "pools": [local_pool.pk]})
    assert response.status_code == 302
    flavor = Flavor.objects.get(name="gpu-1x-a100")
    assert (flavor.memory_mb, flavor.gpu_type, list(flavor.pools.values_list("name", flat=True))) == \
           (32768, "A100", ["local"])


def test_staff_mark_a_pool_dedicated_or_shared(staff, local_pool):
    client = client_for(staff)
    assert client.post("/resources/pools/", {"name": "team-a", "job_types": ["training"], "status": "enabled",
                                             "dedicated": "on"}).status_code == 302
    assert Pool.objects.get(name="team-a").dedicated is True
    assert Pool.objects.get(name="local").dedicated is False  # pools are shared unless marked
    assert client.post("/resources/pools/local/status/", {"dedicated": "1"}).status_code == 302
    assert Pool.objects.get(name="local").dedicated is True
    page = client.get("/resources/pools/").content.decode()
    assert "Make shared" in page and "Dedicated" in page
    client.post("/resources/pools/local/status/", {"dedicated": "0"})
    local = Pool.objects.get(name="local")
    assert (local.dedicated, local.status) == (False, "enabled")


def test_members_cannot_use_the_staff_forms(alice, local_pool):
    assert alice.post("/resources/pools/", {"name": "mine", "job_types": ["training"],
                                            "status": "enabled"}).status_code == 403
    assert alice.post("/resources/pools/local/status/", {"status": "disabled"}).status_code == 403
    assert alice.post("/resources/pools/local/status/", {"dedicated": "1"}).status_code == 403
    assert not Pool.objects.filter(name="mine").exists()
    assert Pool.objects.get(name="local").status == "enabled"
    assert "pool-create-form" not in alice.get("/resources/pools/").content.decode()


def test_flavor_page_shows_disabled_flavors_with_the_reason(alice, local_pool, cpu_flavor, gpu_flavor):
    make_worker(pools=[local_pool])
    page = alice.get("/resources/flavors/").content.decode()
    assert 'id="flavor-gpu-1x" class="is-disabled" aria-disabled="true"' in page
    assert "Unavailable: no worker in pool local has 1 CPU, 1 GiB, 1 × GPU." in page
    assert 'id="flavor-cpu-1c-1g" class="" aria-disabled="false"' in page


def test_worker_rows_refresh_as_a_partial(alice, local_pool):
    make_worker(pools=[local_pool], hostname="gpu-box@lab", gpus=2)
    make_worker(pools=[local_pool], hostname="old@lab", heartbeat=timezone.now() - timedelta(minutes=10))
    response = alice.get("/resources/workers/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="worker-rows")
    body = response.content.decode()
    assert "<html" not in body
    assert body.count("<tr id=\"worker-") == 2
    assert 'data-status="offline"' in body and 'data-status="online"' in body
    assert "0 / 2" in body


def test_run_list_filters_and_keeps_its_query_count(alice, owner, workspace, local_pool, cpu_flavor):
    submit(owner, workspace, cpu_flavor, local_pool, ["true"], name="alpha")
    with CaptureQueriesContext(connection) as few:
        alice.get("/resources/runs/")
    for i in range(6):
        submit(owner, workspace, cpu_flavor, local_pool, ["true"], name=f"beta {i}")
    with CaptureQueriesContext(connection) as many:
        page = alice.get("/resources/runs/").content.decode()
    assert len(many) == len(few)
    assert page.count('class="cell-primary" href="/resources/runs/') == 7
    filtered = alice.get("/resources/runs/", {"q": "alpha"}).content.decode()
    assert filtered.count('class="cell-primary" href="/resources/runs/') == 1


def test_monitoring_data_has_one_line_per_node(alice, local_pool):
    node = make_worker(pools=[local_pool], hostname="w1@lab")
    now = timezone.now()
    NodeSample.objects.bulk_create([
        NodeSample(node=node, at=now - timedelta(minutes=m), cpu_percent=10.0 * m, memory_percent=50.0)
        for m in (3, 2, 1)])
    charts = alice.get("/resources/monitoring/data/?hours=1").json()["charts"]
    assert [c["key"] for c in charts] == ["cpu_percent", "memory_percent", "gpu_percent", "gpu_memory_percent"]
    cpu = charts[0]["figure"]["data"]
    assert [trace["name"] for trace in cpu] == ["w1@lab"]
    assert cpu[0]["y"] == [30.0, 20.0, 10.0]
    assert charts[2]["figure"]["data"][0]["y"] == []


@pytest.mark.parametrize("url", ["/resources/", "/resources/pools/", "/resources/flavors/", "/resources/workers/"])
def test_resource_list_pages_keep_their_query_count(alice, local_pool, url):
    def add_rows(i):
        pool = Pool.objects.create(name=f"pool-{i}", job_types=["training"])
        flavor = Flavor.objects.create(name=f"flavor-{i}", cpus=1, memory_mb=1024, gpus=i % 2)
        flavor.pools.add(pool, local_pool)
        make_worker(pools=[pool, local_pool], hostname=f"w{i}@lab", gpus=i % 2)

    add_rows(0)
    with CaptureQueriesContext(connection) as few:
        assert alice.get(url).status_code == 200
    for i in range(1, 6):
        add_rows(i)
    with CaptureQueriesContext(connection) as many:
        assert alice.get(url).status_code == 200
    assert len(many) == len(few), url
