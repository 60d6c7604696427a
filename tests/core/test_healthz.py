"""/healthz: open to load balancers, never cached, and names what is down."""
from datetime import timedelta

import pytest
from django.utils import timezone


@pytest.mark.django_db
def test_healthz_reports_database_redis_and_workers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    # No worker node has registered in a fresh database.
    assert response.json() == {"database": "ok", "redis": "ok", "workers": 0}


@pytest.mark.django_db
def test_healthz_answers_503_naming_redis_when_it_is_down(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'no-redis-here.sock'}"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "error: ConnectionError", "workers": 0}


@pytest.mark.django_db
def test_healthz_answers_503_when_redis_refuses_tcp(client, settings):
    # Port 9 (discard) on loopback has no listener: the connection is refused at once.
    settings.REDIS_URL = "redis://127.0.0.1:9/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["redis"] == "error: ConnectionError"


@pytest.mark.django_db
def test_healthz_needs_no_login_and_only_answers_get(client):
    assert client.get("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_healthz_counts_only_workers_with_a_recent_heartbeat(client, settings):
    from apps.runtime.models import WorkerNode
    from apps.runtime.scheduling import worker_node_register

    settings.ATELIER_WORKER_GPUS = "0"  # no GPU discovery on the test machine
    worker_node_register(hostname="w1@test", pool_names=["local"], slots=2, pid=101)
    silent, _ = worker_node_register(hostname="w2@test", pool_names=["local"], slots=2, pid=102)
    WorkerNode.objects.filter(pk=silent.pk).update(
        last_heartbeat=timezone.now() - timedelta(seconds=settings.ATELIER_RUNTIME_LOST_SECONDS + 1))

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok", "workers": 1}
