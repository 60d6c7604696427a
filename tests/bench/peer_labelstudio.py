"""Label Studio 1.23.2, measured in the same run as the Data-section figures, and the ratios.

`bench_datasets.py` calls `compare(ours, images_exported=...)` after its own figures, with those
figures by name; `python tests/bench/peer_labelstudio.py` measures the peer alone (no ratios).

The peer lives in its own virtual environment, `var/bench-peers/label-studio-1.23.2/`
(git-ignored), made on first use with `python -m venv` and `pip install label-studio==1.23.2`
(a few minutes, about 1 GB) and reused afterwards; a marker file written after a successful
install tells a finished environment from an interrupted one. It runs exactly as its own CLI
starts it (`label-studio start`: Django's threaded server, debug off, SQLite) on a free loopback
port, with a temporary data directory and database, no browser, no version check, no Sentry
and no analytics, under a generated user whose legacy API token (`Authorization: Token ...`) is
enabled for its organization with `--enable-legacy-api-token`: 1.23.2 turns legacy tokens off
for new organizations and otherwise accepts only personal access tokens (a JWT refresh token
to trade for short-lived access tokens). It is always stopped (its process group) and its
files removed, whatever happens.

    datasets.peer_labelstudio_import_tasks_per_s       10,000 URL-only image tasks
                                                        (`{"image": "http://127.0.0.1/..."}`) posted
                                                        as one JSON list to
                                                        `POST /api/projects/<id>/import`; timed
                                                        until the project holds all 10,000 (the
                                                        community edition imports inside the request;
                                                        the count is polled anyway)
    datasets.peer_labelstudio_page_p95_ms               `GET /api/tasks/?project=<id>&page=<n>&page_size=30`
                                                        on that 10,000-task project, p95 of 200
                                                        sequential requests after 20 warm-up
    datasets.peer_labelstudio_export_coco_tasks_per_s   2,000 tasks with 5 rectangles each, imported
                                                        as tasks with annotations (untimed), exported
                                                        with `GET /api/projects/<id>/export?exportType=COCO
                                                        &download_resources=false` (no image files:
                                                        less work than ours, which places every image)

Ratios, > 1 when Atelier is better (ours / peer for rates, peer / ours for latencies):

    datasets.manifest_import_vs_labelstudio   manifest_import_samples_per_s / peer import tasks/s
    datasets.sample_list_vs_labelstudio       peer page p95 / sample_list_p95_ms (ours pages a
                                              filtered 100,000-sample dataset, the peer an unfiltered
                                              10,000-task project)
    datasets.export_coco_vs_labelstudio       (10,000 images / export_coco_s) / peer COCO tasks/s

`ATELIER_BENCH_PEERS=0` skips all of this. Whatever goes wrong with the peer (install, start,
a request), one line on stderr says why and the run goes on: our own figures never depend on it.
"""
from __future__ import annotations

import fcntl
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
import zipfile
from pathlib import Path

from benchlib import free_port, percentile

ROOT = Path(__file__).resolve().parent.parent.parent

VERSION = "1.23.2"
PEERS_DIR = ROOT / "var" / "bench-peers"
VENV = PEERS_DIR / f"label-studio-{VERSION}"
MARKER = VENV / ".atelier-installed"
# Read once, at import: bench_datasets clears ATELIER_* from its environment before measuring.
ENABLED = os.environ.get("ATELIER_BENCH_PEERS", "1").strip().lower() not in ("0", "false", "no", "off")

IMPORT_TASKS = 10_000
EXPORT_TASKS = 2_000
BOXES_PER_TASK = 5
REQUESTS = 200
WARMUP = 20
# Half an hour covers a cold pip install on a slow link; ten minutes covers the first start
# (about 150 migrations on SQLite) and an import on a busy two-core machine.
INSTALL_TIMEOUT_S = 1800
START_TIMEOUT_S = 300
IMPORT_TIMEOUT_S = 600
# Our image size in bench_datasets (48×36); COCO needs each result's original size.
WIDTH, HEIGHT = 48, 36

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="obj0"/><Label value="obj1"/><Label value="obj2"/><Label value="obj3"/><Label value="obj4"/>
  </RectangleLabels>
