"""The embedded stack as `make run` starts it: launcher, ASGI server, worker, beat, private Redis.

Each test runs `python -m console.launcher` in a fresh var directory with an environment
stripped of the test session's database and Redis, so it exercises exactly the defaults a
user gets: SQLite under the var dir and a private Redis on a unix socket.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.harness import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN_USERNAME = "first-admin"
ADMIN_PASSWORD = "launch-pad-orbit-42"
# A cold start migrates a new SQLite file and imports Django in four processes.
START_TIMEOUT = 90

pytestmark = pytest.mark.slow

SUBMIT_SLEEPER = f"""
from django.contrib.auth import get_user_model
from apps.runtime.models import Pool
from apps.runtime.services import run_submit
admin = get_user_model().objects.get(username="{ADMIN_USERNAME}")
pool = Pool.objects.get(name="local")
[run] = run_submit(user=admin, workspace=admin.default_workspace, name="sleeper", command=["sleep", "271"],
                   flavor=pool.flavors.order_by("cpus").first(), pool=pool)
print(run.status)
"""
RUN_OUTCOME = """
from apps.runtime.models import Run
run = Run.objects.get(name="sleeper")
print(run.status, run.exit_code)
"""


def launcher_env(var_dir: Path, port: int) -> dict[str, str]:
    """The caller's environment minus everything the test session configured for itself."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ATELIER_", "DATABASE_", "REDIS_", "DJANGO_", "CELERY_"))}
    env.update(
        ATELIER_VAR_DIR=str(var_dir),
        ATELIER_PORT=str(port),
        ATELIER_ADMIN_USERNAME=ADMIN_USERNAME,
        ATELIER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        ATELIER_WORKER_CONCURRENCY="1",  # keeps the test light on a small CI machine
        NO_COLOR="1",
    )
    return env


class Stack:
    """A running launcher; `output` collects its (prefixed) lines."""

    def __init__(self, var_dir: Path):
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console.launcher", "--grace", "10"], cwd=ROOT, env=launcher_env(var_dir, self.port),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # so a failing test can still clean up the whole tree
        )
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def wait_healthy(self) -> httpx.Response:
        """Wait until /healthz answers 200 and the worker said it is ready."""
        deadline = time.monotonic() + START_TIMEOUT
        response = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"launcher exited with {self.proc.returncode}:\n{self.text}"
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=5, trust_env=False)
                if response.status_code == 200 and any("ready." in line for line in self.output):
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"stack not healthy in {START_TIMEOUT}s (last: {response}):\n{self.text}")

    def manage_shell(self, code: str) -> str:
        """Run Python in `manage.py shell` against the stack's own database and Redis; its last line."""
        env = launcher_env(self.var_dir, self.port)
        env.update(ATELIER_EMBEDDED="true", REDIS_URL=f"unix://{self.var_dir / 'redis.sock'}")
        result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]  # the shell first reports what it auto-imported

    def wait_for_descendant(self, cmdline: list[str]) -> psutil.Process:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for proc in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    if proc.cmdline() == cmdline:
                        return proc
                except psutil.Error:
                    continue
            time.sleep(0.3)
        raise AssertionError(f"no process {cmdline} under the launcher:\n{self.text}")

    def wait_workers(self, count: int) -> dict:
        """Poll /healthz until it reports `count` live workers; returns its last body."""
        deadline = time.monotonic() + START_TIMEOUT
        body: dict = {}
        while time.monotonic() < deadline:
            body = httpx.get(f"{self.url}/healthz", timeout=5, trust_env=False).json()
            if body.get("workers") == count:
                break
            time.sleep(0.3)
        return body

    def children(self) -> dict[str, list[psutil.Process]]:
        """Descendants of the launcher by role, told apart by their command lines."""
        roles = {"web": "uvicorn", "worker": " worker ", "beat": " beat ", "redis": "redis-server"}
        found: dict[str, list[psutil.Process]] = {role: [] for role in roles}
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmdline = " ".join(proc.cmdline())
            except psutil.Error:  # exited meanwhile
                continue
            for role, marker in roles.items():
                if marker in f" {cmdline} ":
                    found[role].append(proc)
        return found

    def kill_everything(self) -> None:
        """Last-resort cleanup when a test failed half-way."""
        if self.proc.poll() is None:
            for proc in psutil.Process(self.proc.pid).children(recursive=True):
                proc.kill()
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def stack(tmp_path):
    running = Stack(tmp_path / "var")
    yield running
    running.kill_everything()


