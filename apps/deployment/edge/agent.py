"""The edge agent: `python -m apps.deployment.edge.agent --console URL --token TOKEN`.

It enrols once with the node's one-time token (the key it gets back is kept in
`--state-dir`, so a restarted agent needs no new token), then:

* runs a run-engine worker (`celery worker`) consuming the node's own queue (and its edge pool's),
  so edge service instances are ordinary long-lived runs supervised on this machine;
* heartbeats to the console every few seconds with CPU, memory, disk and (nvidia-smi) GPU use, and applies the
  configuration it gets back: queues (the worker restarts when they change), freeze (the worker
  stops taking new work; running instances keep serving), log settings, and the load balancers it must serve;
* serves each load balancer on its listen port: HTTP requests matching a rule (prefix, exact or
  regex path) go round-robin — or by client IP when sticky — to the service's instance endpoints,
  through the same upstream client the console's gateway uses;
* upgrades itself when an admin asks (the configuration then names the console's agent version):
  it heartbeats UPGRADING, fetches the program from `…/edge/agent/` with its agent key, checks
  its SHA-256 and that it compiles, stores it as `<state dir>/agent/<version>/agent.py` and
  re-executes itself with it (same PID, same arguments). Its worker is a child of that PID, so the
  new program adopts it (`<state dir>/worker.json`) and the instances keep running; the first
  heartbeat of the new program reports its version. A failed upgrade is reported and the old
  program goes on.

The worker needs the same database and broker settings as the console (it is a run-engine
worker); the agent passes its own environment on. Killing the agent takes the worker with it
(parent-death signal), as a powered-off machine would.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import hashlib
import json
import logging
import logging.handlers
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from apps.deployment import upstream

logger = logging.getLogger("atelier.edge.agent")
# The Atelier tree the worker runs from; an upgraded agent runs from the state dir, so the
# program that re-executes it names the tree in ATELIER_EDGE_ROOT.
ROOT = Path(os.environ.get("ATELIER_EDGE_ROOT") or Path(__file__).resolve().parents[3])
VERSION = "1.1.0"
HOP_HEADERS = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection", b"te", b"trailer"}


def _call(request: urllib.request.Request, timeout: float) -> tuple[int, dict]:
    """(HTTP status, JSON body or {}) of one request to the console; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


def _post(url: str, body: dict, key: str = "", timeout: float = 10) -> tuple[int, dict]:
    return _call(urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                        headers={"Content-Type": "application/json",
                                                 **({"Authorization": f"Agent {key}"} if key else {})}), timeout)


def _get(url: str, key: str, timeout: float = 30) -> tuple[int, dict]:
    return _call(urllib.request.Request(url, headers={"Authorization": f"Agent {key}"}), timeout)


