"""Training benchmarks: job submit → first line of the user's code, and the built-in algorithms end to end.

Starts its own stack in a temporary directory (SQLite, private Redis, one Celery worker on
`pool.local`), creates jobs through the real service and reads their logs and outputs from
storage. Figures:

    training.submit_to_first_log_p50_ms   custom script job (code folder in storage, one node):
                                          training_job_create → the boot file's first statement
                                          (its own clock); median of 10 after 2 warm-up jobs
    training.builtin_image_cls_digits_s   built-in image classifier on scikit-learn's digits
                                          (1,797 PNGs, 6 epochs at 16 px): create → Completed
    training.builtin_image_cls_digits_acc its held-out accuracy (eval_result.json)
    training.builtin_detection_shapes_s   built-in detector on 300 generated 64 px shape images
                                          (tests/fixtures/training/shapes.py), 8 epochs
    training.builtin_detection_shapes_map50  its pycocotools mAP@0.5 on the held-out 60 images
    training.builtin_tabular_s            built-in tabular algorithm on scikit-learn's breast cancer
                                          table (569 rows, 30 features), 10 s FLAML budget
    training.builtin_tabular_acc          its held-out accuracy
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_runtime import ROOT, percentile, stack_env, stop  # noqa: E402

from apps.core.embedded_redis import start_embedded_redis  # noqa: E402

SUBMIT_JOBS = 10
WARMUP_JOBS = 2


def log(message: str) -> None:
    print(f"bench training: {message}", file=sys.stderr, flush=True)


def stop_worker(worker: subprocess.Popen | None) -> None:
    """Warm shutdown: SIGTERM to the Celery main process only, which lets its pool children finish the
    task they run and exit (signalling the whole group, as `stop` does, kills the children under it and
    the main process reports WorkerLostError); the group is killed only if that takes over 30 s."""
    if worker is None or worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop(worker)
    try:  # whatever the main process left behind in its group (a child that outlived it)
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": f"training.{name}", "value": round(value, 4), "unit": unit}), flush=True)


class Bench:
    def __init__(self):
        from apps.accounts.services import user_create
        from apps.runtime.models import Flavor, Pool
        from apps.storage.services import bucket_create

        self.user = user_create(username="bench-trainer", password=secrets.token_urlsafe(16),
                                email="bench@example.test")
        self.workspace = self.user.default_workspace
        self.pool = Pool.objects.get(name="local")
        self.flavor = Flavor.objects.filter(pools=self.pool, gpus=0).order_by("cpus").first()
        bucket_create(user=self.user, workspace=self.workspace, name="bench-train")
        self.count = 0

    def put(self, key: str, content: bytes) -> None:
        from apps.core.paths import parse
        from apps.core.storage import get_storage

        get_storage().save(parse(f"storage://bench-train/{key}"), io.BytesIO(content))

    def read(self, key: str) -> bytes:
        from apps.core.paths import parse
        from apps.core.storage import get_storage

        with get_storage().open(parse(f"storage://bench-train/{key}")) as fh:
            return fh.read()

    def create(self, **values):
        from apps.training.services import training_job_create

        self.count += 1
        return training_job_create(user=self.user, workspace=self.workspace, name=f"bench-{self.count}",
                                   pool=self.pool, flavor=self.flavor, experiment="none", **values)

    def wait_completed(self, job, timeout: float):
        from apps.training.models import TrainingJob

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = TrainingJob.objects.get(pk=job.pk)
            if fresh.status == "completed":
                return fresh
            if fresh.is_terminal:
                raise SystemExit(f"bench training: job {fresh.name} ended {fresh.status}: {fresh.status_reason}")
            time.sleep(0.05)
        raise SystemExit(f"bench training: job {job.name} did not complete within {timeout:.0f}s")

    def submit_to_first_log(self) -> list[float]:
        from apps.runtime.logstream import log_read
        from apps.training.selectors import job_runs

        self.put("code/train.py", b"import time\nprint(repr(time.time()), flush=True)\n")
        samples = []
        for index in range(WARMUP_JOBS + SUBMIT_JOBS):
            submitted = time.time()
            job = self.wait_completed(self.create(code_dir="storage://bench-train/code", boot_file="train.py"), 120)
            stamp = None
            for line in log_read(job_runs(job)[0], after=0, limit=10000).lines:
                try:
                    stamp = float(line)
                    break
                except ValueError:
                    continue
            if stamp is None:
                raise SystemExit(f"bench training: job {job.name} printed no timestamp")
            if index >= WARMUP_JOBS:
                samples.append((stamp - submitted) * 1000)
        return samples

    def builtin(self, name: str, data: str, hyperparameters: dict, timeout: float) -> tuple[float, dict]:
        started = time.monotonic()
        job = self.create(boot_mode="builtin", builtin=name,
                          inputs=[{"name": "data_url", "uri": f"storage://bench-train/{data}"}],
                          outputs=[{"name": "train_url", "uri": f"storage://bench-train/{data}-model"}],
                          hyperparameters=hyperparameters)
        self.wait_completed(job, timeout)
        elapsed = time.monotonic() - started
        return elapsed, json.loads(self.read(f"{data}-model/eval_result.json"))

    def digits(self) -> tuple[float, float]:
        import numpy as np
        from PIL import Image
        from sklearn.datasets import load_digits

        digits = load_digits()
        for index, (image, target) in enumerate(zip(digits.images, digits.target)):
            buf = io.BytesIO()
            Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
            self.put(f"digits/{target}/{index}.png", buf.getvalue())
        elapsed, report = self.builtin("image_classification", "digits",
                                       {"epochs": 6, "image_size": 16, "width": 16}, 900)
        return elapsed, report["accuracy"]

    def shapes(self) -> tuple[float, float]:
        from tests.fixtures.training.shapes import shapes_coco

        for rel, content in shapes_coco(300, 64, seed=2).items():
            self.put(f"shapes/{rel}", content)
        elapsed, report = self.builtin("object_detection", "shapes",
                                       {"epochs": 8, "image_size": 64, "learning_rate": 0.005}, 1800)
        return elapsed, report["map50"]

    def tabular(self) -> tuple[float, float]:
        from sklearn.datasets import load_breast_cancer

        frame = load_breast_cancer(as_frame=True).frame
        self.put("cancer/table.csv", frame.to_csv(index=False).encode())
        elapsed, report = self.builtin("tabular", "cancer", {"label_column": "target", "time_budget": 10}, 600)
        return elapsed, report["accuracy"]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-training-"))
    redis_proc = worker = None
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
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, start_new_session=True,
        )
        os.environ.update(env)
        import django

        django.setup()
        from apps.runtime.models import WorkerNode

        deadline = time.monotonic() + 60
        while not WorkerNode.objects.filter(hostname__startswith="bench@").exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("bench training: the worker did not register within 60s")
            time.sleep(0.2)
        bench = Bench()
        log(f"submit → first log line: {SUBMIT_JOBS} jobs after {WARMUP_JOBS} warm-up jobs")
        figure("submit_to_first_log_p50_ms", percentile(bench.submit_to_first_log(), 50), "ms")
        log("built-in image classification on digits")
        seconds, accuracy = bench.digits()
        figure("builtin_image_cls_digits_s", seconds, "s")
        figure("builtin_image_cls_digits_acc", accuracy, "ratio")
        log("built-in tabular on breast cancer")
        seconds, accuracy = bench.tabular()
        figure("builtin_tabular_s", seconds, "s")
        figure("builtin_tabular_acc", accuracy, "ratio")
        log("built-in detection on generated shapes")
        seconds, map50 = bench.shapes()
        figure("builtin_detection_shapes_s", seconds, "s")
        figure("builtin_detection_shapes_map50", map50, "ratio")
        return 0
    finally:
        stop_worker(worker)
        stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
