"""A worker killed outright leaves its runs' containers running; started again, it removes them.

Needs a Docker daemon: skipped without one, failed with ATELIER_TEST_DOCKER=required (CI).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

from apps.deployment.serving import MODELSERVER_DIR
from apps.runtime.choices import RunStatus
from apps.runtime.models import Run
from tests.deployment.dockerimage import test_image

from .conftest import submit, wait_for

# docker_daemon first: without Docker the test skips (or fails) before a worker is started.
pytestmark = [pytest.mark.usefixtures("docker_daemon"), pytest.mark.docker, pytest.mark.worker,
              pytest.mark.django_db(transaction=True)]


def test_a_restarted_worker_removes_the_containers_its_killed_predecessor_left(
        docker_daemon, engine_worker, owner, workspace, cpu_flavor, local_pool):
    def docker(*args):
        return subprocess.run([docker_daemon, *args], capture_output=True, text=True, timeout=60)

    def containers(label):
        return docker("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()

    image = test_image(docker_daemon)
    name = f"orphans-{os.getpid()}"
    # A container of another console sharing the daemon (its own work root): not ours to judge.
    foreign = docker("run", "--detach", "--rm", "--label", "atelier.run=999999", "--label", "atelier.attempt=1",
                     "--label", f"atelier.workdir=/elsewhere-{os.getpid()}/runs/run-999999", image, "python3", "-c",
                     "import time; time.sleep(600)").stdout.strip()
    run = None
    try:
        doomed = engine_worker(name=name, queues=("pool.local",))
        run = submit(owner, workspace, cpu_flavor, local_pool,
                     [sys.executable, "-m", "atelier_modelserver.container", "--image", image, "--stop-grace", "1"],
                     env={"PYTHONPATH": str(MODELSERVER_DIR)}, long_lived=True, job_type="inference")
        wait_for(lambda: Run.objects.filter(pk=run.pk, ready_at__isnull=False).exists(), timeout=60,
                 message="the container instance to be ready")
        (container,) = containers(f"atelier.run={run.pk}")
        assert docker("inspect", "--format", '{{index .Config.Labels "atelier.workdir"}}', container).stdout.strip() \
            == str(settings.ATELIER_RUNTIME_WORK_ROOT / f"run-{run.pk}")

        doomed.kill()  # the worker and its supervisor die at once: nobody stops the container
        assert docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip() == "true"

        engine_worker(name=name, queues=("pool.local",))  # the same node starts again
        wait_for(lambda: not containers(f"atelier.run={run.pk}"), timeout=30,
                 message="the orphan container to be removed")
        assert Run.objects.get(pk=run.pk).status == RunStatus.LOST
        assert foreign in [c for c in docker("ps", "--quiet", "--no-trunc").stdout.split()]
    finally:
        docker("rm", "--force", foreign)
        if run is not None:
            leftovers = containers(f"atelier.run={run.pk}")
            if leftovers:
                docker("rm", "--force", *leftovers)
