"""Deployment benchmarks: the inference gateway against calling the instance directly.

Starts its own stack in a temporary directory (SQLite, private Redis, uvicorn serving
console.asgi, one Celery worker on the local pool and the control queue), imports a trivial
model package (its service answers {"ok": true}), deploys it through the REST API and calls it
over loopback with keep-alive connections. Figures:

    deployment.cold_deploy_s            deploy request to the first successful call through the gateway
    deployment.direct_p50_ms            median round trip straight to the instance (500 sequential calls)
    deployment.gateway_p50_ms           the same through /infer/<service>/ (authenticated, counted);
                                        direct and gateway calls alternate, so both see the same load
    deployment.gateway_overhead_p50_ms  gateway minus direct (target ≤ 1 ms)
    deployment.direct_rps               requests/s straight to the instance, 16 concurrent clients, 5 s
    deployment.gateway_rps              the same through the gateway (alternating one-second slices)
    deployment.gateway_throughput_ratio gateway ÷ direct requests/s (target ≥ 0.8)
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from apps.core.embedded_redis import start_embedded_redis  # noqa: E402
from bench_core import free_port, percentile  # noqa: E402  (shared with the other benchmarks)
from apps.deployment import upstream  # noqa: E402  (imports nothing from Django)

SEQUENTIAL = 500
WARMUP = 50
CONCURRENCY = 16
THROUGHPUT_SECONDS = 5.0
USERNAME = "bench-admin"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
BODY = {"data": {"req_data": [{"x": 1}]}}

SERVICE_CODE = '''
from model_service.model_service import SingleNodeService


class Trivial(SingleNodeService):
    def _inference(self, data):
        return {"ok": True}
'''
CONFIG = {"model_type": "MindSpore", "model_algorithm": "bench_trivial",
          "apis": [{"url": "/", "method": "POST", "request": {"Content-type": "application/json"}}]}

SETUP = textwrap.dedent('''
    import io, json, time
    from django.contrib.auth import get_user_model
    from apps.accounts.services import api_token_create
    from apps.core.paths import StoragePath
    from apps.core.storage import get_storage
    from apps.deployment.models import AiAppVersion
    from apps.deployment.services import ai_app_create
    from apps.runtime.models import Flavor, Pool
    from apps.storage.services import bucket_create

    user = get_user_model().objects.get(username="{username}")
    workspace = user.default_workspace
    bucket_create(user=user, workspace=workspace, name="bench")
    storage = get_storage()
    storage.save(StoragePath("bench", "trivial/model/config.json"), io.BytesIO({config!r}.encode()))
    storage.save(StoragePath("bench", "trivial/model/customize_service.py"), io.BytesIO({code!r}.encode()))
    version = ai_app_create(user=user, workspace=workspace, name="trivial", source_uri="storage://bench/trivial")
    deadline = time.monotonic() + 120
    while AiAppVersion.objects.get(pk=version.pk).status != "normal":
        if time.monotonic() > deadline:
            raise SystemExit("the package was not imported within 120 s")
        time.sleep(0.2)
    pool = Pool.objects.get(name="local")
    flavor = Flavor.objects.filter(pools=pool).order_by("cpus").first()
    _token, key = api_token_create(user=user, name="bench")
    print("SETUP " + json.dumps({{"version": version.pk, "pool": pool.pk, "flavor": flavor.pk, "token": key}}))
''')


def log(message: str) -> None:
    print(f"bench deployment: {message}", file=sys.stderr, flush=True)


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": f"deployment.{name}", "value": round(value, 3), "unit": unit}), flush=True)


def stack_env(var_dir: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ATELIER_", "DATABASE_", "REDIS_", "DJANGO_", "CELERY_"))}
    env.update(DJANGO_SETTINGS_MODULE="console.settings", ATELIER_VAR_DIR=str(var_dir), ATELIER_EMBEDDED="true",
               ATELIER_DEBUG="false", ATELIER_SECRET_KEY=secrets.token_urlsafe(50), REDIS_URL=redis_url,
               ATELIER_ADMIN_USERNAME=USERNAME, ATELIER_ADMIN_PASSWORD=PASSWORD, ATELIER_WORKER_HOST="127.0.0.1",
               PYTHONUNBUFFERED="1")
    return env


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench deployment: {url} process exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench deployment: {url} not healthy within {timeout:.0f}s")


async def call(pool, url: str, headers: dict) -> int:
    """One POST over the pooled keep-alive client (the gateway's own: light enough not to be the bottleneck)."""
    endpoint, _, path = url.removeprefix("http://").partition("/")
    response = await upstream.request(pool, scheme="http", endpoint=endpoint, method="POST", target="/" + path,
                                      headers=[(b"content-type", b"application/json"),
                                               *((k.lower().encode(), v.encode()) for k, v in headers.items())],
                                      body=json.dumps(BODY).encode(), timeout=30)
    async for _chunk in response.body:
        pass
    if response.status != 200:
        raise SystemExit(f"bench deployment: {url} answered {response.status}")
    return response.status


async def latencies(direct_url: str, gateway_url: str, headers: dict) -> tuple[list[float], list[float]]:
    """Sequential calls, alternating direct and gateway so both see the same machine load."""
    pool = upstream.Pool()
    for _ in range(WARMUP):
        await call(pool, direct_url, {})
        await call(pool, gateway_url, headers)
    direct, gateway = [], []
    for _ in range(SEQUENTIAL):
        for url, extra, samples in ((direct_url, {}, direct), (gateway_url, headers, gateway)):
            start = time.perf_counter()
            await call(pool, url, extra)
            samples.append((time.perf_counter() - start) * 1000)
    return direct, gateway


async def throughput(url: str, headers: dict, seconds: float) -> tuple[int, float]:
    """(calls, seconds) of CONCURRENCY clients calling `url` back to back for `seconds`."""
    pool = upstream.Pool(max_idle=CONCURRENCY)
    await asyncio.gather(*(call(pool, url, headers) for _ in range(CONCURRENCY)))  # open the connections
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker():
        nonlocal done
        while time.perf_counter() < stop_at:
            await call(pool, url, headers)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done, time.perf_counter() - started


async def throughputs(direct_url: str, gateway_url: str, headers: dict) -> tuple[float, float]:
    """Requests/s of each, measured in alternating one-second slices (same load for both)."""
    totals = {"direct": [0, 0.0], "gateway": [0, 0.0]}
    for _ in range(int(THROUGHPUT_SECONDS)):
        for name, url, extra in (("direct", direct_url, {}), ("gateway", gateway_url, headers)):
            calls, seconds = await throughput(url, extra, 1.0)
            totals[name][0] += calls
            totals[name][1] += seconds
    return totals["direct"][0] / totals["direct"][1], totals["gateway"][0] / totals["gateway"][1]


def stop(proc) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-deployment-"))
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_embedded_redis(tmp / "redis.sock", tmp / "redis"))
        (tmp / "var").mkdir()
        env = stack_env(tmp / "var", f"unix://{tmp / 'redis.sock'}")
        log("migrating a fresh SQLite database")
        for command in (["migrate", "--noinput", "-v", "0"], ["ensure_admin"], ["runtime_bootstrap"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        worker_log = open(tmp / "worker.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", "pool.local,atelier.control",
             "-n", "bench@%h", "--concurrency", "3", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True))
        wait_http(f"{base}/healthz", procs[-1])
        log("importing the trivial package")
        setup = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                                SETUP.format(username=USERNAME, config=json.dumps(CONFIG), code=SERVICE_CODE)],
                               cwd=ROOT, env=env, capture_output=True, text=True)
        line = next((l for l in setup.stdout.splitlines() if l.startswith("SETUP ")), None)
        if setup.returncode != 0 or line is None:
            raise SystemExit(f"bench deployment: setup failed:\n{setup.stdout}\n{setup.stderr}")
        info = json.loads(line[len("SETUP "):])
        auth = {"Authorization": f"Token {info['token']}"}

        with httpx.Client(base_url=base, timeout=30, trust_env=False) as api:
            log("deploying and waiting for the first successful call")
            started = time.monotonic()
            created = api.post("/api/v1/deployment/services/", headers=auth, json={
                "name": "bench", "auto_stop_hours": None,
                "versions": [{"model_version": info["version"], "weight": 100, "pool": info["pool"],
                              "flavor": info["flavor"]}]})
            if created.status_code != 201:
                raise SystemExit(f"bench deployment: deploy answered {created.status_code}: {created.text}")
            service_id = created.json()["id"]
            gateway_url = f"{base}/infer/{service_id}/"
            while True:
                response = api.post(gateway_url, json=BODY, headers=auth)
                if response.status_code == 200:
                    break
                if time.monotonic() - started > 180:
                    raise SystemExit(f"bench deployment: no successful call within 180 s ({response.text[:200]})")
                time.sleep(0.05)
            cold = time.monotonic() - started
            endpoints = api.get(f"/api/v1/deployment/services/{service_id}/predict/endpoints/?type=host_endpoints",
                                headers=auth).json()["endpoints"]
            direct_url = f"http://{endpoints[0]['ip']}:{endpoints[0]['port']}/"

        log(f"timing {SEQUENTIAL} sequential calls each, alternating direct and through the gateway")
        direct, gateway = asyncio.run(latencies(direct_url, gateway_url, auth))
        log(f"measuring throughput with {CONCURRENCY} concurrent clients for {THROUGHPUT_SECONDS:g} s each")
        direct_rps, gateway_rps = asyncio.run(throughputs(direct_url, gateway_url, auth))

        figure("cold_deploy_s", cold, "s")
        figure("direct_p50_ms", percentile(direct, 50), "ms")
        figure("gateway_p50_ms", percentile(gateway, 50), "ms")
        figure("gateway_overhead_p50_ms", percentile(gateway, 50) - percentile(direct, 50), "ms")
        figure("direct_rps", direct_rps, "requests/s")
        figure("gateway_rps", gateway_rps, "requests/s")
        figure("gateway_throughput_ratio", gateway_rps / direct_rps, "ratio")
        return 0
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
