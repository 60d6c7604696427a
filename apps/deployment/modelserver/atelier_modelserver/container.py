"""`python -m atelier_modelserver.container`: run a custom image as one service instance.

    python -m atelier_modelserver.container --image IMAGE [--container-port 8080] [--stop-grace 10]
        [--mount LOCAL:PATH]… [--pass-env NAME]… [-- COMMAND…]

Runs `docker run` in the foreground as its child, publishing the container's port (ModelArts'
8080) on the $PORT the run engine allocated (Docker's default bridge network and `-p`), so the
engine's supervision (readiness and health URL, stop with SIGTERM, restart on crash) applies to
the container as to any process. The container runs as uid 1000 / gid 100 (ModelArts' ma-user,
seed-06 §9.5), gets the run's MODEL_* and MA_* variables and the service version's own
(`--pass-env`), sees each `--mount` read-only (the model package at /home/mind/model, the
service's storage mounts), carries the labels `atelier.run` and `atelier.attempt`, and is removed
when it exits.

Contract with the engine:
* the image must be on this worker or pullable; otherwise the instance ends at once with a
  "Model load failed: …" line naming the image and Docker's answer (exit status 3);
* SIGTERM stops the container (`docker stop` with `--stop-grace` seconds before Docker kills it),
  also when the engine's SIGKILL reaches this launcher first: the stop request runs detached;
* containers left behind by earlier launchers of the same run (killed outright) are removed first;
* the exit status is the container's (137 after `docker kill`, so a crash is restarted).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atelier_modelserver.container")
    parser.add_argument("--image", required=True)
    parser.add_argument("--container-port", type=int, default=8080)
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
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
