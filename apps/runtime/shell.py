"""Browser shells into a running run: the worker-side host and the Redis relay both sides share.

The console and the worker may be on different machines and share only Redis, so every
message goes through Redis lists (ordered, and nothing is lost before the reader starts):

* ``<ns>:shell:run:<pk>:host`` — set (with a TTL, refreshed) while the run's supervisor offers
  shells; its value is the attempt. The console refuses to open a shell when it is missing.
* ``<ns>:shell:run:<pk>:in`` — commands from the console, JSON: ``{"sid", "op": "open", "cols",
  "rows", "user"}``, ``{"sid", "op": "input", "data"}``, ``{"sid", "op": "resize", "cols", "rows"}``,
  ``{"sid", "op": "close", "reason"}``.
* ``<ns>:shell:session:<sid>:out`` — frames to the console: ``b"o" + <terminal bytes>`` or
  ``b"e" + <JSON event>`` (``{"event": "ready", …}``, ``{"event": "exit", "reason", "message"}``,
  ``{"event": "error", "message"}``).
* ``<ns>:shell:session:<sid>:alive`` — refreshed by the console; when it lapses (the console
  process died without saying goodbye) the worker ends the session.

A session is a PTY running the user's shell in the run's working directory, with the run's
environment (read from the run's own process, so it is exactly what the job sees — never the
worker's or the console's secrets) and the run's user. Sessions end when the run ends, when
the console closes them, and after ATELIER_RUNTIME_SHELL_IDLE_SECONDS without a keystroke.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import pwd
import select
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# The host key lives this long without a refresh: a killed worker stops offering shells within it.
HOST_TTL_SECONDS = 15
HOST_REFRESH_SECONDS = 5
# The console refreshes a session's alive key this often; the worker gives up after ALIVE_TTL.
ALIVE_REFRESH_SECONDS = 10
ALIVE_TTL_SECONDS = 35
# Frames wait this long in Redis for a reader before the list expires (a vanished console).
OUT_TTL_SECONDS = 120
# Shells one run offers at once: enough for a team debugging one node, bounded for the worker.
MAX_SESSIONS_PER_RUN = 8
# One read from a PTY; output is relayed as it comes, at most this much per frame.
READ_CHUNK = 1 << 16
# Backpressure: past this many unread frames (up to 64 KiB each) the worker stops reading the PTY,
# so a flood (`yes`, a huge `cat`) blocks the shell like a slow terminal instead of filling Redis;
# it reads again once the console is down to RESUME_FRAMES.
PAUSE_FRAMES = 256
RESUME_FRAMES = 32
# Input bigger than this per message is refused by the console (a paste of 64 KiB is plenty).
MAX_INPUT_BYTES = 1 << 16
SETSID = shutil.which("setsid")
SETPRIV = shutil.which("setpriv")


def namespace() -> str:
    """Key prefix shared by the console and its workers (the cache prefix: one per deployment)."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX') or 'atelier'}:shell"


def host_key(run_id: int) -> str:
    return f"{namespace()}:run:{run_id}:host"


def in_key(run_id: int) -> str:
    return f"{namespace()}:run:{run_id}:in"


def out_key(sid: str) -> str:
    return f"{namespace()}:session:{sid}:out"


def alive_key(sid: str) -> str:
    return f"{namespace()}:session:{sid}:alive"


def shell_panel(runs, *, node_label: str = "Node", noun: str = "node", label=None,
                empty: str = "A shell opens while the job is Running.") -> dict:
    """Context of templates/runtime/_shell.html: `runs` as pickable nodes (Running ones enabled).

    `node_label` heads the picker, `noun` names one choice in the hint ("node", "instance"),
    `label(run)` names a choice (default: its task name, worker-0 …); `empty` is shown when none runs.
    """
    idle = settings.ATELIER_RUNTIME_SHELL_IDLE_SECONDS
    nodes = [{"id": run.pk, "label": label(run) if label else run.task_name, "running": run.status == "running"}
             for run in runs]
    return {"nodes": nodes, "running": any(node["running"] for node in nodes), "node_label": node_label, "noun": noun,
            "empty": empty, "idle": f"{idle // 60} minutes" if idle >= 120 else f"{idle} seconds"}


def redis_client(**kwargs) -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, **kwargs)


