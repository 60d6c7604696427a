"""Data-section benchmarks, on data this script generates in a temporary directory.

Runs Django in-process against a fresh SQLite database, local storage and a private Redis
(production settings, debug off). Operations are executed in this process exactly as a
worker runs them (`operation_execute`); the sample list is timed over real HTTP against a
uvicorn server on a loopback port, like the Label Studio figures we compare with.

    datasets.manifest_import_samples_per_s  10,000-line manifest, files already in storage
                                            (metadata only; thumbnails are left to a background run);
                                            a line names its image and usage, as the peer's URL-only
                                            tasks name theirs
    datasets.manifest_thumbnails_per_s      the background run that import started, over its 10,000
                                            images: read, decoded, hashed, previewed
    datasets.manifest_import_labeled_samples_per_s  the same with a class label on every line
                                            (an annotation and a label-index row per sample more)
    datasets.manifest[_labeled]_insert_floor_samples_per_s  the rows each import wrote, written again
                                            with one raw INSERT/COPY per table and no import work
                                            (tests/bench/datasets_floor.py);
                                            datasets.manifest_import[_labeled]_vs_floor is the import's share of it
    datasets.publish_samples_per_s          those 10,000 labeled samples published as a version (the
                                            manifest written and stored, each sample's published values
                                            recorded)
    datasets.import_images_per_s            10,000 small images from a folder: copied, decoded,
                                            hashed, thumbnailed
    datasets.sample_list_p95_ms             filtered (label + usage) 30-sample page of a 100,000-sample
                                            dataset, p95 of 200 sequential API requests
    datasets.export_coco_s                  10,000 images with 50,000 boxes exported to COCO (image files placed
                                            in the export folder: hard links on local storage)

Then, in the same run and after everything above has stopped, `peer_labelstudio.compare` measures
Label Studio 1.23.2 on the same three things the Datasets benchmark issue quotes (import of
10,000 URL-only tasks, a 30-task page of a 10,000-task project, COCO export of annotated tasks)
and prints `datasets.peer_labelstudio_*` and the ratios `datasets.*_vs_labelstudio` (> 1: Atelier
better); see that module for what exactly is timed. The peer is installed into
var/bench-peers/ on first use (a few minutes); `ATELIER_BENCH_PEERS=0` skips it, and a peer that
fails costs one line on stderr, never our figures.
"""
from __future__ import annotations

import io
import json
import os
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

import peer_labelstudio  # noqa: E402 (beside this script; imported before main() clears ATELIER_* variables)

IMAGES = 10_000
MANIFEST_LINES = 10_000
LIST_SAMPLES = 100_000
BOXES_PER_IMAGE = 5
REQUESTS = 200
WARMUP = 20


def log(message: str) -> None:
    print(f"bench datasets: {message}", file=sys.stderr, flush=True)


# Every figure printed, by name without the area, for the ratios against the peer.
FIGURES: dict[str, float] = {}


def figure(name: str, value: float, unit: str) -> None:
    FIGURES[name] = value
    print(json.dumps({"bench": f"datasets.{name}", "value": round(value, 3), "unit": unit}), flush=True)


def setup_environment(tmp: Path) -> dict[str, str]:
    from apps.core.embedded_redis import start_embedded_redis

    redis = start_embedded_redis(tmp / "redis.sock", tmp / "redis")
    env = {
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "ATELIER_VAR_DIR": str(tmp / "var"),
        "ATELIER_EMBEDDED": "true",
        "ATELIER_DEBUG": "false",
        "ATELIER_SECRET_KEY": secrets.token_urlsafe(50),
        "REDIS_URL": f"unix://{tmp / 'redis.sock'}",
        "ATELIER_FAST_PASSWORD_HASHER": "true",
    }
    if os.environ.get("ATELIER_BENCH_DATABASE_URL"):  # an empty database to measure on (see bench_core)
        env["DATABASE_URL"] = os.environ["ATELIER_BENCH_DATABASE_URL"]
    for key in [k for k in os.environ if k.startswith(("ATELIER_", "DATABASE_", "REDIS_", "CELERY_"))]:
        del os.environ[key]
    os.environ.update(env)
    (tmp / "var" / "staticfiles").mkdir(parents=True)
    return env, redis


