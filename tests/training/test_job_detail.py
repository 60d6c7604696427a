"""The job page lists every parameter of the job (seed-05 §17 item 28), its description is editable,
and the REST API allows each action only in the statuses of item 24."""
from __future__ import annotations

import pytest

from apps.training.choices import TrainingStatus
from apps.training.models import TrainingJob
from apps.training.services import training_job_create

from .conftest import put_tree

pytestmark = pytest.mark.django_db

S = TrainingStatus
JOBS = "/api/v1/training/jobs/"


@pytest.fixture
def job(owner, workspace, bucket, local_pool, cpu_flavor, django_capture_on_commit_callbacks):
    put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})
    put_tree("storage://train-data/in", {"a.txt": "x"})
    with django_capture_on_commit_callbacks(execute=True):
        return training_job_create(
            user=owner, workspace=workspace, name="job-params", pool=local_pool, flavor=cpu_flavor,
            experiment="none", code_dir="storage://train-data/code", boot_file="train.py",
            local_code_dir="my-code", working_dir="my-code/src", env={"MY_FLAG": "1"},
            inputs=[{"name": "data_url", "uri": "storage://train-data/in", "acquisition": "env"}],
            outputs=[{"name": "train_url", "uri": "storage://train-data/out", "predownload": True}],
            persist_logs=True, log_path="storage://train-data/logs", notify_channel="email",
            notify_target="ops@example.com", notify_events=["started", "failed"], auto_restart=2,
            max_runtime_hours=4, tags={"team": "vision"})


def test_the_overview_lists_every_parameter_with_each_channels_local_path(client, owner, job):
    # Fields the service only takes for other boot modes or pools with nodes, set directly to show them.
    TrainingJob.objects.filter(pk=job.pk).update(
        run_as_uid=1234, custom_flavor={"cpus": 2, "memory_mb": 2048, "gpus": 0},
        mounts=[{"source": "/data/shared", "path": "mnt/shared", "read_only": True}])
    client.force_login(owner)
    page = client.get(f"/training/jobs/{job.pk}/").content.decode()
    for text in ["$MA_MOUNT_PATH/my-code", "$MA_MOUNT_PATH/my-code/src",  # local code folder, working dir
                 '<dd class="mono" data-param="run_as_uid">1234</dd>',
                 "2 CPU cores · 2048 MB memory",
                 "/data/shared</span> → <span class=\"mono\">$MA_MOUNT_PATH/mnt/shared</span> (read-only)",
                 "to <span class=\"mono\">storage://train-data/logs</span>",
                 "email to <span class=\"mono\">ops@example.com</span> on Job started, Job failed",
                 # Each channel: where it comes from, its local path and how the code receives it.
                 "storage://train-data/in</span> → local path <span class=\"mono\">$MA_MOUNT_PATH/inputs/data_url_0/",
                 "<code>data_url=$MA_MOUNT_PATH/inputs/data_url_0/</code>",
                 "<code>--train_url=$MA_MOUNT_PATH/outputs/train_url_0/</code>; existing files pre-downloaded",
                 "up to 2 times", "after 4 h of running time", "MY_FLAG=1", "team=vision"]:
        assert text in page, text


def test_persist_off_says_when_logs_are_purged(client, owner, job, settings):
    TrainingJob.objects.filter(pk=job.pk).update(persist_logs=False, log_path="", notify_channel="")
    client.force_login(owner)
    page = client.get(f"/training/jobs/{job.pk}/").content.decode()
    assert f"off; node logs are purged {settings.ATELIER_TRAINING_LOG_RETENTION_DAYS} days after the job ends" in page
    assert '<dd data-param="notify">off</dd>' in page


