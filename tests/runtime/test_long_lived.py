"""Long-lived runs (notebook servers, model servers): port, readiness by health URL, restart on crash."""
from __future__ import annotations

import sys
import urllib.request

import pytest

from apps.runtime.callbacks import owner_callback_register, owner_callback_unregister
from apps.runtime.choices import RunStatus
from apps.runtime.services import run_stop

from .conftest import events_of, submit, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Serves /health on $PORT; on its first attempt it crashes once it has been healthy for a moment.
SERVER = """
import http.server, os, threading, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok attempt " + os.environ["ATELIER_ATTEMPT"].encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("serving on", os.environ["PORT"], flush=True)
if os.environ["ATELIER_ATTEMPT"] == "1" and os.environ.get("CRASH_ONCE"):
    threading.Timer(1.5, lambda: os._exit(9)).start()
server.serve_forever()
"""


def test_a_server_becomes_ready_with_its_endpoint_and_stops(engine_worker, owner, workspace, cpu_flavor, local_pool):
    changes = []
    owner_callback_register("tests.server", changes.append)
    try:
        engine_worker()
        run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SERVER], long_lived=True,
                     health_path="/health", job_type="inference", owner_type="tests.server", owner_id="42")
        run = wait_for(lambda: _ready(run), timeout=30, message="the server to be ready")

        host, port = run.endpoint.split(":")
        assert host == "127.0.0.1" and int(port) == run.port
        with urllib.request.urlopen(f"http://{run.endpoint}/health", timeout=5) as response:
            assert response.read() == b"ok attempt 1"
        assert f"Ready at {run.endpoint}." in events_of(run)

        run_stop(user=owner, run=run)
        wait_status(run, RunStatus.STOPPED, timeout=15)
    finally:
        owner_callback_unregister("tests.server")
    # Callbacks run in the worker for worker-side changes; in this process we saw the stop request.
    assert [(c.kind, c.previous, c.status, c.owner_id) for c in changes] == [
        ("status", RunStatus.RUNNING, RunStatus.STOPPING, "42")
    ]


def test_a_crashing_server_is_restarted_and_ready_again(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SERVER], long_lived=True,
                 health_path="/health", max_restarts=1, env={"CRASH_ONCE": "1"}, job_type="inference")

    wait_for(lambda: "Restarted (1/1) after failure" in " ".join(events_of(run)), timeout=30,
             message="the crash to be followed by a restart")
    run = wait_for(lambda: _ready(run, attempt=2), timeout=30, message="the restarted server to be ready")

    with urllib.request.urlopen(f"http://{run.endpoint}/health", timeout=5) as response:
        assert response.read() == b"ok attempt 2"
    assert any(m.startswith("Failed: Exited with exit code 9") for m in events_of(run))
    run_stop(user=owner, run=run)
    wait_status(run, RunStatus.STOPPED, timeout=15)


def _ready(run, attempt=1):
    from apps.runtime.models import Run

    fresh = Run.objects.get(pk=run.pk)
    return fresh if fresh.ready_at and fresh.attempt == attempt and fresh.status == RunStatus.RUNNING else None
