"""Execution of one run on a worker: claim, stage, start, supervise, upload, finish.

`run_execute_here` is what the Celery task calls. The steps, in order:

1. claim the run (compare-and-set queued → starting, GPU leases) or drop a stale message;
2. heartbeat the run from a thread until the end, so the sweep can tell it is alive;
3. prepare the run directory, download inputs (and outputs marked `preload`, for resuming);
4. multi-node: wait until every node is claimed and rank 0 published its address and port;
5. start the command in its own session/process group, with a scrubbed environment and
   the engine's variables, optionally as another user; the child dies with its supervisor;
6. supervise: stream output lines to the log and metric lines to metrics, poll stop
   requests every 0.5 s, enforce the maximum runtime, watch for hangs, check readiness of
   long-lived runs, upload outputs periodically;
7. after exit: final output and log upload, the final state (with the exit code in words).

The node's pipeline steps the engine performs (input staging per channel, process end with its
exit code, final output upload per channel) are recorded as `[worker-N]` events of the run in
the owner's wording (`runevents.PipelineStep`, `pipeline_step_text`), in that order.
"""
from __future__ import annotations

import logging
import os
import selectors
from collections import deque
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.paths import StoragePath, parse, validate_key
from apps.core.services import event_add
from apps.core.storage import get_storage

from .choices import ACTIVE_STATUSES, HangAction, RunStatus
from .exitcodes import exit_code_explain, exit_code_from_returncode, exit_code_label
from .launch import StageError, check_program, free_port, launch_argv, run_as_account, run_environment
from .live import Publisher
from .logstream import LogWriter
from .metrics import MetricLineError, MetricSink, metric_line_parse
from .models import Run, RunSample, WorkerNode
from .runevents import (
    EVENT_PREFIX,
    MAX_EVENTS_PER_ATTEMPT,
    STEP_INPUT_DONE,
    STEP_INPUT_FAILED,
    STEP_INPUT_STARTED,
    STEP_OUTPUT_DONE,
    STEP_OUTPUT_FAILED,
    STEP_OUTPUT_STARTED,
    STEP_NODES_READY,
    STEP_NODES_WAITING,
    STEP_PROCESS_ENDED,
    STEP_PROCESS_STARTED,
    STEP_SUCCEEDED,
    EventLineError,
    PipelineStep,
    event_line_parse,
    pipeline_step_text,
)
from .scheduling import run_claim, runs_dispatch
from .shell import ShellHost
from .services import (
    REASON_MAX_RUNTIME,
    run_clear_hang,
    run_finish,
    run_mark_ready,
    run_node_stop,
    run_report_hang,
    run_transition,
)

logger = logging.getLogger(__name__)
S = RunStatus

# How often the supervisor looks at the run row for a stop request (and other control checks).
CONTROL_INTERVAL = 0.5
# Log batches are flushed at least this often while output flows: the live-latency budget.
FLUSH_INTERVAL = 0.02
# Metrics and the row's log counters are written at most this often (DB writes are batched).
METRIC_INTERVAL = 0.5
COUNTER_INTERVAL = 2.0
# Hang detection samples the process tree's CPU time this often.
HANG_SAMPLE_INTERVAL = 10.0
# Below this share of one core, the process counts as idle for hang detection.
HANG_CPU_FRACTION = 0.01
# GPU runs: a collective stuck in a spin loop keeps the CPU (and often the GPU) busy, so their rule is
# (seed-05 §17 item 38) no output, no process I/O change for ATELIER_RUNTIME_HANG_IO_CYCLES checks, and
# GPU utilisation whose variance and median over a window of ATELIER_RUNTIME_HANG_GPU_WINDOW readings
# show no change from the window before (see gpu_window_unchanged).


def gpu_window_unchanged(readings, window: int, tolerance: float) -> bool:
    """True when the last `window` GPU-utilisation readings have the same variance and median as the
    `window` readings before them, within `tolerance` (percentage points; variance compared on the
    standard-deviation scale). Fewer than 2 × window readings: False (not enough history to judge)."""
    values = list(readings)[-2 * window:]
    if window < 1 or len(values) < 2 * window:
        return False
    before, now = values[:window], values[window:]
    spread_change = abs(statistics.pstdev(now) - statistics.pstdev(before))
    median_change = abs(statistics.median(now) - statistics.median(before))
    return spread_change <= tolerance and median_change <= tolerance
# After the main process exits, wait this long for the pipe to drain (daemonised children).
DRAIN_SECONDS = 2.0
class OwnershipLost(Exception):
    """The row moved on without this supervisor (lost, restarted elsewhere): touch nothing more."""


