"""Labeling benchmarks over real HTTP and a real browser.

Starts its own stack in a temporary directory (SQLite, private Redis, uvicorn, production
settings), seeds an object-detection dataset of 100,000 samples, signs in, then measures:

    labeling.annotation_save_p95_ms   PUT of 5 shapes on one sample, 200 saves, each with the
                                      version the previous save returned (target ≤ 15 ms)
    labeling.next_sample_p95_ms       GET …/samples/next/?after=<id>, 200 requests walking the
                                      unlabeled samples (target ≤ 10 ms)
    labeling.canvas_1000_shapes_fps   frames per second of the workbench canvas while panning and
                                      zooming a 4,000 × 3,000 image with 1,000 boxes in headless
                                      Chromium (target ≥ 30)
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402

import bench_core  # noqa: E402  (stack helpers: env, readiness, sign-in, percentiles)
from apps.core.embedded_redis import start_embedded_redis  # noqa: E402

SAMPLES = 100_000
REQUESTS = 200
WARMUP = 20
SHAPES = 1_000
FPS_SECONDS = 3.0


def log(message: str) -> None:
    print(f"bench labeling: {message}", file=sys.stderr, flush=True)


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": f"labeling.{name}", "value": round(value, 3), "unit": unit}), flush=True)


def seed() -> None:
    """Run inside the stack's environment: the dataset, 100,000 samples, a big image, a job."""
    import django

    django.setup()
    from PIL import Image, ImageDraw

    from django.contrib.auth import get_user_model
    from apps.core.paths import parse
    from apps.core.storage import get_storage
    from apps.datasets.models import Sample
    from apps.datasets.services import dataset_counts_refresh, dataset_create
    from apps.labeling.services import job_create
    from apps.storage.services import bucket_create

    user = get_user_model().objects.get(username=bench_core.USERNAME)
    workspace = user.default_workspace
    bucket = bucket_create(user=user, workspace=workspace, name="bench")
    dataset = dataset_create(user=user, workspace=workspace, name="bench-boxes", data_type="image",
                             label_type="object_detection", input_location=parse("storage://bench/in"),
                             output_location=parse("storage://bench/out"))
    job = job_create(user=user, workspace=workspace, name="bench-job", dataset=dataset,
                     labeling_type="object_detection",
                     labels=[{"name": "cat", "color": "#e6194b"}, {"name": "dog", "color": "#3cb44b"}])
    image = Image.new("RGB", (4000, 3000), (70, 90, 120))
    draw = ImageDraw.Draw(image)
    for i in range(0, 4000, 250):
        draw.line([(i, 0), (i, 3000)], fill=(90, 110, 140), width=3)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    get_storage().save(parse("storage://bench/in/big.jpg"), io.BytesIO(out.getvalue()))
    big = Sample.objects.create(dataset=dataset, dedupe_key="big", source="storage://bench/in/big.jpg",
                                file_name="big.jpg", width=4000, height=3000, format_category="image", sample_type=0)
    batch = []
    for n in range(SAMPLES - 1):
        batch.append(Sample(dataset=dataset, dedupe_key=f"s{n}", source=f"storage://bench/in/{n}.jpg",
                            file_name=f"{n}.jpg", width=640, height=480, format_category="image", sample_type=0))
        if len(batch) == 5000:
            Sample.objects.bulk_create(batch)
            batch = []
    Sample.objects.bulk_create(batch)
    dataset_counts_refresh(dataset=dataset)
    first = Sample.objects.filter(dataset=dataset).exclude(pk=big.pk).order_by("-created_at", "-id").first()
    print(json.dumps({"job": job.pk, "sample": first.pk, "big": big.pk}))


def shapes(count: int, width: int, height: int) -> list[dict]:
    out = []
    for i in range(count):
        x, y = (i * 97) % (width - 120), (i * 61) % (height - 90)
        out.append({"label": "cat" if i % 2 else "dog", "shape": "bndbox",
                    "geometry": {"xmin": x, "ymin": y, "xmax": x + 100, "ymax": y + 70}})
    return out