</View>"""


class PeerUnavailable(Exception):
    """The peer could not be installed, started or measured; the message says why in one line."""


def log(message: str) -> None:
    print(f"bench datasets: label studio: {message}", file=sys.stderr, flush=True)


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": f"datasets.{name}", "value": round(value, 3), "unit": unit}), flush=True)


def shown(path: Path) -> str:
    """`path` as a message shows it: relative to the checkout."""
    return os.path.relpath(path, ROOT)


def last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def ensure_installed() -> Path:
    """The `label-studio` executable of the peer's virtual environment, installing it first if needed.

    Raises PeerUnavailable when the install fails (its log stays in var/bench-peers/). A lock
    file keeps two benchmark runs in one checkout from installing into the same folder at once.
    """
    executable = VENV / "bin" / "label-studio"
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    with open(PEERS_DIR / f"label-studio-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if MARKER.exists() and executable.exists():
            return executable
        install_log = PEERS_DIR / f"label-studio-{VERSION}-install.log"
        log(f"installing label-studio=={VERSION} into {shown(VENV)} (first use, a few minutes)")
        # An unmarked folder is an interrupted install: start again from nothing.
        shutil.rmtree(VENV, ignore_errors=True)
        steps = {"python -m venv": [sys.executable, "-m", "venv", str(VENV)],
                 f"pip install label-studio=={VERSION}": [str(VENV / "bin" / "python"), "-m", "pip", "install",
                                                          f"label-studio=={VERSION}"]}
        with open(install_log, "w") as out:
            for name, step in steps.items():
                try:
                    code = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          timeout=INSTALL_TIMEOUT_S).returncode
                except subprocess.TimeoutExpired:
                    raise PeerUnavailable(f"{name} took over {INSTALL_TIMEOUT_S} s (log: {shown(install_log)})") from None
                if code != 0:
                    out.flush()
                    raise PeerUnavailable(f"{name} failed with exit code {code}: {last_line(install_log)} "
                                          f"(log: {shown(install_log)})")
        if not executable.exists():
            raise PeerUnavailable(f"the install left no {shown(executable)}")
        MARKER.write_text(f"label-studio=={VERSION}\n")
        return executable


class LabelStudio:
    """A Label Studio server on a free loopback port with its own temporary data; a context manager.

    Entering starts it and waits (bounded) until its API answers to the generated token; leaving
    stops its whole process group and deletes its data, also when entering failed half way.
    """

    def __init__(self, executable: Path) -> None:
        self.executable = executable
        self.tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-labelstudio-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LabelStudio":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        import httpx

        # A clean environment: Label Studio reads unprefixed names too (DEBUG, HOST, PORT,
        # USERNAME...), so nothing of ours may leak into its settings.
        env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
        env.update({
            "HOME": str(self.tmp),
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.tmp / "data"),
            "DJANGO_DB": "sqlite",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
        })
        command = [str(self.executable), "start", "--no-browser", "--internal-host", "127.0.0.1",
                   "--port", str(self.port), "--data-dir", str(self.tmp / "data"),
                   "--database", str(self.tmp / "label_studio.sqlite3"),
                   "--username", "bench@example.test", "--password", secrets.token_urlsafe(16),
                   "--user-token", self.token, "--enable-legacy-api-token"]
        with open(self.log_path, "w") as out:
            self.proc = subprocess.Popen(command, cwd=self.tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        log(f"starting on port {self.port} (migrates a fresh SQLite database first)")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise PeerUnavailable(f"the server exited with code {self.proc.returncode}: "
                                      f"{last_line(self.log_path)}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise PeerUnavailable(f"the server did not answer /health within {START_TIMEOUT_S} s: "
                                      f"{last_line(self.log_path)}")
            time.sleep(0.5)
        response = self.client().get("/api/projects/")
        if response.status_code != 200:
            raise PeerUnavailable(f"GET /api/projects/ with the generated token answered {response.status_code}: "
                                  f"{response.text[:200]}")

    def client(self, timeout: float = 60):
        import httpx

        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token}"},
                            timeout=timeout, trust_env=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def checked(response, what: str, status: int = 200):
    """`response` when it has the expected status, else PeerUnavailable naming the request."""
    if response.status_code != status:
        raise PeerUnavailable(f"{what} answered {response.status_code}: {response.text[:200]}")
    return response


def project_create(client, title: str) -> int:
    response = client.post("/api/projects/", json={"title": title, "label_config": IMAGE_CONFIG})
    return checked(response, "POST /api/projects/", 201).json()["id"]


def task_count(client, project_id: int) -> int:
    return checked(client.get(f"/api/projects/{project_id}/"), "GET /api/projects/<id>/").json()["task_number"]


def image_url(i: int) -> str:
    return f"http://127.0.0.1/bench/img/{i:05d}.jpg"


def measure_import(client) -> tuple[int, float]:
    """Project id and seconds to import IMPORT_TASKS URL-only tasks, until the project holds them all."""
    project_id = project_create(client, "import-bench")
    body = json.dumps([{"image": image_url(i)} for i in range(IMPORT_TASKS)])
    log(f"importing {IMPORT_TASKS} URL-only tasks")
    start = time.perf_counter()
    checked(client.post(f"/api/projects/{project_id}/import", content=body,
                        headers={"Content-Type": "application/json"}, timeout=IMPORT_TIMEOUT_S),
            "POST /api/projects/<id>/import", 201)
    deadline = time.monotonic() + IMPORT_TIMEOUT_S
    while (count := task_count(client, project_id)) < IMPORT_TASKS:
        if time.monotonic() > deadline:
            raise PeerUnavailable(f"the import held {count} of {IMPORT_TASKS} tasks after {IMPORT_TIMEOUT_S} s")
        time.sleep(0.05)
    return project_id, time.perf_counter() - start


def measure_page(client, project_id: int) -> float:
    """p95 in ms of REQUESTS sequential 30-task pages (after WARMUP), spread over the first 50 pages."""
    samples = []
    for n in range(WARMUP + REQUESTS):
        params = {"project": project_id, "page": 1 + n % 50, "page_size": 30}
        start = time.perf_counter()
        response = client.get("/api/tasks/", params=params)
        elapsed = (time.perf_counter() - start) * 1000
        tasks = checked(response, "GET /api/tasks/").json().get("tasks", [])
        if len(tasks) != 30:
            raise PeerUnavailable(f"GET /api/tasks/ returned {len(tasks)} tasks instead of 30")
        if n >= WARMUP:
            samples.append(elapsed)
    return percentile(samples, 95)


def annotated_task(i: int) -> dict:
    """A task with one annotation of BOXES_PER_TASK rectangles, laid out like bench_datasets' boxes."""
    result = [{"id": f"r{i}-{b}", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
               "original_width": WIDTH, "original_height": HEIGHT, "image_rotation": 0,
               "value": {"x": 100 * b / WIDTH, "y": 100 * b / HEIGHT, "width": 1000 / WIDTH,
                         "height": 800 / HEIGHT, "rotation": 0, "rectanglelabels": [f"obj{b}"]}}
              for b in range(BOXES_PER_TASK)]
    return {"data": {"image": image_url(i)}, "annotations": [{"result": result}]}


