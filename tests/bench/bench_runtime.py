"""Run-engine benchmarks: dispatch latency, log latency and log throughput, end to end.

Starts its own stack in a temporary directory (SQLite, private Redis, one Celery worker on
`pool.local`, uvicorn for the WebSocket), then submits runs through the real service and
watches them through the real log WebSocket. Figures:

    runtime.dispatch_latency_p50_ms      submit → the run's Python process executing its first
                                         statement (its own clock), idle worker, no inputs; median of 30
    runtime.log_latency_p95_ms           a line printed → received on the WebSocket; 95th percentile
                                         of 300 lines printed 10 ms apart
    runtime.log_throughput_lines_per_s   200,000 lines printed as fast as possible, first print → last
                                         line received; the run fails the benchmark unless every line
                                         arrives exactly once and in order
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import free_port, percentile  # noqa: E402 (beside this script)

from apps.core.embedded_redis import start_embedded_redis  # noqa: E402

DISPATCH_RUNS = 30
LATENCY_LINES = 300
BURST_LINES = 200_000
# Unmeasured runs first: worker imports, first connections, SQLite page cache.
WARMUP_RUNS = 3


def log(message: str) -> None:
    print(f"bench runtime: {message}", file=sys.stderr, flush=True)


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": f"runtime.{name}", "value": round(value, 3), "unit": unit}), flush=True)


def stack_env(var_dir: Path, redis_url: str, secret: str) -> dict[str, str]:
    """Production-like settings on throwaway state; nothing inherited from the caller's Atelier setup."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ATELIER_", "DATABASE_", "REDIS_", "DJANGO_", "CELERY_"))}
    env.update(DJANGO_SETTINGS_MODULE="console.settings", ATELIER_VAR_DIR=str(var_dir), ATELIER_EMBEDDED="true",
               ATELIER_DEBUG="false", ATELIER_SECRET_KEY=secret, REDIS_URL=redis_url, ATELIER_WORKER_HOST="127.0.0.1",
               PYTHONUNBUFFERED="1")
    return env


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Bench:
    def __init__(self, url: str):
        from apps.accounts.services import api_token_create, user_create
        from apps.runtime.models import Flavor, Pool

        self.url = url
        self.user = user_create(username="bench-runner", password=secrets.token_urlsafe(16),
                                email="bench@example.test")
        self.workspace = self.user.default_workspace
        _, self.token = api_token_create(user=self.user, name="bench")
        self.pool = Pool.objects.get(name="local")
        self.flavor = Flavor.objects.filter(pools=self.pool, gpus=0).order_by("cpus").first()

    def submit(self, script: str):
        from apps.runtime.services import run_submit

        return run_submit(user=self.user, workspace=self.workspace, name="bench",
                          command=[sys.executable, "-c", script], flavor=self.flavor, pool=self.pool)[0]

    def wait_done(self, run, timeout: float = 120):
        from apps.runtime.choices import TERMINAL_STATUSES
        from apps.runtime.models import Run

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = Run.objects.get(pk=run.pk)
            if fresh.status in TERMINAL_STATUSES:
                if fresh.status != "succeeded":
                    raise SystemExit(f"bench runtime: run {run.pk} ended {fresh.status}: {fresh.status_reason}")
                return fresh
            time.sleep(0.02)
        raise SystemExit(f"bench runtime: run {run.pk} did not finish within {timeout:.0f}s")

    def socket(self, run):
        from websockets.sync.client import connect

        ws_url = self.url.replace("http", "ws") + f"/ws/runtime/runs/{run.pk}/?after=0&token={self.token}"
        return connect(ws_url, origin=self.url, open_timeout=10, max_size=2 ** 26)

    def dispatch_latency(self) -> list[float]:
        from apps.runtime.logstream import log_read

        samples = []
        for index in range(WARMUP_RUNS + DISPATCH_RUNS):
            submitted = time.time()
            run = self.wait_done(self.submit("import time; print(repr(time.time()))"))
            started = float(log_read(run, after=0).lines[0])
            if index >= WARMUP_RUNS:
                samples.append((started - submitted) * 1000)
                if os.environ.get("BENCH_RUNTIME_DETAIL"):
                    stamps = [run.queued_at.timestamp(), run.dispatched_at.timestamp(), run.claimed_at.timestamp(),
                              run.started_at.timestamp(), started]
                    steps = [(b - a) * 1000 for a, b in pairwise([submitted, *stamps])]
                    log("submit→queued {:.0f} →dispatched {:.0f} →claimed {:.0f} →popen {:.0f} "
                        "→process {:.0f} ms".format(*steps))
        return samples

    def log_latency(self) -> list[float]:
        script = (f"import time\ntime.sleep(1)\nfor i in range({LATENCY_LINES}):\n"
                  f"    print(repr(time.time()), flush=True)\n    time.sleep(0.01)\n")
        run = self.submit(script)
        samples = []
        with self.socket(run) as ws:
            while len(samples) < LATENCY_LINES:
                message = json.loads(ws.recv(timeout=60))
                received = time.time()
                if message["kind"] == "log":
                    samples.extend((received - float(line)) * 1000 for line in message["lines"]
                                   if not line.startswith("[atelier]"))
        self.wait_done(run)
        return samples[:LATENCY_LINES]

    def throughput(self) -> float:
        script = ("import sys, time\ntime.sleep(1)\nw = sys.stdout.write\nw(repr(time.time()) + '\\n')\n"
                  f"for i in range(1, {BURST_LINES}): w(f'line {{i:07d}}\\n')\n")
        run = self.submit(script)
        lines: list[str] = []
        with self.socket(run) as ws:
            while len(lines) < BURST_LINES:
                message = json.loads(ws.recv(timeout=120))
                if message["kind"] == "log":
                    if message["first"] != len(lines) + 1:
                        raise SystemExit(f"bench runtime: line {message['first']} arrived after {len(lines)}")
                    lines.extend(message["lines"])
            finished = time.time()
        self.wait_done(run)
        if lines[1:BURST_LINES] != [f"line {i:07d}" for i in range(1, BURST_LINES)]:
            raise SystemExit("bench runtime: the burst arrived incomplete or out of order")
        return (BURST_LINES - 1) / (finished - float(lines[0]))


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-runtime-"))
    redis_proc = worker = server = None
    try:
        redis_proc = start_embedded_redis(tmp / "redis.sock", tmp / "redis")
        (tmp / "var" / "staticfiles").mkdir(parents=True)
        env = stack_env(tmp / "var", f"unix://{tmp / 'redis.sock'}", secrets.token_urlsafe(50))
        log("migrating a fresh SQLite database")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "runtime_bootstrap"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", "pool.local,atelier.control",
             "-n", "bench@%h", "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            # stdout carries only figures (the runner checks): the worker's banner goes to stderr.
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True,
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True,
        )
        os.environ.update(env)
        import django

        django.setup()
        from apps.runtime.models import WorkerNode

        deadline = time.monotonic() + 60
        while not WorkerNode.objects.filter(hostname__startswith="bench@").exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("bench runtime: the worker did not register within 60s")
            time.sleep(0.2)
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench runtime: uvicorn did not listen within 60s") from None
                time.sleep(0.2)
        bench = Bench(url)
        log(f"dispatch latency: {DISPATCH_RUNS} runs after {WARMUP_RUNS} warm-up runs")
        figure("dispatch_latency_p50_ms", percentile(bench.dispatch_latency(), 50), "ms")
        log(f"log latency: {LATENCY_LINES} lines 10 ms apart")
        figure("log_latency_p95_ms", percentile(bench.log_latency(), 95), "ms")
        log(f"log throughput: a burst of {BURST_LINES} lines")
        figure("log_throughput_lines_per_s", bench.throughput(), "lines/s")
        return 0
    finally:
        for proc in (server, worker, redis_proc):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
