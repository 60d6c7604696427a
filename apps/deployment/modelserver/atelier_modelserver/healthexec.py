"""`python -m atelier_modelserver.healthexec`: run one service instance under an EXEC health check.

    python -m atelier_modelserver.healthexec --command CMD [--period 10] [--delay 0] [--failures 3]
        [--timeout 5] [--container] -- ARGV…

    python -m atelier_modelserver.healthexec --url /health --https [--period …] -- ARGV…

Starts ARGV (the model server, the custom command, or the container launcher) as a child with
the same environment and working directory, then, after `--delay` seconds, runs CMD with
`sh -c` every `--period` seconds in that same environment (with `--container`: inside the
instance's container through `docker exec`, the delay counting from the moment the container
runs). Exit status 0 means healthy. After `--failures`
failed checks in a row it stops the child and exits with FAILED_EXIT, so the run engine restarts
the instance (and, past its restart budget, the service reports it as failed): the EXEC check of
seed-06 §2.5 acts as a liveness probe. Stdlib only, so it also wraps custom commands that run
outside the console's virtual environment.

With `--url PATH --https` the check is `GET https://127.0.0.1:$PORT PATH` instead (2xx is
healthy, the certificate is not verified: the instance is on this worker's loopback), for images
that declare HTTPS, whose health URL the run engine (plain HTTP) cannot ask. A container that
answers plain HTTP there fails the check with the SSL error and says which protocol it speaks.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

# The exit status of an instance stopped by its health check (EX_SOFTWARE), named in the log.
FAILED_EXIT = 70
# How much of the command's output is quoted in the log line of a failed check.
OUTPUT_CHARS = 300
# Seconds the child gets to exit after SIGTERM before SIGKILL.
STOP_GRACE = 10


def container_name(env=None) -> str:
    """The container name `atelier_modelserver.container` gives the instance's container."""
    env = os.environ if env is None else env
    return f"atelier-run-{env.get('ATELIER_RUN_ID', 'x')}-{env.get('ATELIER_ATTEMPT', '1')}"


def check_argv(command: str, *, container: bool) -> list[str]:
    """How CMD runs: `sh -c CMD` here, or inside the instance's container."""
    if container:
        return [shutil.which("docker") or "docker", "exec", container_name(), "sh", "-c", command]
    return ["sh", "-c", command]


def container_running() -> bool:
    """True once the instance's container runs (the launcher pulls and creates it first)."""
    try:
        done = subprocess.run([shutil.which("docker") or "docker", "container", "inspect", "--format",
                               "{{.State.Running}}", container_name()], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


def check_once(command: str, *, container: bool, timeout: float) -> str | None:
    """Run the check; None when it exited 0, else why it failed (exit code and output tail)."""
    try:
        done = subprocess.run(check_argv(command, container=container), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return f"could not run: {exc}"
    if done.returncode == 0:
        return None
    output = (done.stdout + done.stderr).decode("utf-8", "replace").strip().replace("\n", " | ")
    return f"exit code {done.returncode}" + (f": {output[-OUTPUT_CHARS:]}" if output else "")


def check_https(path: str, *, port: int, timeout: float) -> str | None:
    """GET https://127.0.0.1:port/path; None on 2xx, else why not (the SSL error names a plain-HTTP server)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed certificates are fine on the loopback
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            try:
                conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
            except ssl.SSLError as exc:
                return (f"SSL error ({exc.reason or exc}): the container does not answer HTTPS on its port "
                        "(plain HTTP?); check the protocol its AI application declares")
            with conn:
                conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                             .encode("latin-1"))
                head = conn.recv(64).split(b"\r\n", 1)[0].split()
    except (OSError, ValueError) as exc:
        return f"GET {path} over HTTPS failed: {exc}"
    if len(head) < 2 or not head[1].isdigit():
        return f"GET {path} over HTTPS: no HTTP status line in the answer"
    status = int(head[1])
    return None if 200 <= status < 300 else f"GET {path} over HTTPS answered {status}"


def say(message: str) -> None:
    print(f"[health] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atelier_modelserver.healthexec")
    parser.add_argument("--command", default="")
    parser.add_argument("--url", default="", help="an HTTPS health path instead of a command")
    parser.add_argument("--https", action="store_true")
    parser.add_argument("--period", type=float, default=10)
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--failures", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5)
    parser.add_argument("--container", action="store_true")
    parser.add_argument("child", nargs="+")
    args = parser.parse_args(argv)
    if not args.command and not args.url:
        parser.error("give --command or --url")
    what = args.command or f"HTTPS GET {args.url}"
    port = int(os.environ.get("PORT", "8080"))

    child = subprocess.Popen(args.child)
    stopping = threading.Event()

    def forward(signum, _frame):
        # The engine signals the whole process group; forwarding again is harmless and covers a
        # child that moved to its own group. We wait for the child instead of dying first.
        stopping.set()
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    failures, passed_once = 0, False
    next_check = time.monotonic() + max(0.0, args.delay)
    # With --container the delay counts from the container's start, not the launcher's: a check
    # before the container exists would fail for no fault of the image.
    waiting_for_container = args.container
    while child.poll() is None:
        now = time.monotonic()
        if waiting_for_container and not stopping.is_set():
            if container_running():
                waiting_for_container = False
                next_check = time.monotonic() + max(0.0, args.delay)
            else:
                time.sleep(0.5)
            continue
        if stopping.is_set() or now < next_check:
            time.sleep(min(0.2, max(0.0, next_check - now)) or 0.2)
            continue
        next_check = now + max(1.0, args.period)
        if args.url:
            problem = check_https(args.url, port=port, timeout=args.timeout)
        else:
            problem = check_once(args.command, container=args.container, timeout=args.timeout)
        if problem is None:
            if failures or not passed_once:
                say(f"Health check passed ({what}).")
            failures, passed_once = 0, True
            continue
        failures += 1
        say(f"Health check failed ({failures}/{args.failures}): {what}: {problem}.")
        if failures >= args.failures:
            phase = "after it was healthy" if passed_once else "during startup"
            say(f"Health check failed {failures} times in a row {phase}: {what}: {problem}. "
                "Stopping the instance so that it is restarted.")
            child.terminate()
            try:
                child.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return FAILED_EXIT
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


if __name__ == "__main__":
    sys.exit(main())
