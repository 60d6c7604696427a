"""The harness itself: the ASGI server serves HTTP and a worker process runs tasks."""
import socket
import time

import httpx
import pytest


def test_asgi_server_serves_login_page(asgi_server):
    response = httpx.get(f"{asgi_server.url}/accounts/login/")
    assert response.status_code == 200
    assert "Sign in" in response.text


@pytest.mark.worker
def test_celery_worker_answers_ping(celery_worker):
    from console.celery import app

    worker = celery_worker(name="harness")
    # A broadcast reaches only mailboxes already subscribed: "ready" can be logged a moment before the
    # worker's remote-control consumer listens, so ask again until it answers.
    deadline = time.monotonic() + 30
    replies = []
    while not replies and time.monotonic() < deadline:
        replies = app.control.ping(destination=[f"{worker.name}@{socket.gethostname()}"], timeout=2)
    assert replies and list(replies[0].values())[0] == {"ok": "pong"}
