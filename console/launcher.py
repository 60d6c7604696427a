"""`python -m console.launcher`: the embedded console in the foreground (what `make run` starts).

Prepares the var directory (secret key, private Redis when REDIS_URL is unset), migrates,
sets up the local pool and flavors, creates the first admin, then supervises four children,
each in its own process group: the ASGI server, one Celery worker serving every queue, Celery
beat and the private Redis. Their output is prefixed with their name. SIGINT/SIGTERM/SIGHUP
stop every child (TERM, then KILL after a grace period) and exit 0; a child that dies on its
own stops the others and the launcher exits 1 naming it. A second Ctrl-C skips the grace period.
Job processes the worker started in process groups of their own are stopped the same way,
so nothing is left running.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent

# Seconds a child gets between SIGTERM and SIGKILL when the run engine's stop grace is unknown.
DEFAULT_GRACE = 30.0
# Seconds uvicorn waits for open connections at shutdown: a browser tab's WebSocket never
# closes on its own, and the page reconnects when the console is back.
WEB_SHUTDOWN_SECONDS = 3
# Seconds the ASGI server may take to answer /healthz after it starts (a cold import is ~3 s).
READY_TIMEOUT = 60.0
# How often the supervisor checks its children; also bounds the reaction time to a signal.
POLL_INTERVAL = 0.2

# Talks to our own server: never through an HTTP proxy from the environment.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))

COLOURS = {"web": "36", "worker": "35", "beat": "33", "redis": "31", "setup": "32"}


class LaunchError(Exception):
    """A start-up step failed; the message says which and what to do."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    reader: threading.Thread | None = None


class Output:
    """Writes children's lines with a `name |` prefix; one lock keeps lines whole."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.colour = hasattr(self.stream, "isatty") and self.stream.isatty() and not os.environ.get("NO_COLOR")

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<6} |"
        if self.colour:
            prefix = f"\033[{COLOURS.get(name, '0')}m{prefix}\033[0m"
        self.write(f"{prefix} {text}\n")

    def say(self, text: str) -> None:
        self.write(f"atelier: {text}\n")

    def write(self, text: str) -> None:
        with self.lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # our reader went away; keep supervising
                pass

    def pump(self, name: str, pipe) -> None:
        """Copy a child's output until it closes its end."""
        for raw in iter(pipe.readline, b""):
            self.line(name, raw.decode("utf-8", "replace").rstrip("\r\n"))
        pipe.close()


def secret_key_for(var_dir: Path) -> str:
    """The installation's own random key, made once and kept in var/ readable by the owner only."""
    path = var_dir / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def check_port_free(host: str, port: int) -> None:
    """Fail early with a clear message instead of a uvicorn traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LaunchError(
                f"cannot listen on {host}:{port} ({exc.strerror}); stop whatever uses it or set ATELIER_PORT"
            ) from None


def worker_queues() -> list[str]:
    """Every queue the settings send work to, plus ATELIER_WORKER_QUEUES.

    That is the default pool queue, the control queue, each routed queue and each queue a beat
    entry names. The embedded worker is the only worker, so it must serve all of them or
    tasks sent there would wait forever. (Its own direct queue needs no listing.)
    """
    from django.conf import settings

    queues = [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "pool.local"),
              getattr(settings, "ATELIER_CONTROL_QUEUE", "")]
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    if isinstance(routes, dict):
        queues += [route.get("queue") for route in routes.values() if isinstance(route, dict)]
    queues += [getattr(queue, "name", queue) for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or []]
    for entry in (getattr(settings, "CELERY_BEAT_SCHEDULE", None) or {}).values():
        queues.append((entry.get("options") or {}).get("queue"))
    queues += [q.strip() for q in os.environ.get("ATELIER_WORKER_QUEUES", "").split(",")]
    return list(dict.fromkeys(q for q in queues if isinstance(q, str) and q))


def stop_grace() -> float:
    """The run engine's stop grace: jobs get as long to save a checkpoint as a Stop gives them."""
    from django.conf import settings

    return float(getattr(settings, "ATELIER_RUNTIME_STOP_GRACE_SECONDS", DEFAULT_GRACE))