class RunHeartbeat(threading.Thread):
    """Refreshes `heartbeat_at` of the run while this process supervises it."""

    def __init__(self, run: Run):
        super().__init__(name=f"heartbeat-run-{run.pk}", daemon=True)
        self.run_id, self.attempt = run.pk, run.attempt
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(settings.ATELIER_RUNTIME_HEARTBEAT_SECONDS):
            try:
                Run.objects.filter(pk=self.run_id, attempt=self.attempt, status__in=ACTIVE_STATUSES).update(
                    heartbeat_at=timezone.now())
            except Exception:  # a database blip: the next beat tries again well before the lost threshold
                logger.warning("heartbeat of run %s failed", self.run_id, exc_info=True)
            finally:
                close_old_connections()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class OutputUploader(threading.Thread):
    """Uploads new or changed files of the output folders every ATELIER_RUNTIME_UPLOAD_SECONDS."""

    def __init__(self, execution: "RunExecution"):
        super().__init__(name=f"outputs-run-{execution.run.pk}", daemon=True)
        self.execution = execution
        self.stopped = threading.Event()
        self.seen: dict[Path, tuple[int, int]] = {}
        self.skipped: set[str] = set()
        self.lock = threading.Lock()
        self.sent: dict[str, dict[Path, int]] = {}  # output channel → {file: size} uploaded this attempt

    def run(self) -> None:
        while not self.stopped.wait(settings.ATELIER_RUNTIME_UPLOAD_SECONDS):
            try:
                self.upload_changed()
            except Exception:  # storage hiccup: the next round or the final upload retries
                logger.warning("periodic output upload of run %s failed", self.execution.run.pk, exc_info=True)
            finally:
                close_old_connections()

    def upload_changed(self) -> tuple[int, int]:
        """Upload files changed since the last round; returns (files, bytes) uploaded."""
        files = total = 0
        for item in self.execution.run.outputs:
            sent = self.upload_channel(item)
            files, total = files + sent[0], total + sent[1]
        return files, total

    def upload_channel(self, item: dict) -> tuple[int, int]:
        """Upload the changed files of one output channel; returns (files, bytes) of this round."""
        files = total = 0
        with self.lock:
            storage = get_storage()
            base = self.execution.run_dir / "outputs" / item["name"]
            target = parse(item["uri"])
            for path in sorted(base.rglob("*")) if base.is_dir() else []:
                if path.is_symlink() or not path.is_file():
                    continue  # a symlink could point at the worker's own files: never follow it
                rel = path.relative_to(base).as_posix()
                try:
                    validate_key(rel)
                except Exception:
                    if rel not in self.skipped:
                        self.skipped.add(rel)
                        self.execution.event(f"Output file {item['name']}/{rel} is not uploaded: its name "
                                             f"breaks the storage naming rules.", level=EventLevel.WARNING)
                    continue
                stat = path.stat()
                signature = (stat.st_size, stat.st_mtime_ns)
                if self.seen.get(path) == signature:
                    continue
                storage.upload_from(path, StoragePath(target.bucket, f"{target.key}/{rel}" if target.key else rel))
                self.seen[path] = signature
                files += 1
                total += stat.st_size
                self.sent.setdefault(item["name"], {})[path] = stat.st_size
        return files, total

    def sent_totals(self, name: str) -> tuple[int, int]:
        """(files, bytes) of output channel `name` uploaded during this attempt, each file counted once."""
        sizes = self.sent.get(name, {})
        return len(sizes), sum(sizes.values())

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=60)