def event_frame(event: str, **fields) -> bytes:
    return b"e" + json.dumps({"event": event, **fields}).encode()


def shell_environment(pid: int | None, run_id: int, fallback: dict[str, str]) -> dict[str, str]:
    """The environment of the run's process `pid` (what the job itself sees), else `fallback`.

    The run's main process is the job (the training launcher execs the user's program), so its
    initial environment holds MA_JOB_DIR and the like. It descends from the scrubbed launch
    environment, so no console secret can be in it. A reused pid (another run id) is ignored.
    """
    env: dict[str, str] | None = None
    if pid:
        try:
            env = psutil.Process(pid).environ()
        except (psutil.Error, OSError):
            env = None
    if not env or env.get("ATELIER_RUN_ID") != str(run_id):
        env = dict(fallback)
    env["TERM"] = "xterm-256color"
    env["COLORTERM"] = "truecolor"
    return env


def shell_cwd(pid: int | None, run_dir: Path, fallback: Path) -> Path:
    """The run process's current directory when it lies inside the run directory, else `fallback`."""
    if pid:
        try:
            cwd = Path(psutil.Process(pid).cwd())
            if cwd == run_dir or run_dir in cwd.parents:
                return cwd
        except (psutil.Error, OSError):
            pass
    return fallback


def shell_program(env: dict[str, str], run_as: tuple[int, int, str] | None) -> str:
    """The user's login shell when the run has its own user, else $SHELL; bash or sh as a fallback."""
    candidates = []
    if run_as is not None:
        try:
            candidates.append(pwd.getpwuid(run_as[0]).pw_shell)
        except KeyError:
            pass
    candidates += [env.get("SHELL", ""), "/bin/bash", "/bin/sh"]
    for candidate in candidates:
        if candidate and os.path.isabs(candidate) and os.access(candidate, os.X_OK) \
                and not candidate.endswith(("nologin", "false")):
            return candidate
    return "/bin/sh"