def time_saves(client: httpx.Client, job: int, sample: str) -> list[float]:
    path = f"/api/v1/labeling/jobs/{job}/samples/{sample}/annotations/"
    version = client.get(f"/api/v1/labeling/jobs/{job}/samples/{sample}/").json()["version"]
    timings = []
    for n in range(WARMUP + REQUESTS):
        payload = {"version": version, "annotations": shapes(5, 640, 480)[n % 2:] + shapes(1, 640, 480)[: n % 2]}
        start = time.perf_counter()
        response = client.put(path, json=payload)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"bench labeling: save answered {response.status_code}: {response.text[:300]}")
        version = response.json()["version"]
        if n >= WARMUP:
            timings.append(elapsed * 1000)
    return timings


def time_next(client: httpx.Client, job: int) -> list[float]:
    timings, after = [], ""
    for n in range(WARMUP + REQUESTS):
        start = time.perf_counter()
        response = client.get(f"/api/v1/labeling/jobs/{job}/samples/next/", params={"after": after} if after else {})
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"bench labeling: next answered {response.status_code}: {response.text[:300]}")
        after = response.json()["id"]
        if n >= WARMUP:
            timings.append(elapsed * 1000)
    return timings


def canvas_fps(url: str, client: httpx.Client, job: int, big: str) -> float:
    from playwright.sync_api import sync_playwright

    version = client.get(f"/api/v1/labeling/jobs/{job}/samples/{big}/").json()["version"]
    response = client.put(f"/api/v1/labeling/jobs/{job}/samples/{big}/annotations/",
                          json={"version": version, "annotations": shapes(SHAPES, 4000, 3000)})
    if response.status_code != 200:
        raise SystemExit(f"bench labeling: seeding 1,000 boxes answered {response.status_code}")
    cookies = [{"name": name, "value": value, "url": url} for name, value in client.cookies.items()]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=os.environ.get("ATELIER_CHROMIUM", "/usr/bin/chromium"),
                                     headless=True, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto(f"{url}/labeling/{job}/label/{big}")
        page.wait_for_selector("#workbench[data-ready=true]", timeout=60000)
        # Pan and zoom on every animation frame; the canvas renders each change on the next frame.
        fps = page.evaluate("""(seconds) => new Promise((done) => {
            const canvas = window.atelierWorkbench.editor.canvas;
            const start = performance.now(); const first = canvas.frames; let n = 0;
            (function step(now) {
                n += 1;
                canvas.pan(Math.sin(n / 10) * 12, Math.cos(n / 13) * 8);
                canvas.zoomAt(n % 60 < 30 ? 1.01 : 0.99);
                if (now - start < seconds * 1000) requestAnimationFrame(step);
                else done((canvas.frames - first) / ((now - start) / 1000));
            })(start);
        })""", FPS_SECONDS)
        browser.close()
    return fps


def main() -> int:
    if sys.argv[1:] == ["--seed"]:
        seed()
        return 0
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-labeling-"))
    redis_proc = server = None
    try:
        redis_proc = start_embedded_redis(tmp / "redis.sock", tmp / "redis")
        (tmp / "var" / "staticfiles").mkdir(parents=True)
        env = bench_core.stack_env(tmp / "var", f"unix://{tmp / 'redis.sock'}")
        log("migrating a fresh SQLite database")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "ensure_admin"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        log(f"seeding {SAMPLES} samples")
        seeded = subprocess.run([sys.executable, __file__, "--seed"], cwd=ROOT, env=env, capture_output=True,
                                text=True)
        if seeded.returncode:
            raise SystemExit(f"bench labeling: seeding failed:\n{seeded.stderr[-3000:]}")
        ids = json.loads(seeded.stdout.strip().splitlines()[-1])
        port = bench_core.free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        bench_core.wait_serving(url, server)
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
            bench_core.sign_in(client)
            client.headers["X-CSRFToken"] = client.cookies.get("csrftoken", "")
            log(f"timing {REQUESTS} saves of 5 shapes")
            saves = time_saves(client, ids["job"], ids["sample"])
            log(f"timing {REQUESTS} next-sample requests")
            nexts = time_next(client, ids["job"])
            log(f"measuring the canvas with {SHAPES} boxes for {FPS_SECONDS:.0f} s")
            fps = canvas_fps(url, client, ids["job"], ids["big"])
        figure("annotation_save_p95_ms", bench_core.percentile(saves, 95), "ms")
        figure("next_sample_p95_ms", bench_core.percentile(nexts, 95), "ms")
        figure("canvas_1000_shapes_fps", fps, "fps")
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