def small_images(count: int) -> list[bytes]:
    """`count` distinct 48×36 JPEGs (a colour gradient each), made once and reused."""
    from PIL import Image

    out = []
    for i in range(count):
        im = Image.new("RGB", (48, 36), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
        im.putpixel((i % 48, (i // 48) % 36), (255, 255, 255))
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def manifest_line(i: int, *, labeled: bool) -> str:
    """Line `i` of a bench manifest: image i, usage TRAIN and, when `labeled`, one of ten classes."""
    line = {"source": f"s3://bench-data/manifest-in/img/{i:05d}.jpg", "usage": "TRAIN"}
    if labeled:
        line["annotation"] = [{"type": "modelarts/image_classification", "name": f"class{i % 10}",
                               "annotated-by": "human", "creation-time": "2024-01-02 03:04:05"}]
    return json.dumps(line)


def bench_dataset(user, name: str, *, label_type: str = "image_classification", input_folder: str = ""):
    """An image dataset in the bench bucket: input `input_folder` (default `<name>-in`), output `<name>-out`."""
    from apps.core.paths import parse
    from apps.datasets.services import dataset_create

    return dataset_create(user=user, workspace=user.default_workspace, name=name, data_type="image",
                          label_type=label_type,
                          input_location=parse(f"storage://bench-data/{input_folder or name + '-in'}"),
                          output_location=parse(f"storage://bench-data/{name}-out"))


def timed_operation(op, *, what: str, counted: str, expected: int) -> float:
    """Seconds operation `op` takes, run here as a worker runs it; the bench stops unless it
    succeeds with `expected` as its result's `counted`."""
    from apps.datasets.operations import operation_execute

    log(what)
    start = time.perf_counter()
    status = operation_execute(op.pk)
    elapsed = time.perf_counter() - start
    op.refresh_from_db()
    if status != "succeeded" or op.result.get(counted) != expected:
        raise SystemExit(f"bench datasets: {what}: {status}: {op.message} {op.result}")
    return elapsed


def timed_import(user, dataset, path: str, fmt: str, *, expected: int, what: str) -> float:
    """Seconds an import of `path` into `dataset` takes (see `timed_operation`)."""
    from apps.datasets.services import operation_start

    op = operation_start(user=user, dataset=dataset, kind="import", params={"path": path, "format": fmt})
    return timed_operation(op, what=f"importing {what}", counted="created", expected=expected)


def write_files(root: Path, names_data) -> None:
    for name, data in names_data:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-datasets-"))
    redis = server = None
    try:
        env, redis = setup_environment(tmp)
        import django

        django.setup()
        from django.core.management import call_command

        log("migrating a fresh SQLite database")
        call_command("migrate", "--noinput", verbosity=0)
        from django.conf import settings

        from apps.accounts.services import api_token_create, user_create
        from apps.core.paths import parse
        from apps.datasets.choices import LabelStatus, Shape
        from apps.datasets.exports import export_start
        from apps.datasets.models import Annotation, DatasetOperation, Label, Sample
        from apps.storage.services import bucket_create

        user = user_create(username="bench", password="bench-password-123", email="bench@example.test")
        workspace = user.default_workspace
        bucket = bucket_create(user=user, workspace=workspace, name="bench-data")
        storage_root = Path(settings.ATELIER_STORAGE_ROOT) / bucket.name
        images = small_images(IMAGES)

        # 1. Manifest imports, files already in the dataset's input folder: lines with a source and a
        #    usage only (like the peer's URL-only tasks), then lines that also carry a class label.
        write_files(storage_root / "manifest-in", ((f"img/{i:05d}.jpg", images[i % IMAGES])
                                                  for i in range(MANIFEST_LINES)))
        (storage_root / "manifests").mkdir(parents=True)
        from datasets_floor import insert_floor

        for name, labeled in (("", False), ("labeled_", True)):
            lines = [manifest_line(i, labeled=labeled) for i in range(MANIFEST_LINES)]
            manifest = f"{name or 'plain_'}set.manifest"
            (storage_root / "manifests" / manifest).write_text("\n".join(lines) + "\n")
            dataset = bench_dataset(user, f"manifest-{name}bench", input_folder="manifest-in")
            elapsed = timed_import(user, dataset, f"storage://bench-data/manifests/{manifest}", "manifest",
                                   expected=MANIFEST_LINES, what=f"a {MANIFEST_LINES}-line manifest"
                                   + (" with a class label a line" if labeled else ""))
            rate = MANIFEST_LINES / elapsed
            figure(f"manifest_import_{name}samples_per_s", rate, "samples/s")
            # The same rows written again with nothing but raw INSERTs: what this machine allows at all.
            floor = MANIFEST_LINES / insert_floor(dataset, bench_dataset(user, f"manifest-{name}floor"))
            figure(f"manifest_{name}insert_floor_samples_per_s", floor, "samples/s")
            figure(f"manifest_import_{name}vs_floor", rate / floor, "x")
            if not labeled:  # the background run the import started: decode, hash, preview
                thumbnails = DatasetOperation.objects.get(dataset=dataset, kind="thumbnails")
                elapsed = timed_operation(thumbnails, what=f"making {MANIFEST_LINES} previews",
                                          counted="processed", expected=MANIFEST_LINES)
                figure("manifest_thumbnails_per_s", MANIFEST_LINES / elapsed, "images/s")
        # The labeled samples (the loop's last dataset) published as a version: manifest written,
        # per-sample rows recorded.
        from apps.datasets.versions import version_publish

        publish = version_publish(user=user, dataset=dataset)
        elapsed = timed_operation(publish, what=f"publishing a version of {MANIFEST_LINES} labeled samples",
                                  counted="samples", expected=MANIFEST_LINES)
        figure("publish_samples_per_s", MANIFEST_LINES / elapsed, "samples/s")

        # 2. Folder of images: copied, decoded, thumbnailed.
        write_files(storage_root / "folder", ((f"batch{i // 1000}/{i:05d}.jpg", images[i]) for i in range(IMAGES)))
        image_ds = bench_dataset(user, "images-bench", label_type="object_detection")
        elapsed = timed_import(user, image_ds, "storage://bench-data/folder", "raw", expected=IMAGES,
                               what=f"{IMAGES} images from a folder")
        figure("import_images_per_s", IMAGES / elapsed, "images/s")

        # 4. COCO export of those images with 50,000 boxes.
        labels = [Label.objects.create(dataset=image_ds, name=f"obj{i}", color="#336699") for i in range(5)]
        now = image_ds.created_at
        boxes = []
        for pk in Sample.objects.filter(dataset=image_ds).values_list("pk", flat=True):
            for b in range(BOXES_PER_IMAGE):
                boxes.append(Annotation(sample_id=pk, dataset=image_ds, label=labels[b], type="object_detection",
                                        shape=Shape.BNDBOX, geometry={"xmin": b, "ymin": b, "xmax": b + 10,
                                                                      "ymax": b + 8}, created_at=now))
        Annotation.objects.bulk_create(boxes, batch_size=2000)
        Sample.objects.filter(dataset=image_ds).update(label_status=LabelStatus.LABELED)
        op = export_start(user=user, dataset=image_ds, method="storage", path=parse("storage://bench-data/coco-out"),
                          format="coco")
        elapsed = timed_operation(op, what=f"exporting {IMAGES} images with {len(boxes)} boxes to COCO",
                                  counted="exported", expected=IMAGES)
        figure("export_coco_s", elapsed, "s")

        # 3. Filtered sample page of a 100,000-sample dataset, over HTTP.
        list_ds = bench_dataset(user, "list-bench")
        classes = [Label.objects.create(dataset=list_ds, name=f"class{i}", color="#aa3366") for i in range(10)]
        log(f"creating {LIST_SAMPLES} samples with labels")
        from django.db import transaction
        from django.utils import timezone

        from apps.datasets.bulk import AnnotationRow, SampleRow, insert

        # Written the way the import engine writes them (the database maintains the label index).
        batch_samples, batch_annotations = [], []
        for i in range(LIST_SAMPLES):
            sample = SampleRow(dataset_id=list_ds.pk, dedupe_key=f"{i:040d}",
                               source=f"storage://bench-data/list-in/{i}.jpg", file_name=f"{i}.jpg",
                               directory="list-in", size=1000, width=48, height=36, format_category="image",
                               sample_type=0, usage="TRAIN" if i % 3 else "EVAL", label_status=LabelStatus.LABELED)
            batch_samples.append(sample)
            batch_annotations.append(AnnotationRow(sample_id=sample.id, dataset_id=list_ds.pk,
                                                   label_id=classes[i % 10].pk, type="image_classification",
                                                   created_at=now))
            if len(batch_samples) == 5000:
                stamp = timezone.now()
                with transaction.atomic():
                    insert(SampleRow, batch_samples, now=stamp)
                    insert(AnnotationRow, batch_annotations, now=stamp)
                batch_samples, batch_annotations = [], []
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        _, key = api_token_create(user=user, name="bench")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL, start_new_session=True)
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("bench datasets: the server did not start")
            time.sleep(0.2)
        headers = {"Authorization": f"Token {key}"}
        path = f"/api/v1/datasets/{list_ds.pk}/samples/"
        samples = []
        with httpx.Client(base_url=url, headers=headers, timeout=30, trust_env=False) as client:
            for n in range(WARMUP + REQUESTS):
                params = {"label": classes[n % 10].pk, "usage": "TRAIN", "page": 1 + n % 50, "page_size": 30}
                start = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200 or len(response.json()["results"]) != 30:
                    raise SystemExit(f"bench datasets: sample list answered {response.status_code} with "
                                     f"{len(response.json().get('results', []))} results")
                if n >= WARMUP:
                    samples.append(elapsed)
        figure("sample_list_p95_ms", percentile(samples, 95), "ms")
        return 0
    finally:
        for proc in (server, redis):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    code = main()
    if code == 0:
        peer_labelstudio.compare(FIGURES, images_exported=IMAGES)
    sys.exit(code)