def assert_all_gone(processes: list[psutil.Process]) -> None:
    # Zombies waiting for their (new) parent to reap them no longer run anything.
    alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running: {[(p.pid, p.cmdline()) for p in alive]}"


def test_embedded_stack_serves_logs_in_and_stops_cleanly_on_sigterm(stack, tmp_path):
    health = stack.wait_healthy()
    body = health.json()
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
    assert isinstance(body["workers"], int) and body["workers"] >= 0
    assert sorted(body) == ["database", "redis", "workers"]
    # The embedded worker registers itself as a node once it is up.
    assert stack.wait_workers(1) == {"database": "ok", "redis": "ok", "workers": 1}

    var_dir = tmp_path / "var"
    assert (var_dir / "atelier.sqlite3").is_file()
    assert (var_dir / "redis.sock").exists()
    assert (var_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    assert f"Atelier is running at {stack.url}/" in stack.text
    assert f"Username: {ADMIN_USERNAME}" in stack.text
    assert ADMIN_PASSWORD not in stack.text  # a password given by the caller is never echoed

    with httpx.Client(base_url=stack.url, timeout=10, trust_env=False) as client:
        login_page = client.get("/accounts/login/")
        assert login_page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        signed_in = client.post("/accounts/login/", data={
            "csrfmiddlewaretoken": token, "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD, "next": "/",
        }, headers={"Referer": f"{stack.url}/accounts/login/"})
        assert signed_in.status_code == 302
        assert signed_in.headers["Location"] == "/"
        overview = client.get("/")
        assert overview.status_code == 200, " ".join(re.findall(r"<title>(.*?)</title>", overview.text, re.S))
        assert f"{ADMIN_USERNAME}-default" in overview.text  # the admin's own workspace heads the page

    # A job on the local pool: the worker runs it in a process group of its own.
    assert stack.manage_shell(SUBMIT_SLEEPER) == "queued"
    job = stack.wait_for_descendant(["sleep", "271"])
    assert os.getpgid(job.pid) == job.pid

    children = stack.children()
    assert {role: len(procs) >= 1 for role, procs in children.items()} == {
        "web": True, "worker": True, "beat": True, "redis": True}
    everything = psutil.Process(stack.proc.pid).children(recursive=True)

    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=60) == 0
    stack.reader.join(timeout=5)
    assert_all_gone(everything)
    assert "atelier: stopped" in stack.text
    assert not (var_dir / "redis.sock").exists()  # Redis shut down cleanly and removed its socket
    # The worker shut down warm: the job's end was recorded, not left "running".
    assert stack.manage_shell(RUN_OUTCOME) == "failed 143"


def test_embedded_stack_stops_everything_when_one_child_dies(stack):
    stack.wait_healthy()
    everything = psutil.Process(stack.proc.pid).children(recursive=True)
    beat = stack.children()["beat"][0]

    beat.kill()

    assert stack.proc.wait(timeout=30) == 1
    stack.reader.join(timeout=5)
    assert_all_gone(everything)
    assert "atelier: beat exited unexpectedly with code -9; stopping the others" in stack.text
    assert "atelier: stopped because beat exited (code -9)" in stack.text


def test_launcher_refuses_a_port_in_use(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "console.launcher"], cwd=ROOT, env=launcher_env(tmp_path / "var", port),
            capture_output=True, text=True, timeout=60,
        )

    assert result.returncode == 1
    assert f"atelier: error: cannot listen on 127.0.0.1:{port}" in result.stdout
    assert "set ATELIER_PORT" in result.stdout
    assert not (tmp_path / "var" / "atelier.sqlite3").exists()  # refused before touching anything
