"""Core benchmarks: the overview page over real HTTP.

Starts its own stack in a temporary directory (SQLite, private Redis, uvicorn on a free
loopback port, production settings with debug off), signs in through the login form, then
times sequential GETs of `/`. Figures (nearest-rank percentiles of the round-trip time):

    core.page_overview_p95_ms   95th percentile of 200 requests
    core.page_overview_p50_ms   median of the same requests
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import free_port, percentile  # noqa: E402 (beside this script)

import httpx  # noqa: E402

from apps.core.embedded_redis import start_embedded_redis  # noqa: E402

REQUESTS = 200
# Unmeasured requests first: imports, template compilation and connection set-up happen once.
WARMUP = 20
USERNAME = "bench-admin"
PASSWORD = "bench-" + secrets.token_urlsafe(12)


def log(message: str) -> None:
    print(f"bench core: {message}", file=sys.stderr, flush=True)


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": f"core.{name}", "value": round(value, 3), "unit": unit}), flush=True)


def stack_env(var_dir: Path, redis_url: str) -> dict[str, str]:
    """Production-like settings on throwaway state; nothing inherited from the caller's Atelier setup."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ATELIER_", "DATABASE_", "REDIS_", "DJANGO_", "CELERY_"))}
    # ATELIER_BENCH_DATABASE_URL: run against that (empty) database instead of a fresh SQLite file,
    # e.g. postgres://postgres@127.0.0.1:5432/atelier_bench_1 to measure on PostgreSQL.
    if os.environ.get("ATELIER_BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["ATELIER_BENCH_DATABASE_URL"]
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        ATELIER_VAR_DIR=str(var_dir),
        ATELIER_EMBEDDED="true",
        ATELIER_DEBUG="false",
        ATELIER_SECRET_KEY=secrets.token_urlsafe(50),
        REDIS_URL=redis_url,
        ATELIER_ADMIN_USERNAME=USERNAME,
        ATELIER_ADMIN_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_serving(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench core: uvicorn exited with code {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench core: {url}/healthz not healthy within {timeout:.0f}s")


def sign_in(client: httpx.Client) -> None:
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if page.status_code != 200 or token is None:
        raise SystemExit(f"bench core: login page answered {page.status_code} without a CSRF token")
    response = client.post("/accounts/login/", data={
        "csrfmiddlewaretoken": token.group(1), "username": USERNAME, "password": PASSWORD, "next": "/",
    })
    if response.status_code != 302:
        raise SystemExit(f"bench core: sign-in answered {response.status_code}, expected a redirect")


def time_overview(client: httpx.Client) -> list[float]:
    for _ in range(WARMUP):
        client.get("/")
    samples = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = client.get("/")
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"bench core: GET / answered {response.status_code}")
        samples.append(elapsed * 1000)
    return samples


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-core-"))
    redis_proc = server = None
    try:
        redis_proc = start_embedded_redis(tmp / "redis.sock", tmp / "redis")
        (tmp / "var" / "staticfiles").mkdir(parents=True)  # STATIC_ROOT; WhiteNoise warns when it is missing
        env = stack_env(tmp / "var", f"unix://{tmp / 'redis.sock'}")
        log("migrating a fresh SQLite database")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                       check=True)
        subprocess.run([sys.executable, "manage.py", "ensure_admin"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        wait_serving(url, server)
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            sign_in(client)
            log(f"timing {REQUESTS} sequential GET / after {WARMUP} warm-up requests")
            samples = time_overview(client)
        figure("page_overview_p95_ms", percentile(samples, 95), "ms")
        figure("page_overview_p50_ms", percentile(samples, 50), "ms")
        return 0
    finally:
        for proc in (server, redis_proc):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
