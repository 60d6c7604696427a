"""`python -m atelier_modelserver.container`: run a custom image as one service instance.

    python -m atelier_modelserver.container --image IMAGE [--container-port 8080] [--protocol http]
        [--stop-grace 10] [--metric-seconds 60] [--mount LOCAL:PATH]… [--pass-env NAME]… [-- COMMAND…]

Runs `docker run` in the foreground as its child, publishing the container's port (ModelArts'
8080) on the $PORT the run engine allocated (Docker's default bridge network and `-p`), so the
engine's supervision (readiness and health URL, stop with SIGTERM, restart on crash) applies to
the container as to any process. The container runs as uid 1000 / gid 100 (ModelArts' ma-user,
seed-06 §9.5), gets the run's MODEL_* and MA_* variables and the service version's own
(`--pass-env`), sees each `--mount` read-only (the model package at /home/mind/model, the
service's storage mounts), carries the labels `atelier.run`, `atelier.attempt` and `atelier.workdir`
(the run directory on the worker), and is removed when it exits.

Contract with the engine:
* the image must be on this worker or pullable; otherwise the instance ends at once with a
  "Model load failed: …" line naming the image and Docker's answer (exit status 3);
* SIGTERM stops the container (`docker stop` with `--stop-grace` seconds before Docker kills it),
  also when the engine's SIGKILL reaches this launcher first: the stop request runs detached;
* containers left behind by earlier launchers of the same run (killed outright) are removed first
  (and, by the worker as it starts again, those of its own attempts that are over);
* the exit status is the container's (137 after `docker kill`, so a crash is restarted);
* every `--metric-seconds` it prints the container's own CPU use (cores) and memory (MB) as
  `container_cpu_cores` / `container_memory_mb` metric lines, read from the container's cgroup
  (`docker stats` where the cgroup files are not readable): the engine's samples cover this
  launcher's process tree, the `docker` client, not the container;
* once the port answers it checks, with one TLS handshake, that the container speaks the
  `--protocol` its application declares, and says so in the log when it does not.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

# Variables of the run that are passed into the container (the engine's own stay outside).
PASS_PREFIXES = ("MODEL_", "MA_")
# Exit status when the container cannot start at all (missing image, no Docker).
NOT_STARTED_EXIT = 3
# Seconds a Docker client command (inspect, rm) may take before the launcher gives up on it.
CLIENT_TIMEOUT = 60
# Seconds a pull of a missing image may take.
PULL_TIMEOUT = 1800


def container_name(env=None) -> str:
    """One container per run attempt (healthexec's `docker exec` finds it by this name)."""
    env = os.environ if env is None else env
    return f"atelier-run-{env.get('ATELIER_RUN_ID', 'x')}-{env.get('ATELIER_ATTEMPT', '1')}"


def docker_argv(*, docker: str, image: str, container_port: int, host_port: int, name: str,
                env: dict[str, str], command: list[str], mounts: list[tuple[str, str]] = (),
                labels: dict[str, str] | None = None, stop_grace: int | None = None) -> list[str]:
    argv = [docker, "run", "--rm", "--init", "--name", name, "--user", "1000:100",
            "-p", f"{host_port}:{container_port}"]
    for key, value in sorted((labels or {}).items()):
        argv += ["--label", f"{key}={value}"]
    if stop_grace is not None:
        argv += ["--stop-timeout", str(stop_grace)]
    for source, target in mounts:  # the model package and the service's storage mounts, staged in the run directory
        argv += ["-v", f"{os.path.abspath(source)}:{target}:ro"]
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    return [*argv, image, *command]


def say(message: str) -> None:
    print(message, flush=True)


def image_ensure(docker: str, image: str) -> str | None:
    """None when `image` is on this worker (pulled now if it was not); else why it cannot run."""
    try:
        if subprocess.run([docker, "image", "inspect", image], capture_output=True,
                          timeout=CLIENT_TIMEOUT).returncode == 0:
            return None
        say(f"Image {image} is not on this worker; pulling it.")
        pulled = subprocess.run([docker, "pull", "--quiet", image], capture_output=True, text=True,
                                timeout=PULL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return f"image {image} is not on this worker and docker did not answer within {exc.timeout:g} s"
    if pulled.returncode != 0:
        answer = " ".join((pulled.stderr or pulled.stdout).split())[-500:]
        return f"image {image} is not on this worker and pulling it failed: {answer or 'no answer from docker'}"
    return None


def leftovers_remove(docker: str, run_id: str, name: str) -> None:
    """A launcher killed outright (SIGKILL, a lost worker) leaves its container running: remove
    the containers of earlier attempts of this run (one attempt runs at a time) and any holder
    of this attempt's name."""
    try:
        found = subprocess.run([docker, "ps", "--all", "--quiet", "--filter", f"label=atelier.run={run_id}"],
                               capture_output=True, text=True, timeout=CLIENT_TIMEOUT).stdout.split() if run_id else []
        subprocess.run([docker, "rm", "--force", name, *found], capture_output=True, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass  # `docker run` then reports a name in use, which the log shows


def stop_detached(docker: str, name: str, grace: int) -> None:
    """Ask Docker to stop the container from a process outside this one's group and tree, so
    the request completes even when the engine kills this launcher with SIGKILL meanwhile."""
    try:
        subprocess.Popen(["sh", "-c", f'"$0" stop --time {int(grace)} "$1" >/dev/null 2>&1 &', docker, name],
                         start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).wait(timeout=CLIENT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _cgroup_files(pid: int) -> tuple[str, str, str] | None:
    """(cgroup version, CPU file, memory dir) of a process's cgroup, as this machine mounts them."""
    try:
        lines = open(f"/proc/{pid}/cgroup").read().splitlines()
    except OSError:
        return None
    groups = {}
    for line in lines:
        _hierarchy, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    root = "/sys/fs/cgroup"
    if os.path.exists(f"{root}/cgroup.controllers") and "" in groups:  # cgroup v2, one hierarchy
        base = f"{root}{groups['']}"
        found = ("2", f"{base}/cpu.stat", base)
    elif "cpuacct" in groups and "memory" in groups:
        cpu_dir = next((f"{root}/{d}{groups['cpuacct']}" for d in ("cpuacct", "cpu,cpuacct")
                        if os.path.isdir(f"{root}/{d}{groups['cpuacct']}")), "")
        found = ("1", f"{cpu_dir}/cpuacct.usage", f"{root}/memory{groups['memory']}")
    else:
        return None
    return found if os.path.isfile(found[1]) and os.path.isdir(found[2]) else None


def _cgroup_read(files: tuple[str, str, str]) -> tuple[float, float]:
    """(CPU seconds used so far, memory bytes in use without the reclaimable page cache)."""
    version, cpu_file, memory_dir = files
    stat = dict(line.split() for line in open(f"{memory_dir}/memory.stat").read().splitlines() if " " in line)
    if version == "2":
        cpu = dict(line.split() for line in open(cpu_file).read().splitlines())
        seconds = int(cpu["usage_usec"]) / 1e6
        used = int(open(f"{memory_dir}/memory.current").read()) - int(stat.get("inactive_file", 0))
    else:
        seconds = int(open(cpu_file).read()) / 1e9
        used = int(open(f"{memory_dir}/memory.usage_in_bytes").read()) - int(stat.get("total_inactive_file", 0))
    return seconds, max(0, used)


UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


def _docker_stats(docker: str, name: str) -> tuple[float, float] | None:
    """(cores, memory bytes) from `docker stats` (about 2 s: it waits for two readings itself)."""
    try:
        done = subprocess.run([docker, "stats", "--no-stream", "--format", "{{.CPUPerc}}|{{.MemUsage}}", name],
                              capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        cpu, memory = done.stdout.strip().split("|")
        amount = memory.split("/")[0].strip()
        number = amount.rstrip("BbKkMmGgTtIi")
        return float(cpu.rstrip("%")) / 100, float(number) * UNITS[amount[len(number):].lower()]
    except (subprocess.TimeoutExpired, OSError, ValueError, KeyError):
        return None


def metric(name: str, value: float) -> None:
    # One write per line: the engine reads metric lines at the start of a line of this output.
    sys.stdout.write("ATELIER_METRIC " + json.dumps({"name": name, "value": round(value, 3)}) + "\n")
    sys.stdout.flush()


def sample_container(docker: str, name: str, every: float, done: threading.Event) -> None:
    """Print the container's CPU (cores) and memory (MB) every `every` seconds until `done`."""
    files, previous = None, None
    while not done.wait(every if previous is not None else min(every, 1.0)):
        if files is None:
            try:
                found = subprocess.run([docker, "container", "inspect", "--format", "{{.State.Pid}}", name],
                                       capture_output=True, text=True, timeout=CLIENT_TIMEOUT).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                continue
            if not found.isdigit() or found == "0":
                continue  # not running yet (pulling, creating)
            files = _cgroup_files(int(found)) or ("stats", "", "")
        if files[0] == "stats":
            got = _docker_stats(docker, name)
            if got is not None:
                metric("container_cpu_cores", got[0])
                metric("container_memory_mb", got[1] / 1024 ** 2)
                previous = got
            continue
        try:
            seconds, memory = _cgroup_read(files)
        except (OSError, ValueError, KeyError):
            files = None  # the container was replaced or is gone; look it up again
            continue
        now = time.monotonic()
        if previous is not None and now > previous[0]:
            metric("container_cpu_cores", max(0.0, seconds - previous[1]) / (now - previous[0]))
            metric("container_memory_mb", memory / 1024 ** 2)
        previous = (now, seconds)


def protocol_spoken(port: int, timeout: float = 3.0) -> str | None:
    """"https" when a TLS handshake with 127.0.0.1:port succeeds, "http" when the server answered
    it with something else (a plain HTTP server answers 400), None when that cannot be told."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                return "https"
    except ssl.SSLEOFError:
        return None
    except ssl.SSLError:
        return "http"
    except OSError:
        return None


def check_protocol(port: int, declared: str, child: subprocess.Popen, limit: float = 600) -> None:
    """Once the port answers, say in the log when the container speaks the other protocol."""
    deadline = time.monotonic() + limit
    while child.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.5)
            continue
        spoken = protocol_spoken(port)
        if spoken and spoken != declared:
            say(f"Protocol mismatch: the AI application declares {declared.upper()} but the container answers "
                f"{spoken.upper()} on its port; calls fail with ModelArts.4503 until the application's protocol "
                "matches the image.")
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atelier_modelserver.container")
    parser.add_argument("--image", required=True)
    parser.add_argument("--container-port", type=int, default=8080)
    parser.add_argument("--protocol", choices=("http", "https"), default="http")
    parser.add_argument("--metric-seconds", type=float, default=60)
    parser.add_argument("--stop-grace", type=int, default=10,
                        help="seconds between SIGTERM and SIGKILL when the container is stopped")
    parser.add_argument("--pass-env", action="append", default=[], help="a variable of the run to pass in")
    parser.add_argument("--mount", action="append", default=[], help="LOCAL:CONTAINER_PATH, bound read-only")
    parser.add_argument("command", nargs="*")
    args = parser.parse_args(argv)
    docker = shutil.which("docker")
    if docker is None:
        say("Model load failed: docker is not installed on this worker; custom images need Docker.")
        return NOT_STARTED_EXIT
    problem = image_ensure(docker, args.image)
    if problem:
        say(f"Model load failed: {problem}.")
        return NOT_STARTED_EXIT
    port = int(os.environ.get("PORT", "8080"))
    env = {k: v for k, v in os.environ.items() if k.startswith(PASS_PREFIXES) or k in args.pass_env}
    name = container_name()
    run_id = os.environ.get("ATELIER_RUN_ID", "")
    leftovers_remove(docker, run_id, name)
    labels = {"atelier.run": run_id, "atelier.attempt": os.environ.get("ATELIER_ATTEMPT", "")}
    if os.environ.get("ATELIER_WORK_DIR"):  # a restarted worker finds its own leftovers by this label
        labels["atelier.workdir"] = os.environ["ATELIER_WORK_DIR"]
    child = subprocess.Popen(docker_argv(docker=docker, image=args.image, container_port=args.container_port,
                                         host_port=port, name=name, env=env, command=args.command,
                                         mounts=[tuple(m.split(":", 1)) for m in args.mount], labels=labels,
                                         stop_grace=args.stop_grace))
    stopping = []

    def stop(signum, _frame):
        # The docker client got the signal too (same process group) and forwards it; the detached
        # `docker stop` makes sure the container goes even if this process dies before it does.
        if not stopping:
            stopping.append(signum)
            stop_detached(docker, name, args.stop_grace)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sampled = threading.Event()
    threading.Thread(target=sample_container, args=(docker, name, max(1.0, args.metric_seconds), sampled),
                     daemon=True).start()
    threading.Thread(target=check_protocol, args=(port, args.protocol, child), daemon=True).start()
    code = child.wait()
    sampled.set()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