def worker_concurrency() -> int:
    """Each run holds a worker process while it supervises its user process, so allow several
    at once even on a small machine; ATELIER_WORKER_CONCURRENCY overrides."""
    value = os.environ.get("ATELIER_WORKER_CONCURRENCY", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise LaunchError(f"ATELIER_WORKER_CONCURRENCY must be an integer, not {value!r}") from None
    return max(4, os.cpu_count() or 1)


class Launcher:
    def __init__(self, *, host: str, port: int, grace: float | None, output: Output):
        self.host, self.port, self.out = host, port, output
        # Without --grace, the run engine's setting is used once the settings are loaded.
        self.grace_given = grace is not None
        self.grace = grace if grace is not None else DEFAULT_GRACE
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.kill_now = False
        self.var_dir = Path(os.environ.get("ATELIER_VAR_DIR") or BASE_DIR / "var").resolve()

    # -- environment ---------------------------------------------------------------------
    def prepare_environment(self) -> None:
        """Defaults for local use; anything the caller already set wins."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        # STATIC_ROOT: WhiteNoise serves from the finders but warns at every start when it is missing.
        (self.var_dir / "staticfiles").mkdir(exist_ok=True)
        os.environ["ATELIER_VAR_DIR"] = str(self.var_dir)
        os.environ["ATELIER_EMBEDDED"] = "true"
        os.environ.setdefault("ATELIER_DEBUG", "true")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        if not os.environ.get("ATELIER_SECRET_KEY"):
            os.environ["ATELIER_SECRET_KEY"] = secret_key_for(self.var_dir)

    # -- children ------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str]) -> Child:
        proc = subprocess.Popen(
            argv, cwd=BASE_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: a terminal Ctrl-C reaches only us, and we stop it in order
        )
        child = Child(name=name, proc=proc)
        child.reader = threading.Thread(target=self.out.pump, args=(name, proc.stdout), daemon=True)
        child.reader.start()
        self.children.append(child)
        return child

    def start_redis(self) -> None:
        from apps.core.embedded_redis import start_embedded_redis

        sock = self.var_dir / "redis.sock"
        try:
            proc = start_embedded_redis(sock, self.var_dir / "redis")
        except RuntimeError as exc:
            raise LaunchError(f"the private Redis did not start: {exc}") from None
        self.children.append(Child(name="redis", proc=proc))
        os.environ["REDIS_URL"] = f"unix://{sock}"
        self.out.line("redis", f"private Redis on {sock}")

    def run_step(self, name: str, argv: list[str], *, capture: bool = False) -> str:
        """Run a set-up command to completion; its output is prefixed, or returned when `capture`."""
        proc = subprocess.Popen(argv, cwd=BASE_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE if capture else subprocess.STDOUT, start_new_session=True)
        self.children.append(Child(name=name, proc=proc))
        try:
            if capture:
                stdout, stderr = proc.communicate()
                for line in stderr.decode("utf-8", "replace").splitlines():
                    self.out.line(name, line)
                text = stdout.decode("utf-8", "replace")
            else:
                self.out.pump(name, proc.stdout)
                proc.wait()
                text = ""
        finally:
            self.children.pop()
        if self.stop_requested.is_set():
            raise KeyboardInterrupt
        if proc.returncode != 0:
            raise LaunchError(f"`{' '.join(argv[1:])}` failed with exit code {proc.returncode} (output above)")
        return text

    def wait_until_serving(self, web: Child) -> None:
        url = f"http://{self.url_host}:{self.port}/healthz"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if web.proc.poll() is not None:
                return  # the supervision loop reports it
            try:
                LOOPBACK.open(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers (503 says what is down); serving is all we wait for
            except OSError:
                time.sleep(0.2)
        if not self.stop_requested.is_set():
            self.out.say(f"warning: {url} did not answer within {READY_TIMEOUT:.0f}s")

    @property
    def url_host(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    # -- stopping ------------------------------------------------------------------------
    def request_stop(self, signum, frame) -> None:
        if self.stop_requested.is_set():
            self.kill_now = True  # second Ctrl-C: no more waiting
        self.stop_requested.set()
        for child in self.children:
            if child.name == "setup":  # a set-up step (migrate) is not worth finishing
                self.signal_group(child.proc.pid, signal.SIGTERM)

    def detached_groups(self) -> dict[int, list[psutil.Process]]:
        """Process groups our children's descendants started for themselves (the run engine puts
        each job in its own group): pgid → members. Stopping only our children would orphan them."""
        own = {child.proc.pid for child in self.children}
        groups: dict[int, list[psutil.Process]] = {}
        for child in self.children:
            try:
                descendants = psutil.Process(child.proc.pid).children(recursive=True)
            except psutil.Error:
                continue
            for proc in descendants:
                try:
                    pgid = os.getpgid(proc.pid)
                except ProcessLookupError:
                    continue
                if pgid not in own:
                    groups.setdefault(pgid, []).append(proc)
        return groups

    def stop_children(self, children: list[Child], detached: dict[int, list[psutil.Process]] | None = None) -> None:
        """TERM each child (and the detached groups), wait up to the grace period, then KILL
        the children's process groups and whatever else is left."""
        detached = detached or {}
        for child in children:
            # The leader only: Celery's main process then shuts down warm (stops taking work,
            # lets running tasks record how their jobs ended); TERM on its whole group would
            # kill the pool processes mid-task and hand their messages back to the queue.
            self.signal_pid(child.proc.pid, signal.SIGTERM)
        for pgid in detached:
            self.signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and not self.kill_now:
            if all(c.proc.poll() is not None for c in children) and not self.still_running(detached):
                break
            time.sleep(0.05)
        for child in children:
            if child.proc.poll() is None:
                self.out.say(f"{child.name} did not stop within {self.grace:.0f}s; killing it")
            # Kill the group even when the leader exited: its helpers (pool processes) may linger.
            self.signal_group(child.proc.pid, signal.SIGKILL)
            try:
                child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.out.say(f"{child.name} (pid {child.proc.pid}) survived SIGKILL")
            if child.reader is not None:
                child.reader.join(timeout=2)
        for pgid in self.still_running(detached):
            self.out.say(f"job process group {pgid} did not stop within {self.grace:.0f}s; killing it")
            self.signal_group(pgid, signal.SIGKILL)

    @staticmethod
    def still_running(groups: dict[int, list[psutil.Process]]) -> list[int]:
        """The groups with a live member (psutil checks identity, so a reused pid does not count)."""
        def alive(proc: psutil.Process) -> bool:
            try:
                return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                return False
        return [pgid for pgid, members in groups.items() if any(alive(p) for p in members)]

    @staticmethod
    def signal_pid(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self) -> None:
        detached = self.detached_groups()
        # Redis last: the worker and the web process need it to finish cleanly.
        users = [c for c in self.children if c.name != "redis"]
        redis_children = [c for c in self.children if c.name == "redis"]
        self.stop_children(users, detached)
        self.stop_children(redis_children)

    # -- main ----------------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.request_stop)
        try:
            return self.start_and_supervise()
        except LaunchError as exc:
            self.out.say(f"error: {exc}")
            self.stop_all()
            return 1
        except KeyboardInterrupt:
            self.out.say("stopping")
            self.stop_all()
            return 0
        except BaseException:
            self.stop_all()  # never leave children behind, whatever broke
            raise

    def start_and_supervise(self) -> int:
        self.prepare_environment()
        check_port_free(self.host, self.port)
        if not os.environ.get("REDIS_URL"):
            self.start_redis()
        python = sys.executable
        self.run_step("setup", [python, "manage.py", "migrate", "--noinput"])
        self.run_step("setup", [python, "manage.py", "runtime_bootstrap"])
        admin_text = self.run_step("setup", [python, "manage.py", "ensure_admin"], capture=True)

        queues = worker_queues()
        from django.conf import settings

        control_queue = settings.ATELIER_CONTROL_QUEUE
        # Runs hold worker slots for as long as they execute; the control queue (lost-run sweeps,
        # dispatch) gets a worker of its own so long jobs can never starve it.
        pool_queues = [q for q in queues if q != control_queue]
        if not self.grace_given:
            self.grace = stop_grace()
        web = self.spawn("web", [
            python, "-m", "uvicorn", "console.asgi:application", "--host", self.host, "--port", str(self.port),
            "--lifespan", "off",  # Django's ASGI handler does not speak the lifespan protocol
            "--timeout-graceful-shutdown", str(WEB_SHUTDOWN_SECONDS),
        ])
        self.spawn("worker", [
            python, "-m", "celery", "-A", "console", "worker", "-Q", ",".join(pool_queues),
            "--hostname", "local@%h", "--concurrency", str(worker_concurrency()),
            "--prefetch-multiplier", "1", "-O", "fair",
            "--without-mingle", "--without-gossip",  # the only worker: nobody to sync with at start
            "--loglevel", "INFO",
        ])
        self.spawn("control", [
            python, "-m", "celery", "-A", "console", "worker", "-Q", control_queue,
            "--hostname", "control@%h", "--concurrency", "1", "--prefetch-multiplier", "1",
            "--without-mingle", "--without-gossip", "--loglevel", "INFO",
        ])
        self.spawn("beat", [
            python, "-m", "celery", "-A", "console", "beat",
            "--schedule", str(self.var_dir / "celerybeat-schedule"), "--loglevel", "INFO",
        ])
        self.wait_until_serving(web)
        if web.proc.poll() is None and not self.stop_requested.is_set():
            self.print_banner(admin_text, queues)
        return self.supervise()

    def supervise(self) -> int:
        while not self.stop_requested.wait(POLL_INTERVAL):
            for child in self.children:
                code = child.proc.poll()
                if code is not None:
                    self.out.say(f"{child.name} exited unexpectedly with code {code}; stopping the others")
                    self.stop_all()
                    self.out.say(f"stopped because {child.name} exited (code {code})")
                    return 1
        self.out.say("stopping (Ctrl-C again to kill at once)")
        self.stop_all()
        self.out.say("stopped")
        return 0

    def print_banner(self, admin_text: str, queues: list[str]) -> None:
        database = os.environ.get("DATABASE_URL") or f"SQLite {self.var_dir / 'atelier.sqlite3'}"
        lines = [
            f"Atelier is running at http://{self.url_host}:{self.port}/",
            *[line.rstrip() for line in admin_text.strip().splitlines()],
            f"Database: {database.split('@')[-1] if '://' in database else database}",
            f"Redis:    {os.environ['REDIS_URL'].split('@')[-1]}",
            f"Worker queues: {', '.join(queues)}",
            f"Data:     {self.var_dir}",
            "Stop:     Ctrl-C",
        ]
        rule = "=" * max(len(line) for line in lines)
        self.out.write("\n" + "\n".join([rule, *lines, rule]) + "\n\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("ATELIER_HOST", "127.0.0.1"),
                        help="interface to listen on (ATELIER_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (ATELIER_PORT, default 8000)")
    parser.add_argument("--grace", type=float, default=None,
                        help="seconds between SIGTERM and SIGKILL when stopping "
                             "(default: ATELIER_RUNTIME_STOP_GRACE_SECONDS, 30)")
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        raw = os.environ.get("ATELIER_PORT", "").strip() or "8000"
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            parser.error(f"ATELIER_PORT must be a port number (1-65535), not {raw!r}")
        port = int(raw)
    return Launcher(host=args.host, port=port, grace=args.grace, output=Output()).run()


if __name__ == "__main__":
    sys.exit(main())
