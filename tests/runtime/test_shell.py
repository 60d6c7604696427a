"""The browser shell over a real ASGI server, a real Celery worker and a running training job.

One worker process runs a long-lived training node; the WebSocket client types into its shell
the way xterm.js does. Refusals (outsider, viewer, a run that is not Running), the idle
disconnect (a tiny ATELIER_RUNTIME_SHELL_IDLE_SECONDS on the worker) and the end of the run
closing open shells are checked against the same worker.
"""
from __future__ import annotations

import json
import os
import re
import time

import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed

from apps.core.consumers import DENIED_CLOSE_CODE
from apps.core.models import AuditEntry
from apps.runtime.choices import RunStatus
from apps.runtime.shell_consumer import ENDED_CLOSE_CODE, FORBIDDEN_CLOSE_CODE, NOT_RUNNING_CLOSE_CODE
from apps.training.choices import TrainingStatus
from apps.training.selectors import job_runs
from apps.training.services import training_job_create, training_job_stop
from tests.training.conftest import bucket, job_log, put_tree, training_worker, wait_job  # noqa: F401

from .conftest import process_alive, wait_for, wait_status
from .test_consumers import open_socket

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# The training node: says it started, then waits (a long-lived job to open shells into).
TRAIN = "import time\nprint('node up', flush=True)\ntime.sleep(600)\n"
IDLE_SECONDS = 4
# Terminal control sequences (bracketed paste, colours, titles) between the words we look for.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Shell:
    """A WebSocket shell session: collects terminal output and JSON messages."""

    def __init__(self, ws):
        self.ws = ws
        self.output = ""
        self.messages: list[dict] = []
        self.close_code: int | None = None

    def read_until(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; output so far: {self.output[-600:]!r}, messages {self.messages}")
            try:
                frame = self.ws.recv(timeout=remaining)
            except ConnectionClosed as exc:
                self.close_code = exc.rcvd.code if exc.rcvd else None
                return self
            if isinstance(frame, bytes):
                self.output += frame.decode("utf-8", "replace")
            else:
                self.messages.append(json.loads(frame))
        return self

    @property
    def text(self) -> str:
        return CONTROL.sub("", self.output)

    def message(self, kind: str) -> dict | None:
        return next((m for m in self.messages if m["type"] == kind), None)

    def type(self, text: str) -> None:
        self.ws.send(json.dumps({"type": "input", "data": text}))

    def closed(self) -> "Shell":
        return self.read_until(lambda s: s.close_code is not None)


def shell(server, run, user, **query) -> Shell:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return Shell(open_socket(server, f"/ws/runtime/runs/{run.pk}/shell/" + (f"?{params}" if params else ""), user))


@pytest.fixture
def shell_job(training_worker, owner, workspace, bucket, local_pool, cpu_flavor, settings):  # noqa: F811
    """Factory: a training job with `nodes` nodes Running on real workers (one node per worker, as
    the engine places them) that close shells after IDLE_SECONDS; returns (job, runs by rank)."""
    settings.ATELIER_RUNTIME_SHELL_IDLE_SECONDS = IDLE_SECONDS
    put_tree("storage://train-data/shell-code", {"train.py": TRAIN})

    def start(nodes: int = 1):
        for _ in range(nodes):
            training_worker(env={"ATELIER_RUNTIME_SHELL_IDLE_SECONDS": str(IDLE_SECONDS),
                                 "ATELIER_SHELL_TEST_SECRET": "console-only-value"})
        job = training_job_create(user=owner, workspace=workspace, name="shell-job", pool=local_pool,
                                  flavor=cpu_flavor, experiment="new", experiment_name="shell-exp", node_count=nodes,
                                  code_dir="storage://train-data/shell-code", boot_file="train.py")
        job = wait_job(job, TrainingStatus.RUNNING, timeout=60)
        runs = [wait_status(run, RunStatus.RUNNING) for run in job_runs(job)]
        # The run is Running from the launcher's start; its environment is the job's once train.py runs.
        for rank in range(nodes):
            wait_for(lambda: "node up" in job_log(job, rank), timeout=60, message=f"node {rank} to run train.py")
        return job, runs

    return start


def test_shell_runs_in_the_job_environment_and_ends_with_the_run(asgi_server, shell_job, owner, teammate,
                                                                outsider, workspace):
    from apps.accounts.services import membership_set
    from apps.core.choices import Role

    job, [run] = shell_job()
    term = shell(asgi_server, run, teammate, cols=100, rows=30)
    ready = term.read_until(lambda s: s.message("ready")).message("ready")
    assert ready["idle_seconds"] == IDLE_SECONDS
    term.ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 40}))
    term.type('echo "jobdir=$MA_JOB_DIR"; pwd; whoami; echo "secret=[$ATELIER_SHELL_TEST_SECRET$DATABASE_URL'
              '$REDIS_URL]"; echo "rank=$RANK size=$(stty size)"\r')
    term.read_until(lambda s: re.search(r"rank=\d+ size=\d+ \d+\n", s.text))
    lines = [line.strip() for line in term.text.split("\n")]
    job_dir = f"{settings.ATELIER_RUNTIME_WORK_ROOT}/run-{run.pk}/user-job-dir"
    assert f"jobdir={job_dir}" in lines
    assert f"{job_dir}/shell-code" in lines  # the job's own working directory ($WORKSPACE)
    import pwd

    assert pwd.getpwuid(os.geteuid()).pw_name in lines
    assert "secret=[]" in lines  # neither the worker's settings nor its secrets reach the shell
    assert "rank=0 size=40 132" in lines

    # A flood of output arrives whole and in order (the worker pauses reading while Redis holds a backlog).
    term.type("head -c 2000000 /dev/zero | tr '\\0' x; echo; echo flood-end\r")
    term.read_until(lambda s: "\nflood-end" in s.output[-300:].replace("\r", ""), timeout=60)
    assert max(len(run_) for run_ in re.findall("x{1000,}", term.output)) == 2_000_000

    # Outsiders see nothing (4404); a viewer of the workspace may not exec (4403); both audited or not.
    refused = shell(asgi_server, run, outsider).closed()
    assert refused.close_code == DENIED_CLOSE_CODE and refused.messages == []
    viewer = outsider
    membership_set(actor=owner, workspace=workspace, user=viewer, role=Role.VIEWER)
    refused = shell(asgi_server, run, viewer).closed()
    assert refused.close_code == FORBIDDEN_CLOSE_CODE
    assert refused.message("error")["message"] == "Your role does not allow run:exec."
    assert AuditEntry.objects.filter(action="run:exec", result="denied", actor=viewer).count() == 1

    # Closing the browser's socket ends the shell on the worker (its process is gone).
    gone = shell(asgi_server, run, owner)
    gone.read_until(lambda s: s.message("ready"))
    pid = AuditEntry.objects.filter(action="run:shell_open", actor=owner).get().detail["pid"]
    assert process_alive(pid)
    gone.ws.close()
    wait_for(lambda: not process_alive(pid), timeout=10, message=f"shell pid {pid} to end")
    wait_for(lambda: AuditEntry.objects.filter(action="run:shell_close", actor=owner).exists(), timeout=10,
             message="the close to be audited")
    assert AuditEntry.objects.get(action="run:shell_close", actor=owner).detail["reason"] == "disconnected"

    # No keystroke for IDLE_SECONDS: the worker ends the session and says why.
    idle = shell(asgi_server, run, owner)
    idle.read_until(lambda s: s.message("ready"))
    started = time.monotonic()
    idle.closed()
    assert idle.close_code == ENDED_CLOSE_CODE
    assert idle.message("exit") == {"type": "exit", "reason": "idle",
                                    "message": f"Disconnected after {IDLE_SECONDS} s without input."}
    assert IDLE_SECONDS - 1 <= time.monotonic() - started <= IDLE_SECONDS + 4

    # The first session went idle meanwhile too; a fresh one is open when the job stops, which ends it.
    assert term.closed().message("exit")["reason"] == "idle"
    last = shell(asgi_server, run, owner)
    last.read_until(lambda s: s.message("ready"))
    last.type("echo still-here\r")
    last.read_until(lambda s: "\nstill-here" in s.text)
    training_job_stop(user=owner, job=job)
    last.closed()
    assert last.close_code == ENDED_CLOSE_CODE
    assert last.message("exit")["reason"] == "run-ended"
    wait_status(run, RunStatus.STOPPED)
    refused = shell(asgi_server, run, owner).closed()
    assert refused.close_code == NOT_RUNNING_CLOSE_CODE
    assert "only while the run is Running" in refused.message("error")["message"]

    opened = AuditEntry.objects.filter(action="run:shell_open", object_id=str(run.pk))
    closed = AuditEntry.objects.filter(action="run:shell_close", object_id=str(run.pk))
    assert sorted(e.actor.username for e in opened) == ["alice", "alice", "alice", "bob"]
    assert sorted(e.detail["reason"] for e in closed) == ["disconnected", "idle", "idle", "run-ended"]


