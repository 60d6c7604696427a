"""Real-service test harness: an ASGI server, Celery worker processes and a headless browser.

Fixtures (registered in tests/conftest.py):
- ``asgi_server``: uvicorn serving ``console.asgi.application`` (HTTP + WebSockets) in a thread
  of the test process, on a free loopback port; needs ``transactional_db`` data.
- ``celery_worker``: a factory starting real ``celery worker`` processes against the test
  database and Redis; each is stopped at teardown.
- ``browser`` / ``page``: Playwright driving the system Chromium (``ATELIER_CHROMIUM`` overrides
  ``/usr/bin/chromium``); a failing test leaves a screenshot in ``test-artifacts/``.
- ``login``: puts a user's session cookie into a page's browser context.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AsgiServer:
    """uvicorn in a background thread; `url` is its base URL without a trailing slash."""

    def __init__(self):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config("console.asgi:application", host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="asgi-server")

    def start(self) -> "AsgiServer":
        from channels.layers import channel_layers

        channel_layers.backends.clear()  # see stop(): a fresh layer for this server's loop
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test ASGI server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        from channels.layers import channel_layers

        self.server.should_exit = True
        self.thread.join(timeout=10)
        # The shared channel layer remembers the event loop its consumers received on; a later
        # server (a new loop) would be refused by channels-redis, so each server gets a fresh one.
        channel_layers.backends.clear()


def database_url_for_subprocess() -> str:
    """A DATABASE_URL naming the database the tests use right now (test_ prefix on PostgreSQL)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child processes that must see the same database, Redis and storage."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=settings.REDIS_URL,
        ATELIER_VAR_DIR=str(settings.VAR_DIR),
        ATELIER_STORAGE_ROOT=str(settings.ATELIER_STORAGE_ROOT),
        ATELIER_STORAGE_BACKEND=settings.ATELIER_STORAGE_BACKEND,
        ATELIER_CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        ATELIER_CHANNEL_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class WorkerProcess:
    """One `celery worker` child process; `output` collects its lines for assertions and debugging."""

    def __init__(self, *, queues: list[str], name: str, concurrency: int, env: dict[str, str]):
        self.name = name
        self.output: list[str] = []
        self._ready = threading.Event()
        cmd = [
            sys.executable, "-m", "celery", "-A", "console", "worker",
            "-Q", ",".join(queues), "-n", f"{name}@%h", "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if " ready." in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> "WorkerProcess":
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
        if not self._ready.is_set():
            self.stop()
            raise RuntimeError(f"worker {self.name} not ready in {timeout}s:\n" + "\n".join(self.output[-40:]))
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashed machine would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass


@pytest.fixture
def asgi_server(transactional_db):
    server = AsgiServer().start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker(transactional_db):
    """Factory: `celery_worker(queues=["pool.local"], name="w1", env={...})` → a ready WorkerProcess."""
    started: list[WorkerProcess] = []

    def start(*, queues=("pool.local",), name=None, concurrency=2, env=None, wait=True) -> WorkerProcess:
        worker = WorkerProcess(queues=list(queues), name=name or f"test-{len(started) + 1}-{os.getpid()}",
                               concurrency=concurrency, env=subprocess_env(**(env or {})))
        started.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("ATELIER_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15000)
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        except Exception:  # a crashed page cannot be photographed; the failure itself is reported
            pass
    context.close()


@pytest.fixture
def login():
    """`login(page, user, base_url)`: authenticate the page's context as `user` without the form."""
    from django.test import Client

    def do_login(pg, user, base_url: str) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        pg.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": base_url}])

    return do_login
