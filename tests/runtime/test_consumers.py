"""The run log WebSocket over a real ASGI server and a real worker: backlog then live, refusals, a burst."""
from __future__ import annotations

import json
import sys
import time

import pytest
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from apps.core.consumers import DENIED_CLOSE_CODE
from apps.runtime.choices import RunStatus

from .conftest import submit, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def open_socket(server, path: str, user=None):
    headers = {}
    if user is not None:
        client = Client()
        client.force_login(user)
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return connect(server.url.replace("http", "ws") + path, origin=server.url, additional_headers=headers,
                   open_timeout=10, max_size=2 ** 24)


class Collector:
    """Reads messages and keeps log lines by sequence number, checking order and uniqueness."""

    def __init__(self, ws):
        self.ws = ws
        self.lines: list[str] = []
        self.first: int | None = None
        self.kinds: list[str] = []
        self.statuses: list[str] = []
        self.points: list[dict] = []

    def read(self, until, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not until(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; got {len(self.lines)} lines, kinds {self.kinds[-5:]}")
            message = json.loads(self.ws.recv(timeout=remaining))
            self.kinds.append(message["kind"])
            if message["kind"] == "log":
                if self.first is None:
                    self.first = message["first"]
                expected = self.first + len(self.lines)
                assert message["first"] == expected, f"line {message['first']} arrived, expected {expected}"
                self.lines.extend(message["lines"])
            elif message["kind"] == "status":
                self.statuses.append(message["status"])
            elif message["kind"] == "metric":
                self.points.extend(message["points"])
        return self


# Prints three lines, then waits for the test to create $GO before printing three more.
SLOW = """
import os, time
for i in range(3):
    print(f"early {i}", flush=True)
while not os.path.exists(os.environ["GO"]):
    time.sleep(0.02)
for i in range(3):
    print(f"late {i}", flush=True)
"""


def test_member_gets_backlog_then_live_lines_in_order(asgi_server, engine_worker, owner, teammate, workspace,
                                                      cpu_flavor, local_pool, tmp_path):
    engine_worker()
    go = tmp_path / "go"
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", SLOW], env={"GO": str(go)})
    wait_status(run, RunStatus.RUNNING)
    wait_for(lambda: _log_lines(run) >= 3, message="the early lines")

    with open_socket(asgi_server, f"/ws/runtime/runs/{run.pk}/", teammate) as ws:
        got = Collector(ws).read(lambda c: "backlog" in c.kinds)
        assert got.first == 1
        assert got.lines == ["early 0", "early 1", "early 2"]
        go.touch()
        # Events come through their own publisher, so the final one may follow the final status.
        got.read(lambda c: len(c.lines) >= 7 and RunStatus.SUCCEEDED in c.statuses and "event" in c.kinds)

    assert got.lines == ["early 0", "early 1", "early 2", "late 0", "late 1", "late 2",
                         "[atelier] Process exited with exit code 0 (success)."]


def test_outsider_and_anonymous_are_refused_and_receive_nothing(asgi_server, owner, outsider, workspace, cpu_flavor,
                                                                local_pool, fast_engine):
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", "print(1)"])
    from apps.core.services import publish

    for user in (outsider, None):
        with open_socket(asgi_server, f"/ws/runtime/runs/{run.pk}/", user) as ws:
            publish(run.group_channel, {"kind": "log", "first": 1, "lines": ["secret"]})
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        assert closed.value.rcvd.code == DENIED_CLOSE_CODE
    with open_socket(asgi_server, "/ws/runtime/runs/999999/", owner) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == DENIED_CLOSE_CODE


BURST = "import sys\nw = sys.stdout.write\nfor i in range(100000): w(f'burst line {i:06d}\\n')\n"


@pytest.mark.slow
def test_a_100000_line_burst_arrives_complete_and_in_order(asgi_server, engine_worker, owner, workspace, cpu_flavor,
                                                           local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", BURST])

    # Connected before the run starts: everything arrives live (the consumer fills any dropped batch).
    with open_socket(asgi_server, f"/ws/runtime/runs/{run.pk}/?after=0", owner) as ws:
        got = Collector(ws).read(lambda c: len(c.lines) >= 100001, timeout=120)

    assert got.first == 1
    assert got.lines[:100000] == [f"burst line {i:06d}" for i in range(100000)]
    assert got.lines[100000] == "[atelier] Process exited with exit code 0 (success)."


def _log_lines(run) -> int:
    from apps.runtime.logstream import log_read

    return log_read(run, after=0).total


def test_metric_points_after_the_pages_snapshot_arrive_once(asgi_server, owner, workspace, cpu_flavor, local_pool,
                                                            fast_engine):
    from django.utils import timezone

    from apps.core.services import publish
    from apps.runtime.models import Metric

    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", "1"])
    now = timezone.now()
    seen, later = (Metric.objects.create(run=run, name="loss", step=s, value=v, created_at=now)
                   for s, v in ((0, 1.0), (1, 0.5)))

    with open_socket(asgi_server, f"/ws/runtime/runs/{run.pk}/?metric_after={seen.pk}", owner) as ws:
        got = Collector(ws).read(lambda c: "status" in c.kinds)
        newer = Metric.objects.create(run=run, name="loss", step=2, value=0.25, created_at=now)
        # A live batch that overlaps what the socket already sent: only the new point passes.
        publish(run.group_channel, {"kind": "metric", "points": [
            {"id": later.pk, "name": "loss", "step": 1, "value": 0.5},
            {"id": newer.pk, "name": "loss", "step": 2, "value": 0.25}]})
        live = json.loads(ws.recv(timeout=10))

    assert got.kinds == ["backlog", "metric", "status"]
    assert got.points == [{"id": later.pk, "name": "loss", "step": 1, "value": 0.5}]
    assert live == {"kind": "metric", "points": [{"id": newer.pk, "name": "loss", "step": 2, "value": 0.25}]}