def test_shell_runs_as_the_runs_user(asgi_server, engine_worker, owner, workspace, cpu_flavor, local_pool):
    import pwd

    from apps.runtime.services import run_stop

    from .conftest import submit

    nobody = pwd.getpwnam("nobody")  # its login shell is nologin: the shell falls back to bash
    engine_worker(env={"ATELIER_RUN_AS_USER": "nobody"})
    # The system interpreter: the test venv's may live under a directory only root can enter.
    run = submit(owner, workspace, cpu_flavor, local_pool, ["/usr/bin/python3", "-c", "import time; time.sleep(120)"])
    run = wait_status(run, RunStatus.RUNNING)

    term = shell(asgi_server, run, owner)
    assert term.read_until(lambda s: s.message("ready")).message("ready")["user"] == "nobody"
    # The worker (the shell's parent) keeps the console's settings; the run's user cannot read them.
    term.type('echo "id=$(id -u):$(id -g) home=$HOME run=$ATELIER_RUN_ID"; cat /proc/$PPID/environ; echo end\r')
    term.read_until(lambda s: "\nend\n" in s.text)
    lines = [line.strip() for line in term.text.split("\n")]
    assert f"id={nobody.pw_uid}:{nobody.pw_gid} home={nobody.pw_dir} run={run.pk}" in lines
    assert any(line.endswith("Permission denied") and "/environ" in line for line in lines)
    run_stop(user=owner, run=run)
    assert term.closed().message("exit")["reason"] == "run-ended"
