"""The `docker_daemon` fixture: tests that run containers use the Docker daemon of this machine.

When no daemon answers, the test is skipped with the reason, so `make test` works on a machine
without Docker; with `ATELIER_TEST_DOCKER=required` (set by `.ci/run`, which installs and starts
Docker) it fails instead, so CI never passes by skipping the container tests.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

# Seconds `docker info` may take to answer.
INFO_TIMEOUT = 20


def docker_problem() -> str | None:
    """None when a Docker client is installed and its daemon answers; else what is wrong."""
    docker = shutil.which("docker")
    if docker is None:
        return "the docker client is not installed"
    try:
        done = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=INFO_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"the Docker daemon did not answer `docker info` within {INFO_TIMEOUT} s"
    if done.returncode != 0 or not done.stdout.strip():
        return f"the Docker daemon does not answer: {' '.join(done.stderr.split())[-300:]}"
    return None


@pytest.fixture(scope="session")
def docker_daemon() -> str:
    """The path of the docker client, once its daemon answers (skip or fail otherwise, see above)."""
    problem = docker_problem()
    if problem is None:
        return shutil.which("docker")
    if os.environ.get("ATELIER_TEST_DOCKER", "") == "required":
        pytest.fail(f"Docker is required (ATELIER_TEST_DOCKER=required) but {problem}. Install docker.io and start "
                    "dockerd (see .ci/run).", pytrace=False)
    pytest.skip(f"needs Docker: {problem} (set ATELIER_TEST_DOCKER=required to make this a failure)")