def measure_export(client) -> float:
    """Seconds for a COCO export of EXPORT_TASKS annotated tasks, response body received and checked."""
    project_id = project_create(client, "export-bench")
    log(f"importing {EXPORT_TASKS} tasks with {BOXES_PER_TASK} rectangles each (not timed)")
    body = json.dumps([annotated_task(i) for i in range(EXPORT_TASKS)])
    checked(client.post(f"/api/projects/{project_id}/import", content=body,
                        headers={"Content-Type": "application/json"}, timeout=IMPORT_TIMEOUT_S),
            "POST /api/projects/<id>/import (annotated)", 201)
    log(f"exporting {EXPORT_TASKS} annotated tasks to COCO")
    start = time.perf_counter()
    response = client.get(f"/api/projects/{project_id}/export",
                          params={"exportType": "COCO", "download_resources": "false"}, timeout=IMPORT_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    checked(response, "GET /api/projects/<id>/export?exportType=COCO")
    # The COCO export is a zip holding result.json (and images/ when resources are downloaded).
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".json")), None)
        if name is None:
            raise PeerUnavailable(f"the COCO export holds no JSON file: {archive.namelist()[:5]}")
        coco = json.loads(archive.read(name))
    if len(coco.get("images", [])) != EXPORT_TASKS or len(coco.get("annotations", [])) != EXPORT_TASKS * BOXES_PER_TASK:
        raise PeerUnavailable(f"the COCO export holds {len(coco.get('images', []))} images and "
                              f"{len(coco.get('annotations', []))} boxes, expected {EXPORT_TASKS} and "
                              f"{EXPORT_TASKS * BOXES_PER_TASK}")
    return elapsed


