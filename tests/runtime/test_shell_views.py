"""Where the shell is offered: the run:exec grant per role, and the Shell tab of a training job
(only while Running, only for roles that may exec). No worker: rows are set to Running directly."""
from __future__ import annotations

import pytest
from django.urls import reverse

from apps.core.choices import Role
from apps.core.permissions import role_allows
from apps.runtime.choices import RunStatus
from apps.runtime.models import Run
from apps.training.choices import TrainingStatus
from apps.training.models import TrainingJob
from apps.training.services import training_job_create
from tests.training.conftest import bucket, put_tree  # noqa: F401

from .factories import member


@pytest.mark.parametrize("role, allowed", [(Role.ADMIN, True), (Role.DEVELOPER, True), (Role.LABELER, False),
                                           (Role.REVIEWER, False), (Role.VIEWER, False)])
def test_run_exec_is_granted_to_admins_and_developers(role, allowed):
    assert role_allows(role, "run:exec") is allowed


@pytest.fixture
def job(owner, workspace, bucket, local_pool, cpu_flavor, settings):  # noqa: F811
    put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})
    job = training_job_create(user=owner, workspace=workspace, name="tab-job", pool=local_pool, flavor=cpu_flavor,
                              experiment="new", experiment_name="tab-exp", code_dir="storage://train-data/code",
                              boot_file="train.py")
    return job


def _running(job, owner, workspace, local_pool, cpu_flavor) -> Run:
    """The job's node as if a worker had started it (the dispatch never runs: no commit here)."""
    from .conftest import submit

    run = submit(owner, workspace, cpu_flavor, local_pool, ["python", "train.py"])
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.RUNNING, run_group=run.group)
    return run


def test_shell_tab_is_listed_only_while_running_and_for_exec_roles(client, job, owner, workspace, local_pool,
                                                                    cpu_flavor):
    url = reverse("training:detail", args=[job.pk])
    client.force_login(owner)
    assert 'href="?tab=shell"' not in client.get(url).content.decode()  # not Running yet
    assert "data-run-shell" not in client.get(url + "?tab=shell").content.decode()

    run = _running(job, owner, workspace, local_pool, cpu_flavor)
    page = client.get(url).content.decode()
    assert 'href="?tab=shell"' in page and "data-run-shell" not in page
    page = client.get(url + "?tab=shell").content.decode()
    assert 'class="tab active" href="?tab=shell"' in page
    assert f'<option value="{run.pk}">worker-0</option>' in page
    assert "vendor/xterm/lib/xterm.mjs" in page and "runtime/shell/shell.js" in page

    viewer = member(owner, workspace, "vera", Role.VIEWER)
    client.force_login(viewer)
    assert 'href="?tab=shell"' not in client.get(url).content.decode()
    assert "data-run-shell" not in client.get(url + "?tab=shell").content.decode()
