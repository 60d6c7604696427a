"""`python -m atelier_modelserver.container`: run a custom image as one service instance.

    python -m atelier_modelserver.container --image IMAGE [--container-port 8080] [-- COMMAND…]

Replaces itself with `docker run` in the foreground, publishing the container's port on the
$PORT the run engine allocated, so the engine's supervision (health URL, stop with SIGTERM then
SIGKILL, restart on crash) applies to the container as to any process: docker forwards the
signals. Storage mounts (`--mount LOCAL:PATH`) are bound read-only. The container runs as uid 1000 / gid 100 (ModelArts' ma-user, seed-06 §9.5), gets the
run's MODEL_* variables and the service version's own (`--pass-env`), and is removed when it exits.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

# Variables of the run that are passed into the container (the engine's own stay outside).
PASS_PREFIXES = ("MODEL_", "MA_")


def docker_argv(*, docker: str, image: str, container_port: int, host_port: int, name: str,
                env: dict[str, str], command: list[str], mounts: list[tuple[str, str]] = ()) -> list[str]:
    argv = [docker, "run", "--rm", "--init", "--name", name, "--user", "1000:100",
            "-p", f"{host_port}:{container_port}"]
    for source, target in mounts:  # the service's storage mounts, staged in the run directory
        argv += ["-v", f"{os.path.abspath(source)}:{target}:ro"]
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    return [*argv, image, *command]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atelier_modelserver.container")
    parser.add_argument("--image", required=True)
    parser.add_argument("--container-port", type=int, default=8080)
    parser.add_argument("--pass-env", action="append", default=[], help="a variable of the run to pass in")
    parser.add_argument("--mount", action="append", default=[], help="LOCAL:CONTAINER_PATH, bound read-only")
    parser.add_argument("command", nargs="*")
    args = parser.parse_args(argv)
    docker = shutil.which("docker")
    if docker is None:
        print("Model load failed: docker is not installed on this worker; custom images need Docker.", flush=True)
        return 3
    port = int(os.environ.get("PORT", "8080"))
    env = {k: v for k, v in os.environ.items() if k.startswith(PASS_PREFIXES) or k in args.pass_env}
    name = f"atelier-run-{os.environ.get('ATELIER_RUN_ID', 'x')}-{os.environ.get('ATELIER_ATTEMPT', '1')}"
    os.execv(docker, docker_argv(docker=docker, image=args.image, container_port=args.container_port,
                                 host_port=port, name=name, env=env, command=args.command,
                                 mounts=[tuple(m.split(":", 1)) for m in args.mount]))
    return 0  # not reached: execv replaced the process


if __name__ == "__main__":
    sys.exit(main())