def logging_apply(state_dir: Path, logs: dict) -> None:
    """Rotate the agent log in `file_mb` files up to `total_mb` in all, at the system level, and drop
    files older than the retention (seed-06 §7.4: 10 MB files, 50 MB, retention 1–30 days)."""
    folder = state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_edge", False):
            root.removeHandler(handler)
            handler.close()
    file_bytes = int(logs.get("file_mb", 10)) * 1024 * 1024
    backups = max(0, int(logs.get("total_mb", 50)) // max(1, int(logs.get("file_mb", 10))) - 1)
    handler = logging.handlers.RotatingFileHandler(folder / "agent.log", maxBytes=file_bytes, backupCount=backups)
    handler._edge = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    level = getattr(logging, str(logs.get("system_level", "DEBUG")).upper(), logging.DEBUG)
    root.setLevel(level)
    handler.setLevel(level)
    cutoff = time.time() - int(logs.get("retention_days", 7)) * 86400
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
    (state_dir / "log-settings.json").write_text(json.dumps(logs, sort_keys=True))


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class AdoptedProcess:
    """The worker this agent started before it re-executed itself: still our child (same PID), but
    no longer a Popen object, so it is polled and signalled by PID."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def _signal(self, number: int) -> None:
        try:
            os.kill(self.pid, number)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.1)  # waitpid has no timeout; the worker's own shutdown takes seconds
        return self.returncode


class Worker:
    """The node's run-engine worker process, restarted when its queues change.

    Freezing does not stop it: the instances it supervises keep serving; it only stops consuming its
    queues (celery's cancel_consumer), so no new instance starts here until the node is unfrozen
    (add_consumer). A frozen agent that has no worker yet starts none."""

    def __init__(self, node: int, log_level: str, concurrency: int):
        self.node, self.log_level, self.concurrency = node, log_level, concurrency
        self.hostname = f"edge-{node}@{socket.gethostname()}"
        self.queues: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.paused = False

    def ensure(self, queues: list[str], frozen: bool, log_level: str) -> None:
        wanted = sorted(queues)
        if self.running and wanted == self.queues and log_level == self.log_level:
            if frozen != self.paused:
                self._consume(resume=not frozen)
            return
        if not self.running and not self.queues and (frozen or not wanted):
            return  # already idle
        self.stop()
        if frozen or not wanted:
            # A restart would consume again; with nothing running worth keeping, stay idle instead.
            self.queues = []
            logger.info("worker paused (frozen or no queue)")
            return
        self.queues, self.log_level, self.paused = wanted, log_level, False
        argv = [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", ",".join(wanted),
                "-n", self.hostname, "--concurrency", str(self.concurrency),
                "--without-gossip", "--without-mingle", "--loglevel", log_level]
        logger.info("starting worker on %s", ", ".join(wanted))
        self.proc = subprocess.Popen(argv, cwd=ROOT, preexec_fn=_die_with_parent)

    def _consume(self, *, resume: bool) -> None:
        """Tell the running worker to stop (or resume) consuming its queues, off the heartbeat loop
        (a `celery control` call takes a few seconds); on failure the next heartbeat tries again."""
        self.paused = not resume
        verb, queues = ("add_consumer" if resume else "cancel_consumer"), list(self.queues)

        def call():
            for queue in queues:
                done = subprocess.run([sys.executable, "-m", "celery", "-A", "console", "control", verb, queue,
                                       "-d", self.hostname, "--timeout", "5"],
                                      cwd=ROOT, capture_output=True, text=True, timeout=60)
                if done.returncode != 0 or "error" in done.stdout.lower():
                    logger.warning("%s %s failed: %s", verb, queue, (done.stdout + done.stderr).strip()[-500:])
                    self.paused = resume  # retried on the next heartbeat
                    return
            logger.info("worker %s (%s)", "resumed taking work" if resume else "stopped taking work (frozen)",
                        ", ".join(queues))

        threading.Thread(target=call, name=f"edge-{verb}", daemon=True).start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def hand_over(self, path: Path) -> None:
        """Write what the re-executed agent needs to adopt the running worker."""
        if self.running:
            path.write_text(json.dumps({"pid": self.proc.pid, "queues": self.queues, "log_level": self.log_level,
                                        "paused": self.paused}))

    def adopt(self, path: Path) -> None:
        """Take over the worker an earlier program of this same process started (see `hand_over`);
        a stale file (another process's worker) is ignored."""
        if not path.exists():
            return
        try:
            saved = json.loads(path.read_text())
            child = psutil.Process(int(saved["pid"]))
            ours = child.ppid() == os.getpid() and child.status() != psutil.STATUS_ZOMBIE
        except (ValueError, KeyError, TypeError, psutil.Error):
            ours = False
        path.unlink(missing_ok=True)
        if ours:
            self.proc = AdoptedProcess(int(saved["pid"]))
            self.queues, self.log_level, self.paused = saved["queues"], saved["log_level"], bool(saved["paused"])
            logger.info("adopted worker %s (%s)", saved["pid"], ", ".join(self.queues))

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def rule_match(rule: dict, path: str) -> bool:
    if rule["match"] == "exact":
        return path == rule["path"]
    if rule["match"] == "prefix":
        return path.startswith(rule["path"])
    return re.fullmatch(rule["path"], path) is not None


class Balancers:
    """The load balancers of this node, one asyncio listener each, on a loop thread of their own."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.pool = upstream.Pool()
        self.servers: dict[int, tuple[int, asyncio.base_events.Server]] = {}
        self.config: dict[int, dict] = {}
        self.turn: dict[tuple[int, int], int] = {}
        threading.Thread(target=self.loop.run_forever, daemon=True, name="edge-lb").start()

    def apply(self, balancers: list[dict]) -> None:
        asyncio.run_coroutine_threadsafe(self._apply(balancers), self.loop).result(timeout=10)

    async def _apply(self, balancers: list[dict]) -> None:
        wanted = {b["id"]: b for b in balancers}
        for lb_id in list(self.servers):
            if lb_id not in wanted or wanted[lb_id]["listen_port"] != self.servers[lb_id][0]:
                self.servers.pop(lb_id)[1].close()
        self.config = wanted
        for lb_id, lb in wanted.items():
            if lb_id not in self.servers:
                try:
                    server = await asyncio.start_server(lambda r, w, i=lb_id: self.handle(i, r, w),
                                                        "0.0.0.0", lb["listen_port"])
                except OSError as exc:
                    logger.error("load balancer %s cannot listen on %s: %s", lb["name"], lb["listen_port"], exc)
                    continue
                self.servers[lb_id] = (lb["listen_port"], server)
                logger.info("load balancer %s listening on %s", lb["name"], lb["listen_port"])

    def close(self) -> None:
        """Stop listening (before a re-exec; the new program listens again)."""

        async def shut():
            for _port, server in self.servers.values():
                server.close()
            self.servers = {}

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(timeout=10)

    def pick(self, lb: dict, index: int, endpoints: list[str], client: str) -> str:
        if lb["sticky"]:
            # Session persistence: one client IP keeps its instance while the instance list holds.
            return endpoints[int(hashlib.sha256(client.encode()).hexdigest(), 16) % len(endpoints)]
        key = (lb["id"], index)
        turn = self.turn.get(key, 0)
        self.turn[key] = turn + 1
        return endpoints[turn % len(endpoints)]

    async def handle(self, lb_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head[:-4].split(b"\r\n")
                method, target, _ = lines[0].decode("latin-1").split(" ", 2)
                headers = [tuple(part.strip() for part in line.split(b":", 1)) for line in lines[1:] if b":" in line]
                values = {k.lower(): v for k, v in headers}
                body = await reader.readexactly(int(values.get(b"content-length", b"0") or 0))
                status, out_headers, chunks = await self.forward(lb_id, method, target, headers, body,
                                                                 writer.get_extra_info("peername")[0])
                data = b"".join([c async for c in chunks]) if not isinstance(chunks, bytes) else chunks
                kept = [(k, v) for k, v in out_headers if k.lower() not in HOP_HEADERS | {b"content-length"}]
                response = [f"HTTP/1.1 {status} X".encode()] + [k + b": " + v for k, v in kept]
                response.append(f"Content-Length: {len(data)}".encode())
                writer.write(b"\r\n".join(response) + b"\r\n\r\n" + data)
                await writer.drain()
                if values.get(b"connection", b"").lower() == b"close":
                    return
        except Exception:
            logger.exception("load balancer request failed")
        finally:
            writer.close()

    async def forward(self, lb_id, method, target, headers, body, client):
        lb = self.config.get(lb_id)
        path = target.split("?", 1)[0]
        for index, rule in enumerate(lb["rules"] if lb else []):
            if rule_match(rule, path):
                if not rule["endpoints"]:
                    return 503, [(b"content-type", b"application/json")], \
                        b'{"error_code":"no_instance","error_msg":"No instance of the service is running."}'
                endpoint = self.pick(lb, index, rule["endpoints"], client)
                sent = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS | {b"host", b"content-length"}]
                try:
                    response = await upstream.request(self.pool, scheme="http", endpoint=endpoint, method=method,
                                                      target=target, headers=sent, body=body, timeout=60)
                except upstream.UpstreamError as exc:
                    return 502, [(b"content-type", b"application/json")], json.dumps(
                        {"error_code": "bad_gateway", "error_msg": str(exc)}).encode()
                return response.status, response.headers + [(b"x-edge-instance", endpoint.encode())], response.body
        return 404, [(b"content-type", b"application/json")], \
            b'{"error_code":"no_route","error_msg":"No forwarding rule matches this path."}'


def gpu_sample() -> list[dict]:
    """[{"index", "util", "memory"}] (percent) from nvidia-smi; [] without NVIDIA GPUs or on any error."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index,utilization.gpu,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5).stdout
        rows = [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]
        return [{"index": int(i), "util": float(u), "memory": round(100 * float(used) / float(total), 1)}
                for i, u, used, total in rows if float(total) > 0]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []  # a sample without GPUs beats a missed heartbeat


def _sample() -> dict:
    return {"cpu_percent": psutil.cpu_percent(interval=None), "memory_percent": psutil.virtual_memory().percent,
            "disk_percent": psutil.disk_usage("/").percent, "gpus": gpu_sample(), "agent_version": VERSION}


class UpgradeError(Exception):
    """The new agent program cannot be fetched or used; the message says why."""


def upgrade_fetch(api: str, key: str, state: Path, version: str) -> Path:
    """Fetch the console's agent program, check it (version, SHA-256, it compiles) and store it;
    returns the path of the new agent.py."""
    try:
        code, bundle = _get(f"{api}/agent/", key)
    except (OSError, ValueError) as exc:
        raise UpgradeError(f"cannot fetch the agent program: {exc}") from None
    if code != 200:
        raise UpgradeError(f"the console refused the agent program request ({code})")
    source = (bundle.get("files") or {}).get("agent.py", "")
    if bundle.get("version") != version or not source:
        raise UpgradeError(f"the console offers version {bundle.get('version')!r}, not {version}")
    if hashlib.sha256(source.encode()).hexdigest() != (bundle.get("sha256") or {}).get("agent.py"):
        raise UpgradeError("the agent program does not match its SHA-256")
    try:
        compile(source, "agent.py", "exec")
    except SyntaxError as exc:
        raise UpgradeError(f"the agent program does not compile: {exc}") from None
    folder = state / "agent" / re.sub(r"[^A-Za-z0-9._-]", "_", version)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "agent.py.partial"
    partial.write_text(source)
    partial.replace(folder / "agent.py")
    return folder / "agent.py"


def upgrade_exec(program: Path, argv: list[str], worker: Worker, state: Path) -> None:
    """Re-execute this process with the new program (same PID, so the worker stays our child)."""
    worker.hand_over(state / "worker.json")
    env = {**os.environ, "ATELIER_EDGE_ROOT": str(ROOT),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    logger.info("re-executing with %s", program)
    logging.shutdown()
    os.execve(sys.executable, [sys.executable, str(program), *argv], env)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="Atelier edge agent")
    parser.add_argument("--console", required=True, help="console base URL, e.g. http://console:8000")
    parser.add_argument("--token", default="", help="one-time enrolment token (first start only)")
    parser.add_argument("--state-dir", default=os.path.expanduser("~/.atelier-edge"))
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                        help="instances (long-lived runs) this node supervises at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    api = args.console.rstrip("/") + "/api/v1/deployment/edge"
    key_file = state / "agent.json"
    if key_file.exists():
        saved = json.loads(key_file.read_text())
    else:
        code, body = _post(f"{api}/enroll/", {"token": args.token, "host": socket.gethostbyname(socket.gethostname()),
                                              "os": platform.system(), "arch": platform.machine(),
                                              "agent_version": VERSION})
        if code != 201:
            print(f"enrolment refused: {body.get('error', {}).get('message') or body}", file=sys.stderr, flush=True)
            return 2
        saved = {"node": body["node"], "agent_key": body["agent_key"]}
        key_file.write_text(json.dumps(saved))
        key_file.chmod(0o600)
        print(f"enrolled as edge node {saved['node']}", flush=True)
    worker = Worker(saved["node"], "INFO", args.concurrency)
    worker.adopt(state / "worker.json")
    balancers = Balancers()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    psutil.cpu_percent(interval=None)
    wait = 0.0
    report: dict = {}  # sent with the next heartbeat: an upgrade that failed
    refused_versions: set[str] = set()  # not retried by this program (the console hears why once)
    while not stop.wait(wait):
        wait = 10.0
        try:
            code, config = _post(f"{api}/heartbeat/", {**_sample(), **report}, key=saved["agent_key"])
            report = {}
        except (OSError, ValueError) as exc:
            logger.warning("heartbeat failed: %s", exc)
            continue
        if code != 200:
            logger.warning("heartbeat refused (%s): %s", code, config)
            continue
        wait = float(config.get("heartbeat_seconds", 10))
        logs = config.get("logs", {})
        logging_apply(state, logs)
        worker.ensure(config.get("queues", []), bool(config.get("frozen")), str(logs.get("app_level", "INFO")))
        balancers.apply(config.get("load_balancers", []))
        wanted = (config.get("upgrade") or {}).get("version")
        if wanted and wanted != VERSION and wanted not in refused_versions:
            logger.info("upgrading from %s to %s", VERSION, wanted)
            try:
                # UPGRADING on the node page while the program is fetched and checked.
                _post(f"{api}/heartbeat/", {**_sample(), "upgrading": True}, key=saved["agent_key"])
                program = upgrade_fetch(api, saved["agent_key"], state, wanted)
                balancers.close()
                upgrade_exec(program, _without_token(argv), worker, state)
            except (UpgradeError, OSError) as exc:
                logger.error("upgrade to %s failed: %s", wanted, exc)
                refused_versions.add(wanted)
                (state / "worker.json").unlink(missing_ok=True)
                report = {"upgrade_error": str(exc)}
                wait = 0.0
    worker.stop()
    return 0


def _without_token(argv: list[str]) -> list[str]:
    """The arguments minus `--token VALUE` (the token is spent; the key is in the state dir)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--token":
            skip = True
        elif not arg.startswith("--token="):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