def measure(peer: dict[str, float]) -> None:
    """Install if needed, start, and measure the peer, filling `peer` (figure name without the area).

    Prints each figure as soon as it is known, so figures measured before a failure stand; raises
    PeerUnavailable, or whatever else went wrong, after stopping the server.
    """
    executable = ensure_installed()
    with LabelStudio(executable) as server, server.client() as client:
        project_id, seconds = measure_import(client)
        peer["peer_labelstudio_import_tasks_per_s"] = IMPORT_TASKS / seconds
        figure("peer_labelstudio_import_tasks_per_s", IMPORT_TASKS / seconds, "tasks/s")
        peer["peer_labelstudio_page_p95_ms"] = measure_page(client, project_id)
        figure("peer_labelstudio_page_p95_ms", peer["peer_labelstudio_page_p95_ms"], "ms")
        seconds = measure_export(client)
        peer["peer_labelstudio_export_coco_tasks_per_s"] = EXPORT_TASKS / seconds
        figure("peer_labelstudio_export_coco_tasks_per_s", EXPORT_TASKS / seconds, "tasks/s")


def ratios(ours: dict[str, float], peer: dict[str, float], images_exported: int) -> dict[str, float]:
    """The `*_vs_labelstudio` ratios (> 1: Atelier better) for every pair present in both."""
    pairs = {
        "manifest_import_vs_labelstudio": (ours.get("manifest_import_samples_per_s"),
                                           peer.get("peer_labelstudio_import_tasks_per_s")),
        "sample_list_vs_labelstudio": (peer.get("peer_labelstudio_page_p95_ms"), ours.get("sample_list_p95_ms")),
        "export_coco_vs_labelstudio": (images_exported / ours["export_coco_s"] if ours.get("export_coco_s") else None,
                                       peer.get("peer_labelstudio_export_coco_tasks_per_s")),
    }
    return {name: num / den for name, (num, den) in pairs.items() if num and den}


def compare(ours: dict[str, float], *, images_exported: int) -> None:
    """Measure the peer and print its figures, then the ratios against `ours` (bench_datasets' figures).

    Never raises: a peer that cannot be installed, started or measured costs one line on stderr,
    and the ratios of whatever it did measure are still printed.
    """
    if not ENABLED:
        log("skipped (ATELIER_BENCH_PEERS=0)")
        return
    peer: dict[str, float] = {}
    try:
        measure(peer)
    except PeerUnavailable as exc:
        log(f"skipped: {exc}")
    except Exception as exc:  # a peer failing in a way we did not foresee must not fail our figures
        log(f"skipped: {type(exc).__name__}: {exc}")
    for name, value in ratios(ours, peer, images_exported).items():
        figure(name, value, "x")


if __name__ == "__main__":
    try:
        measure({})
    except PeerUnavailable as exc:
        log(str(exc))
        sys.exit(1)