def _set_size(fd: int, cols: int, rows: int) -> None:
    cols = max(2, min(int(cols or 80), 1000))
    rows = max(2, min(int(rows or 24), 500))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _own_terminal() -> None:  # pragma: no cover - only where util-linux setsid is missing
    """In the child before exec: a new session whose controlling terminal is the PTY on stdin."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass
class ShellSession:
    """One PTY and the shell on it."""

    sid: str
    proc: subprocess.Popen
    master: int
    user: str
    last_input: float = field(default_factory=time.monotonic)
    next_alive_check: float = field(default_factory=lambda: time.monotonic() + ALIVE_REFRESH_SECONDS)
    closed: bool = False
    paused: bool = False  # output backlog in Redis too long: not reading the PTY for now


class ShellHost:
    """Offers shells into one running run; owned by its supervisor (`executor.RunExecution`).

    Two threads: `commands` waits on the run's input list (open, input, resize, close) and
    spawns shells — it lives as long as the host, because the shells' parent-death signal
    follows the thread that started them; `output` relays PTY output to each session's list.
    """

    def __init__(self, *, run, run_dir: Path, cwd: Path, env: dict[str, str],
                 run_as: tuple[int, int, str] | None, pid: int | None):
        self.run_id, self.attempt = run.pk, run.attempt
        self.run_dir, self.cwd, self.env, self.run_as, self.pid = run_dir, cwd, env, run_as, pid
        self.sessions: dict[str, ShellSession] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.closing = False  # set (under the lock) once stop() began
        self.redis = redis_client(socket_timeout=10, health_check_interval=30)
        self.wake_r, self.wake_w = os.pipe()  # wakes the output thread when a session starts
        self.threads = [threading.Thread(target=self._commands, name=f"shell-cmd-run-{run.pk}", daemon=True),
                        threading.Thread(target=self._output, name=f"shell-out-run-{run.pk}", daemon=True)]

    def start(self) -> "ShellHost":
        self.redis.delete(in_key(self.run_id))  # commands for an earlier attempt are void
        self.redis.set(host_key(self.run_id), str(self.attempt), ex=HOST_TTL_SECONDS)
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, message: str = "The run ended.") -> None:
        """Stop offering shells and end every open one (the run is over)."""
        with self.lock:
            if self.closing:
                return
            self.closing = True  # no session starts from here on
            sessions = list(self.sessions.values())
        try:
            self.redis.delete(host_key(self.run_id))
        except redis.RedisError:
            pass  # the key expires on its own
        # The shells end before the command thread does: its exit would SIGKILL them (their
        # parent-death signal follows that thread) and they would look like a plain exit.
        for session in sessions:
            self._close(session, reason="run-ended", message=message)
        self.stopped.set()
        try:
            # Wakes the command thread out of its blocking pop at once (a run's end is not delayed).
            self.redis.rpush(in_key(self.run_id), json.dumps({"op": "wake"}))
        except redis.RedisError:
            pass  # the pop times out within a second
        os.write(self.wake_w, b"x")
        for thread in self.threads:
            thread.join(timeout=5)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)
        try:
            self.redis.delete(in_key(self.run_id))
        except redis.RedisError:
            pass
        self.redis.close()

    # -- commands ------------------------------------------------------------------------------

    def _commands(self) -> None:
        next_refresh = time.monotonic() + HOST_REFRESH_SECONDS
        while not self.stopped.is_set():
            try:
                item = self.redis.blpop([in_key(self.run_id)], timeout=1)
                if item is not None:
                    self._command(json.loads(item[1]))
                now = time.monotonic()
                if now >= next_refresh:
                    self.redis.set(host_key(self.run_id), str(self.attempt), ex=HOST_TTL_SECONDS)
                    next_refresh = now + HOST_REFRESH_SECONDS
                self._housekeeping(now)
            except redis.RedisError:
                logger.warning("shell relay of run %s: Redis failed; retrying", self.run_id, exc_info=True)
                self.stopped.wait(1)
            except Exception:
                logger.exception("shell relay of run %s: a command failed", self.run_id)

    def _command(self, message: dict) -> None:
        sid, op = str(message.get("sid", "")), message.get("op")
        if op == "open":
            self._open(sid, message)
            return
        with self.lock:
            session = self.sessions.get(sid)
        if session is None or session.closed:
            return
        if op == "input":
            data = str(message.get("data", "")).encode("utf-8", "replace")
            session.last_input = time.monotonic()
            try:
                os.write(session.master, data)
            except OSError:
                pass  # the shell is gone; the output thread reports the exit
        elif op == "resize":
            try:
                _set_size(session.master, message.get("cols"), message.get("rows"))
            except (OSError, ValueError, TypeError):
                pass
        elif op == "close":
            self._close(session, reason=str(message.get("reason") or "closed"), message="", notify=False)

    def _open(self, sid: str, message: dict) -> None:
        out = out_key(sid)
        with self.lock:
            count = sum(1 for s in self.sessions.values() if not s.closed)
        if not sid or count >= MAX_SESSIONS_PER_RUN:
            self._push(out, event_frame("error", message=f"This node already has {MAX_SESSIONS_PER_RUN} open shells; "
                                                         "close one first."))
            return
        env = shell_environment(self.pid, self.run_id, self.env)
        if self.run_as is not None:
            env["HOME"] = self.run_as[2]
        cwd = shell_cwd(self.pid, self.run_dir, self.cwd)
        program = shell_program(env, self.run_as)
        env["SHELL"] = program
        master, slave = os.openpty()
        try:
            _set_size(slave, message.get("cols"), message.get("rows"))
            argv, kwargs = self._argv(program)
            proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                    close_fds=True, **kwargs)
        except (OSError, ValueError) as exc:
            os.close(master)
            self._push(out, event_frame("error", message=f"The shell could not start: {exc}."))
            return
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        session = ShellSession(sid=sid, proc=proc, master=master, user=str(message.get("user", "")))
        with self.lock:
            late = self.closing  # stop() ran meanwhile: this shell must not outlive the run
            if not late:
                self.sessions[sid] = session
        if late:
            _kill_session(proc)
            os.close(master)
            self._push(out, event_frame("exit", reason="run-ended", message="The run ended.", code=None))
            return
        os.write(self.wake_w, b"s")
        user = pwd.getpwuid(self.run_as[0] if self.run_as else os.geteuid()).pw_name
        self._push(out, event_frame("ready", pid=proc.pid, cwd=str(cwd), user=user, shell=program,
                                    idle_seconds=settings.ATELIER_RUNTIME_SHELL_IDLE_SECONDS))
        logger.info("shell %s opened in run %s for %s (pid %s)", sid, self.run_id, session.user, proc.pid)

    def _argv(self, program: str) -> tuple[list[str], dict]:
        """The shell in a new session with the PTY as controlling terminal (so ^C reaches its jobs),
        killed with this thread, as the run's user when it has one."""
        if SETSID and SETPRIV:
            prefix = [SETSID, "--ctty", SETPRIV, "--pdeathsig", "KILL"]
            if self.run_as is not None:
                prefix += ["--reuid", str(self.run_as[0]), "--regid", str(self.run_as[1]), "--clear-groups"]
            return [*prefix, "--", program], {}
        kwargs: dict = {"preexec_fn": _own_terminal}
        if self.run_as is not None:
            kwargs.update(user=self.run_as[0], group=self.run_as[1], extra_groups=[])
        return [program], kwargs

    def _housekeeping(self, now: float) -> None:
        """Idle sessions and sessions whose console went away are closed."""
        idle_limit = settings.ATELIER_RUNTIME_SHELL_IDLE_SECONDS
        with self.lock:
            sessions = [s for s in self.sessions.values() if not s.closed]
        for session in sessions:
            if idle_limit and now - session.last_input >= idle_limit:
                minutes = idle_limit / 60
                span = f"{minutes:g} minute{'s' if minutes != 1 else ''}" if idle_limit >= 60 else f"{idle_limit} s"
                self._close(session, reason="idle", message=f"Disconnected after {span} without input.")
            elif now >= session.next_alive_check:
                session.next_alive_check = now + ALIVE_REFRESH_SECONDS
                if not self.redis.exists(alive_key(session.sid)):
                    self._close(session, reason="console-gone", message="", notify=False)

    # -- output --------------------------------------------------------------------------------

    def _output(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                live = [s for s in self.sessions.values() if not s.closed]
            for session in live:
                if session.paused:
                    try:
                        session.paused = self.redis.llen(out_key(session.sid)) > RESUME_FRAMES
                    except redis.RedisError:
                        pass
            by_fd = {s.master: s for s in live if not s.paused}
            paused = len(by_fd) < len(live)
            try:
                ready, _, _ = select.select([self.wake_r, *by_fd], [], [], 0.1 if paused else 1.0)
            except (OSError, ValueError):
                continue  # a session closed its fd between the snapshot and the select
            for fd in ready:
                if fd == self.wake_r:
                    os.read(self.wake_r, 1024)
                    continue
                session = by_fd[fd]
                try:
                    chunk = os.read(fd, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: every process holding the PTY's other end has exited
                    chunk = b""
                if chunk:
                    session.paused = self._push(out_key(session.sid), b"o" + chunk) > PAUSE_FRAMES
                else:
                    self._exited(session)

    def _exited(self, session: ShellSession) -> None:
        try:
            code = session.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        self._close(session, reason="exit", message=f"The shell exited (code {code}).", code=code)

    # -- the end of a session ------------------------------------------------------------------

    def _close(self, session: ShellSession, *, reason: str, message: str, notify: bool = True,
               code: int | None = None) -> None:
        with self.lock:
            if session.closed:
                return
            session.closed = True
            self.sessions.pop(session.sid, None)
        _kill_session(session.proc)
        try:
            os.close(session.master)
        except OSError:
            pass
        if notify:
            self._push(out_key(session.sid), event_frame("exit", reason=reason, message=message, code=code))
        try:
            self.redis.delete(alive_key(session.sid))
        except redis.RedisError:
            pass
        logger.info("shell %s of run %s closed (%s)", session.sid, self.run_id, reason)

    def _push(self, key: str, frame: bytes) -> int:
        """Append a frame for the console; returns the frames now waiting there (0 on failure)."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(key, frame)
            pipe.expire(key, OUT_TTL_SECONDS)
            return pipe.execute()[0]
        except redis.RedisError:
            logger.warning("shell relay of run %s: could not send to %s", self.run_id, key, exc_info=True)
            return 0


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGHUP the shell's session (what closing a terminal does), SIGKILL whatever stays."""
    if proc.poll() is not None:
        return
    try:
        members = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
    except psutil.Error:
        members = [proc.pid]
    for pid in members:
        try:
            os.kill(pid, signal.SIGHUP)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        pass
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        logger.warning("shell pid %s did not exit after SIGKILL", proc.pid)