class RunExecution:
    """Supervises one claimed run in this process."""

    def __init__(self, run: Run, node: WorkerNode):
        self.run = run
        self.node = node
        self.run_dir = Path(settings.ATELIER_RUNTIME_WORK_ROOT) / f"run-{run.pk}"
        self.proc: subprocess.Popen | None = None
        self.publisher = Publisher(run.group_channel)
        self.log: LogWriter | None = None
        self.metrics: MetricSink | None = None
        self.heartbeat = RunHeartbeat(run)
        self.uploader: OutputUploader | None = None
        self.stop_reason = ""  # set once a stop (user, peer, hang, max runtime) is under way
        self.kill_at: float | None = None
        self.timed_out = False
        self.port: int | None = None
        self.parent_pid = os.getppid()
        self.in_pool_child = _in_pool_child()
        self.run_as: tuple[int, int, str] | None = None
        self.not_ready = False
        self.grace = settings.ATELIER_RUNTIME_STOP_GRACE_SECONDS
        self.started = time.monotonic()
        self.shells: ShellHost | None = None  # browser shells into the running process (apps/runtime/shell.py)
        self.run_events = 0
        self.event_error_reported = False
        self.clock_started = time.monotonic()  # the max-runtime clock; see runevents (runtime_clock)
        self.clock_held_since: float | None = None
        self.clock_restarted = False
        self.sample_cpu: tuple[float, float] | None = None  # (monotonic time, tree CPU seconds) of the last sample

    # -- small helpers ---------------------------------------------------------------------------

    def event(self, message: str, level: str = EventLevel.INFO) -> None:
        prefix = f"[{self.run.task_name}] " if self.run.node_count > 1 else ""
        event_add(obj=self.run, message=prefix + message, level=level)

    def step(self, step: PipelineStep) -> None:
        """Record a pipeline step of this node as a `[worker-N]` event, in the owner's wording."""
        text = pipeline_step_text(self.run, step)
        if text:
            event_add(obj=self.run, message=f"[{self.run.task_name}] {text}", level=step.level)

    def status_text(self, step: PipelineStep) -> str:
        """The text of a status step (waiting for nodes, process started, succeeded) in the owner's wording."""
        return pipeline_step_text(self.run, step)

    def platform_line(self, message: str) -> None:
        """A line in the log from the engine itself, e.g. where a restart begins."""
        if self.log is not None:
            self.log.add(f"[atelier] {message}")
            self.log.flush()

    def row(self) -> dict:
        values = Run.objects.filter(pk=self.run.pk).values("status", "attempt", "stop_requested_at",
                                                          "status_reason").first()
        if values is None or values["attempt"] != self.run.attempt or values["status"] not in ACTIVE_STATUSES:
            raise OwnershipLost()
        return values

    # -- the steps -------------------------------------------------------------------------------

    def execute(self) -> str:
        self.heartbeat.start()
        try:
            try:
                self.prepare()
                master_addr, master_port, hosts = self.rendezvous()
                self.launch(master_addr, master_port, hosts)
            except StageError as exc:
                self.finish_failed_start(str(exc), exit_code=exc.exit_code)
                return "failed"
            returncode = self.supervise()
            self.stop_shells()
            return self.finish(returncode)
        except OwnershipLost:
            self.kill_tree(signal.SIGKILL)
            logger.warning("run %s attempt %s was taken over; supervisor exits", self.run.pk, self.run.attempt)
            return "abandoned"
        except Exception as exc:
            logger.exception("supervising run %s failed", self.run.pk)
            self.kill_tree(signal.SIGKILL)
            self.finish_failed_start(f"The worker failed while supervising the run: {exc}")
            return "failed"
        finally:
            self.stop_shells()
            self.heartbeat.stop()
            if self.uploader is not None:
                self.uploader.stop()
            if self.log is not None and not self.log.fh.closed:
                try:
                    self.log.close()
                except Exception:
                    logger.warning("closing the log of run %s failed", self.run.pk, exc_info=True)
            self.publisher.close()
            if not settings.ATELIER_RUNTIME_KEEP_WORK_DIRS:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            self._dispatch_waiting()
            close_old_connections()

    def prepare(self) -> None:
        run = self.run
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = LogWriter(run, publisher=self.publisher, run_dir=self.run_dir)
        self.metrics = MetricSink(run, self.publisher)
        if run.attempt > 1:
            self.platform_line(f"Attempt {run.attempt} (restart {run.restart_count}) on {self.node.hostname}.")
        (self.run_dir / "inputs").mkdir(exist_ok=True)
        (self.run_dir / "outputs").mkdir(exist_ok=True)
        storage = get_storage()
        for item in run.inputs:
            self.row()
            self._download(storage, item["name"], parse(item["uri"]), self.run_dir / "inputs" / item["name"],
                           preload=False)
        for item in run.outputs:
            local = self.run_dir / "outputs" / item["name"]
            local.mkdir(parents=True, exist_ok=True)
            if item.get("preload") and (storage.is_folder(parse(item["uri"])) or storage.exists(parse(item["uri"]))):
                self._download(storage, item["name"], parse(item["uri"]), local, preload=True)
        workdir = self.run_dir / run.working_dir if run.working_dir else self.run_dir
        workdir.mkdir(parents=True, exist_ok=True)
        self.run_as = run_as_account()
        if self.run_as is not None:
            uid, gid, _home = self.run_as
            for path in [self.run_dir, *self.run_dir.rglob("*")]:
                if path.name != ".atelier" and ".atelier" not in path.parts[len(self.run_dir.parts):]:
                    os.lchown(path, uid, gid)

    def _download(self, storage, name: str, source: StoragePath, dest: Path, *, preload: bool) -> None:
        started = time.monotonic()
        what = "output (preload)" if preload else "input"
        self.step(PipelineStep(STEP_INPUT_STARTED, channel=name, uri=source.uri, preload=preload))
        files = total = 0
        try:
            for info in storage.walk(source):
                rel = info.key[len(source.key) + 1:] if source.key and info.key != source.key else info.name
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                storage.download_to(StoragePath(source.bucket, info.key), target)
                files += 1
                total += info.size
        except Exception as exc:
            self.step(PipelineStep(STEP_INPUT_FAILED, channel=name, uri=source.uri, preload=preload, error=str(exc),
                                   seconds=time.monotonic() - started))
            raise StageError(f"Downloading {what} {name} from {source.uri} failed: {exc}") from exc
        self.step(PipelineStep(STEP_INPUT_DONE, channel=name, uri=source.uri, preload=preload, files=files,
                               bytes=total, seconds=time.monotonic() - started))

    def rendezvous(self) -> tuple[str, int, list[str]]:
        """Single node: this host and a free port. Multi-node: wait for every node and rank 0's port."""
        run = self.run
        if run.node_count == 1:
            return run.host or "127.0.0.1", free_port(), [run.host or "127.0.0.1"]
        if run.node_rank == 0:
            Run.objects.filter(pk=run.pk, attempt=run.attempt).update(master_addr=run.host, master_port=free_port())
        deadline = time.monotonic() + settings.ATELIER_RUNTIME_RENDEZVOUS_SECONDS
        self.event(self.status_text(PipelineStep(STEP_NODES_WAITING)))
        while True:
            values = self.row()
            if values["status"] == S.STOPPING:
                raise StageError(values["status_reason"] or "Stopped before the process started.")
            peers = list(Run.objects.filter(group=run.group).order_by("node_rank")
                         .values("node_rank", "status", "attempt", "host", "claimed_at", "master_addr",
                                 "master_port"))
            # A node has arrived once a worker claimed it at this attempt; it may already have
            # finished (a fast rank 0 can succeed before a slow peer looks), which is fine.
            ready = [p for p in peers if p["attempt"] == run.attempt and p["claimed_at"] is not None]
            ended = [p for p in ready if p["status"] in (S.FAILED, S.LOST, S.STOPPED)]
            if ended:
                raise StageError(f"Node {ended[0]['node_rank']} ended before all nodes started.")
            master = peers[0]
            if len(ready) == run.node_count and master["master_port"]:
                hosts = [p["host"] for p in peers]
                address = f"{master['master_addr']}:{master['master_port']}"
                self.event(self.status_text(PipelineStep(STEP_NODES_READY, nodes=run.node_count, address=address)))
                return master["master_addr"], master["master_port"], hosts
            if time.monotonic() > deadline:
                missing = [str(p["node_rank"]) for p in peers if p not in ready]
                raise StageError(f"Node(s) {', '.join(missing)} did not start within "
                                 f"{settings.ATELIER_RUNTIME_RENDEZVOUS_SECONDS} s.")
            time.sleep(0.2)

    def launch(self, master_addr: str, master_port: int, hosts: list[str]) -> None:
        run = self.run
        if run.long_lived:
            # A run that names its PORT (an edge service's host-port mapping) listens there; else any free port.
            asked = str(run.env.get("PORT", ""))
            self.port = int(asked) if asked.isdigit() and 0 < int(asked) < 65536 else free_port()
        env = run_environment(run, run_dir=self.run_dir, hosts=hosts, master_addr=master_addr,
                              master_port=master_port, port=self.port)
        cwd = self.run_dir / run.working_dir if run.working_dir else self.run_dir
        if self.run_as is not None:
            env["HOME"] = self.run_as[2]
        check_program(run.command[0], cwd=cwd, path=env["PATH"])
        argv, kwargs = launch_argv(run.command, self.run_as)
        values = self.row()
        if values["status"] == S.STOPPING:
            raise StageError(values["status_reason"] or "Stopped before the process started.")
        try:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, **kwargs,
            )
        except FileNotFoundError:
            raise StageError(f"Command not found: {run.command[0]}.", exit_code=127) from None
        except PermissionError:
            raise StageError(f"Command not executable: {run.command[0]}.", exit_code=126) from None
        except OSError as exc:
            raise StageError(f"The command could not start: {exc}.", exit_code=126) from None
        # Shells are offered before the row says Running, so a console that sees Running finds them.
        try:
            self.shells = ShellHost(run=run, run_dir=self.run_dir, cwd=cwd, env=env, run_as=self.run_as,
                                    pid=self.proc.pid).start()
        except Exception:  # Redis unreachable: the run goes on, only its shell is unavailable
            logger.warning("run %s offers no shell: starting the relay failed", run.pk, exc_info=True)
            self.shells = None
        now = timezone.now()
        Run.objects.filter(pk=run.pk, attempt=run.attempt).update(pid=self.proc.pid, started_at=now)
        started = self.status_text(PipelineStep(STEP_PROCESS_STARTED, pid=self.proc.pid))
        run_transition(run, S.RUNNING, event=started, pid=self.proc.pid, started_at=now)
        self.run.pid = self.proc.pid
        self.started = self.clock_started = time.monotonic()
        if run.outputs:
            self.uploader = OutputUploader(self)
            self.uploader.start()

    def stop_shells(self) -> None:
        """End the browser shells: they live only while the run's process does."""
        if self.shells is not None:
            shells, self.shells = self.shells, None
            try:
                shells.stop()
            except Exception:
                logger.warning("closing the shells of run %s failed", self.run.pk, exc_info=True)

    # -- supervision -------------------------------------------------------------------------------

    def supervise(self) -> int:
        run = self.run
        proc = self.proc
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        rest = b""
        eof = False
        exited_at: float | None = None
        now = time.monotonic()
        last_flush = next_control = next_metrics = next_counters = now
        hang_limit = run.hang_seconds or settings.ATELIER_RUNTIME_HANG_SECONDS
        # Sample often enough to notice a short limit, at most every HANG_SAMPLE_INTERVAL seconds.
        self.hang_interval = min(HANG_SAMPLE_INTERVAL, max(0.5, hang_limit / 4)) if hang_limit else HANG_SAMPLE_INTERVAL
        next_hang = now + self.hang_interval
        self.last_output = now
        self.idle_since = now
        self.cpu_seen = self._tree_cpu()
        self.io_seen = self._tree_io()
        self.gpu_window: deque = deque(maxlen=2 * max(1, settings.ATELIER_RUNTIME_HANG_GPU_WINDOW))
        self.io_still_cycles = 0  # consecutive hang checks without a process I/O change (GPU rule)
        self.hang_reported = False
        self.ready = False
        max_runtime = run.max_runtime_seconds
        sample_every = settings.ATELIER_RUNTIME_RUN_SAMPLE_SECONDS
        next_sample = now + min(sample_every, 1.0) if sample_every else None
        while True:
            if self.log.has_pending:
                timeout = max(0.0, last_flush + FLUSH_INTERVAL - time.monotonic())
            else:
                timeout = max(0.0, next_control - time.monotonic())
            if not eof:
                for _key, _mask in selector.select(timeout):
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        eof = True
                        selector.unregister(fd)
                        break
                    self.last_output = time.monotonic()
                    complete, newline, rest = (rest + chunk).rpartition(b"\n")
                    if newline:
                        self._lines(complete)
            else:
                time.sleep(min(timeout, 0.05))
            now = time.monotonic()
            if self.log.has_pending and (now - last_flush >= FLUSH_INTERVAL or self.log.pending_bytes > 1 << 20):
                self.log.flush()
                last_flush = now
            elif not self.log.has_pending:
                last_flush = now - FLUSH_INTERVAL  # an idle stream flushes its next line at once
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and (eof or now - exited_at > DRAIN_SECONDS):
                break
            if now >= next_metrics:
                self.metrics.flush()
                self.log.maybe_upload()
                next_metrics = now + METRIC_INTERVAL
            if now >= next_counters:
                self._save_counters()
                next_counters = now + COUNTER_INTERVAL
            if now >= next_control:
                next_control = now + CONTROL_INTERVAL
                self._control(now, max_runtime)
            if now >= next_hang:
                next_hang = now + self.hang_interval
                self._hang_check(now)
            if next_sample is not None and now >= next_sample:
                next_sample = now + sample_every
                self._sample(now)
        if rest:
            self._lines(rest)
        selector.close()
        proc.stdout.close()
        # The main process is gone: whatever it left behind in its group goes too.
        self.kill_tree(signal.SIGKILL)
        self.log.flush()
        self.metrics.flush()
        return proc.wait()

    def _lines(self, raw: bytes) -> None:
        """Complete lines read from the pipe (without the last newline), handled as one block:
        one decode, one split, and per-line work only where a metric line is present."""
        text = raw.decode("utf-8", "replace")  # "\n" is never inside a multi-byte character
        lines = text.split("\n")
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if "ATELIER_METRIC " not in text and EVENT_PREFIX not in text:
            self.log.add_many(lines, ascii_size=len(text) + 1 if text.isascii() and "\r" not in text else None)
            return
        for line in lines:
            if line.startswith(EVENT_PREFIX):
                self._run_event(line)
                continue
            self.log.add(line)
            if line.startswith("ATELIER_METRIC "):
                self._metric(line)

    def _run_event(self, line: str) -> None:
        """An ATELIER_EVENT line: a `[worker-N]` event of the run, and its readable form in the log."""
        try:
            parsed = event_line_parse(line)
        except EventLineError as exc:
            self.log.add(line)
            if not self.event_error_reported:
                self.event_error_reported = True
                self.event(f"Ignored a malformed event line: {exc}. Later malformed lines are ignored silently.",
                           level=EventLevel.WARNING)
            return
        self.log.add(f"[atelier] {parsed.text}")
        if parsed.clock == "hold" and not self.clock_restarted and self.clock_held_since is None:
            self.clock_held_since = time.monotonic()
        elif parsed.clock == "start" and not self.clock_restarted:
            # Preparation inside the run (pre-check, dependencies, hook) does not count as runtime.
            self.clock_restarted = True
            self.clock_held_since = None
            self.clock_started = time.monotonic()
        self.run_events += 1
        if self.run_events <= MAX_EVENTS_PER_ATTEMPT:
            event_add(obj=self.run, message=f"[{self.run.task_name}] {parsed.text}", level=parsed.level)

    def _sample(self, now: float) -> None:
        """One resource sample of the run's process tree, as shares of what its flavor grants."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        cpu_seconds = rss = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                cpu_seconds += times.user + times.system
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        previous, self.sample_cpu = self.sample_cpu, (now, cpu_seconds)
        if previous is None or now <= previous[0]:
            return  # the first reading only primes the CPU counter
        flavor = self.run.flavor
        cores = max(1, flavor.cpus)
        cpu = 100.0 * (cpu_seconds - previous[1]) / (now - previous[0]) / cores
        memory_mb = rss / 1024 ** 2
        memory = 100.0 * memory_mb / flavor.memory_mb if flavor.memory_mb else 0.0
        gpu_util = gpu_mem = None
        if self.run.gpu_indices:
            from .scheduling import gpus_sample

            leased = [g for g in self.node.gpus if int(g.get("index", -1)) in set(self.run.gpu_indices)]
            gpu_util, gpu_mem = gpus_sample(leased, indices=[int(g["index"]) for g in leased])
        try:
            RunSample.objects.create(run_id=self.run.pk, attempt=self.run.attempt, at=timezone.now(),
                                     cpu_percent=round(max(0.0, cpu), 2), memory_percent=round(memory, 2),
                                     memory_mb=round(memory_mb, 1), gpu_percent=gpu_util, gpu_memory_percent=gpu_mem)
        except Exception:  # a database blip loses one point of a chart, never the run
            logger.warning("resource sample of run %s failed", self.run.pk, exc_info=True)

    def _metric(self, line: str) -> None:
        try:
            point = metric_line_parse(line)
        except MetricLineError as exc:
            if not self.metrics.error_reported:
                self.metrics.error_reported = True
                self.event(f"Ignored a malformed metric line (log line {self.log.seq + len(self.log.pending)}): "
                           f"{exc}. Later malformed lines are ignored silently.", level=EventLevel.WARNING)
            return
        if point is not None:
            self.metrics.add(point)

    def _save_counters(self) -> None:
        Run.objects.filter(pk=self.run.pk, attempt=self.run.attempt).update(
            log_lines=self.log.seq, log_bytes=self.log.bytes, log_truncated=self.log.truncated)

    def _control(self, now: float, max_runtime: int | None) -> None:
        if self.in_pool_child and os.getppid() != self.parent_pid:
            # The worker's main process died (kill -9): the sweep will mark this run lost and may
            # restart it elsewhere, so this orphaned supervisor must not keep a second copy alive.
            self.kill_tree(signal.SIGKILL)
            os._exit(1)
        values = self.row()
        if values["status"] == S.STOPPING and not self.stop_reason:
            self.begin_stop(values["status_reason"] or "Stop requested.")
        if self.kill_at is not None and now >= self.kill_at and self.proc.poll() is None:
            self.event(f"Still running {self.grace} s after SIGTERM; sending SIGKILL.", level=EventLevel.WARNING)
            self.kill_tree(signal.SIGKILL)
            self.kill_at = None
        # Time under a hold (preparation inside the run) is not counted, up to the limit itself.
        elapsed = now - self.clock_started
        if max_runtime and self.clock_held_since is not None:
            elapsed -= min(now - self.clock_held_since, max_runtime)
        if max_runtime and not self.stop_reason and elapsed > max_runtime:
            self.timed_out = True
            self.event(f"Exceeded its maximum runtime of {_duration(max_runtime)}; stopping it.",
                       level=EventLevel.WARNING)
            self.begin_stop(REASON_MAX_RUNTIME)
        if self.run.long_lived and not self.ready and self.proc.poll() is None:
            self._check_ready(now)

    def begin_stop(self, reason: str) -> None:
        """SIGTERM to the process group now, SIGKILL after the grace period."""
        self.stop_reason = reason
        self.grace = self.run.stop_grace_seconds or settings.ATELIER_RUNTIME_STOP_GRACE_SECONDS
        if self.proc is not None and self.proc.poll() is None:
            self.kill_tree(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.grace

    def kill_tree(self, sig: int) -> None:
        """Signal the run's process group and any descendant that left it."""
        proc = self.proc
        if proc is None:
            return
        try:
            descendants = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        except psutil.Error:
            descendants = []
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for child in descendants:
            try:
                child.send_signal(sig)
            except psutil.Error:
                pass

    def _tree_cpu(self) -> float:
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def _tree_io(self) -> tuple[int, int, int, int]:
        """Summed (read calls, write calls, bytes read, bytes written) of the process tree."""
        totals = [0, 0, 0, 0]
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return (0, 0, 0, 0)
        for proc in procs:
            try:
                io = proc.io_counters()
            except (psutil.Error, AttributeError):  # another user's process, or no I/O accounting here
                continue
            for index, value in enumerate((io.read_count, io.write_count, io.read_bytes, io.write_bytes)):
                totals[index] += value
        return tuple(totals)

    def _activity(self) -> tuple[bool, str]:
        """(busy since the last check, what "idle" means for this run) for hang detection."""
        cpu = self._tree_cpu()
        cpu_busy = cpu - self.cpu_seen > HANG_CPU_FRACTION * self.hang_interval
        self.cpu_seen = cpu
        if self.run.gpu_indices:
            from .scheduling import gpus_sample

            leased = [g for g in self.node.gpus if int(g.get("index", -1)) in set(self.run.gpu_indices)]
            util, _memory = gpus_sample(leased, indices=[int(g["index"]) for g in leased])
            if util is not None:  # unreadable GPUs fall back to the CPU rule below
                io = self._tree_io()
                self.io_still_cycles = 0 if io != self.io_seen else self.io_still_cycles + 1
                self.io_seen = io
                self.gpu_window.append(util)
                io_still = self.io_still_cycles >= settings.ATELIER_RUNTIME_HANG_IO_CYCLES
                gpu_still = gpu_window_unchanged(self.gpu_window, settings.ATELIER_RUNTIME_HANG_GPU_WINDOW,
                                                 settings.ATELIER_RUNTIME_HANG_GPU_TOLERANCE)
                return not (io_still and gpu_still), f"no output, no I/O and flat GPU utilisation ({util:.0f} %)"
        return cpu_busy, "no output and almost no CPU use"

    def _hang_check(self, now: float) -> None:
        limit = self.run.hang_seconds or settings.ATELIER_RUNTIME_HANG_SECONDS
        if not limit or self.stop_reason:
            return
        busy, idle_means = self._activity()
        if busy or now - self.last_output < self.hang_interval:
            self.idle_since = now
            if self.hang_reported:
                self.hang_reported = False
                run_clear_hang(self.run)
                self.event("Activity resumed; no longer suspected hung.")
            return
        if not self.hang_reported and now - self.idle_since >= limit:
            self.hang_reported = True
            run_report_hang(self.run, idle_seconds=int(now - self.idle_since), why=idle_means)
            if self.run.hang_action == HangAction.STOP:
                run_node_stop(self.run, reason="Stopped: suspected hang.", level=EventLevel.WARNING)

    def _check_ready(self, now: float) -> None:
        if now - self.started > settings.ATELIER_RUNTIME_READY_SECONDS:
            self.event(f"Not healthy within {settings.ATELIER_RUNTIME_READY_SECONDS} s; stopping it.",
                       level=EventLevel.ERROR)
            self.not_ready = True
            self.begin_stop(f"Not healthy within {settings.ATELIER_RUNTIME_READY_SECONDS} s.")
            return
        try:
            if self.run.health_path:
                scheme = "https" if self.run.health_tls else "http"
                url = f"{scheme}://127.0.0.1:{self.port}{self.run.health_path}"
                with urllib.request.urlopen(url, timeout=1,  # noqa: S310 - loopback, our port
                                            context=_loopback_tls() if self.run.health_tls else None) as response:
                    healthy = 200 <= response.status < 300
            else:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    healthy = True
        except (OSError, urllib.error.URLError, ValueError):
            healthy = False
        if healthy:
            self.ready = True
            run_mark_ready(self.run, endpoint=f"{self.run.host}:{self.port}", port=self.port)

    # -- the end ---------------------------------------------------------------------------------

    def finish(self, returncode: int) -> str:
        run = self.run
        code = exit_code_from_returncode(returncode)
        self._save_counters()
        # The documented order: the process ends (exit code), then its outputs are uploaded.
        self.platform_line(f"Process exited with {exit_code_label(code)}.")
        self.step(PipelineStep(STEP_PROCESS_ENDED, exit_code=code, seconds=time.monotonic() - self.started))
        if self.uploader is not None:
            self.uploader.stop()
            self.step(PipelineStep(STEP_OUTPUT_STARTED))
            for item in run.outputs:
                started = time.monotonic()
                try:
                    self.uploader.upload_channel(item)
                except Exception as exc:
                    logger.warning("final output upload of run %s failed", run.pk, exc_info=True)
                    self.step(PipelineStep(STEP_OUTPUT_FAILED, channel=item["name"], uri=item["uri"], error=str(exc),
                                           seconds=time.monotonic() - started))
                    self.platform_line(f"Uploading outputs failed: {exc}")
                    return self._end(S.FAILED, f"Uploading outputs failed: {exc}", code, level=EventLevel.ERROR)
                files, total = self.uploader.sent_totals(item["name"])
                self.step(PipelineStep(STEP_OUTPUT_DONE, channel=item["name"], uri=item["uri"], files=files,
                                       bytes=total, seconds=time.monotonic() - started))
        self.log.close()
        fields = {"log_lines": self.log.seq, "log_bytes": self.log.bytes, "log_truncated": self.log.truncated}
        if self.timed_out:
            return self._end(S.FAILED, REASON_MAX_RUNTIME, code, level=EventLevel.ERROR, **fields)
        if self.not_ready:
            return self._end(S.FAILED, self.stop_reason, code, level=EventLevel.ERROR, **fields)
        if self.stop_reason:
            return self._end(S.STOPPED, self.stop_reason, code, **fields)
        try:
            values = self.row()
        except OwnershipLost:
            return "abandoned"
        if values["status"] == S.STOPPING:  # the request arrived between the last poll and the exit
            return self._end(S.STOPPED, values["status_reason"] or "Stopped.", code, **fields)
        if code == 0:
            return self._end(S.SUCCEEDED, "Exited with code 0.", code, **fields)
        return self._end(S.FAILED, f"Exited with {exit_code_label(code)}.", code, level=EventLevel.ERROR, **fields)

    def _end(self, status: str, reason: str, code: int | None, level: str = EventLevel.INFO, **fields) -> str:
        explained = f" Exit code {code}: {exit_code_explain(code)}." if code is not None else ""
        if status == S.SUCCEEDED:
            message = self.status_text(PipelineStep(STEP_SUCCEEDED, exit_code=0))
        elif status == S.STOPPED:
            message = f"Stopped.{explained}"
        else:
            message = f"Failed: {reason.rstrip('.')}."
        run_finish(self.run, status, reason=reason, event=message, exit_code=code, level=level, **fields)
        return status

    def finish_failed_start(self, reason: str, exit_code: int | None = None) -> None:
        try:
            values = self.row()
        except OwnershipLost:
            return
        if self.log is not None:
            self.platform_line(reason)
        if values["status"] == S.STOPPING:
            run_finish(self.run, S.STOPPED, reason=values["status_reason"] or "Stopped.",
                       event="Stopped before the process started.", exit_code=exit_code)
        else:
            run_finish(self.run, S.FAILED, reason=reason, event=f"Failed: {reason.rstrip('.')}.",
                       exit_code=exit_code, level=EventLevel.ERROR)

    def _dispatch_waiting(self) -> None:
        """Our GPUs and slot are free now: send runs waiting in this pool without delay."""
        try:
            waiting = list(Run.objects.filter(status=S.QUEUED, pool_id=self.run.pool_id, dispatched_at__isnull=True)
                           .values_list("pk", flat=True)[:50])
            if waiting:
                runs_dispatch(waiting)
        except Exception:  # the sweep will send them
            logger.warning("dispatch after run %s failed", self.run.pk, exc_info=True)


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return " ".join(p for p in parts if p) or "0s"


def _loopback_tls() -> ssl.SSLContext:
    """TLS for readiness probes without certificate checks: the server is the run's own process
    on this worker's loopback (the engine picked its port), and its certificate is typically
    self-signed for a name that is not 127.0.0.1, so verifying it would only refuse good servers."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _in_pool_child() -> bool:
    """True inside a prefork pool child (its parent is the worker's main process)."""
    try:
        from billiard.process import current_process

        return current_process()._name != "MainProcess"
    except Exception:
        return False


def run_execute_here(*, run_id: int, attempt: int, hostname: str) -> str:
    """Execute `run_id` at `attempt` on this worker if it can claim it; returns what happened."""
    node = WorkerNode.objects.filter(hostname=hostname).first()
    if node is None:
        logger.error("worker %s is not registered; leaving run %s for another worker", hostname, run_id)
        Run.objects.filter(pk=run_id, attempt=attempt, status=S.QUEUED).update(dispatched_at=None)
        return "unregistered"
    run = run_claim(run_id=run_id, attempt=attempt, node=node)
    if run is None:
        return "skipped"
    return RunExecution(run, node).execute()