def test_description_is_editable_and_checked(client, owner, outsider, job):
    client.force_login(owner)
    assert client.post(f"/training/jobs/{job.pk}/description", {"description": "second try, lr 0.1"}).status_code == 302
    job.refresh_from_db()
    assert job.description == "second try, lr 0.1"
    response = client.post(f"/training/jobs/{job.pk}/description", {"description": "x" * 300}, follow=True)
    assert "256" in response.content.decode()
    job.refresh_from_db()
    assert job.description == "second try, lr 0.1"  # the refused text changed nothing
    client.force_login(outsider)
    assert client.post(f"/training/jobs/{job.pk}/description", {"description": "mine"}).status_code == 404


ALL = [S.CREATING, S.PENDING, S.RUNNING, S.COMPLETED, S.FAILED, S.TERMINATED, S.ABNORMAL]


@pytest.mark.parametrize("status", ALL)
def test_actions_are_allowed_only_in_their_statuses(api, job, status, django_capture_on_commit_callbacks):
    """Item 24: terminate in Creating/Pending/Running, delete in terminal states, priority in Pending."""
    # No worker serves the pool, so the job has no run: a terminate in a live status ends it at once.
    TrainingJob.objects.filter(pk=job.pk).update(status=status)

    priority = api.patch(f"{JOBS}{job.pk}/", {"priority": 2}, format="json")
    if status == S.PENDING:
        assert priority.status_code == 200, priority.json()
        assert priority.json()["priority"] == 2
    else:
        assert priority.status_code == 400
        assert priority.json()["error"]["message"] == (f"priority: The priority can only change while the job is "
                                                      f"Pending; it is {status.label}.")
        assert TrainingJob.objects.get(pk=job.pk).priority == 1

    if status in (S.CREATING, S.PENDING, S.RUNNING):
        refused = api.delete(f"{JOBS}{job.pk}/")
        assert refused.status_code == 400
        assert "terminate it before deleting it" in refused.json()["error"]["message"]
        with django_capture_on_commit_callbacks(execute=True):
            stopped = api.post(f"{JOBS}{job.pk}/stop/")
        assert stopped.status_code == 200, stopped.json()
        assert TrainingJob.objects.get(pk=job.pk).status == S.TERMINATED
    else:
        refused = api.post(f"{JOBS}{job.pk}/stop/")
        assert refused.status_code == 400
        assert "only Creating, Pending and Running jobs can be terminated" in refused.json()["error"]["message"]
        assert TrainingJob.objects.get(pk=job.pk).status == status
    assert api.delete(f"{JOBS}{job.pk}/").status_code == 204
    assert not TrainingJob.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize("status", ALL)
def test_the_shell_tab_exists_only_while_running(client, owner, job, status):
    TrainingJob.objects.filter(pk=job.pk).update(status=status)
    client.force_login(owner)
    page = client.get(f"/training/jobs/{job.pk}/").content.decode()
    assert ('href="?tab=shell"' in page) == (status == S.RUNNING)
    buttons = ('data-testid="stop"' in page, 'data-testid="delete"' in page, 'data-testid="edit-code"' in page)
    assert buttons == ((True, False, False) if status in (S.CREATING, S.PENDING, S.RUNNING) else (False, True, True))
    if status == S.COMPLETED:  # "Edit code" opens the job's code folder in the storage browser
        assert client.get("/storage/go", {"path": job.code_dir}, follow=True).status_code == 200


def test_auto_restart_and_other_fields_are_fixed_after_creation(api, job):
    """Item 12: the API refuses an auto-restart change; only the description (and a Pending priority) change."""
    refused = api.patch(f"{JOBS}{job.pk}/", {"auto_restart": 1}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "auto_restart: Auto-restart cannot be changed after creation."
    refused = api.patch(f"{JOBS}{job.pk}/", {"node_count": 2}, format="json")
    assert refused.status_code == 400
    assert "node_count cannot be changed after creation; rebuild the job instead." in refused.json()["error"]["message"]
    changed = api.patch(f"{JOBS}{job.pk}/", {"description": "tuned"}, format="json")
    assert changed.status_code == 200 and changed.json()["description"] == "tuned"
    job.refresh_from_db()
    assert (job.auto_restart, job.node_count, job.description) == (2, 1, "tuned")
