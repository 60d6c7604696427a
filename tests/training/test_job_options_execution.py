"""The job form's optional sections on a real worker: a host mount appears as a link in the run
directory, the run-as uid is applied, logs are persisted and the webhook receives signed events
sent by the Celery worker."""
from __future__ import annotations

import json
import os
import tempfile

import pytest

from apps.training.choices import TrainingStatus
from apps.training.services import training_job_create

from .conftest import job_events, job_log, read, wait_job
from .test_notifications import Receiver

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_mount_uid_persisted_logs_and_webhook(training_worker, owner, workspace, bucket, local_pool, cpu_flavor,
                                              settings):
    from tests.runtime.conftest import wait_for

    host = tempfile.mkdtemp(prefix="atelier-mount-")
    os.chmod(host, 0o755)  # the job's uid must be able to enter it
    with open(os.path.join(host, "hello.txt"), "w") as fh:
        fh.write("from-the-host\n")
    os.chmod(os.path.join(host, "hello.txt"), 0o644)
    # The job's uid must be able to reach the run directory; the test's temporary folders are private.
    from pathlib import Path

    Path(settings.ATELIER_RUNTIME_WORK_ROOT).mkdir(parents=True, exist_ok=True)
    for parent in Path(settings.ATELIER_RUNTIME_WORK_ROOT).parents:
        if parent.stat().st_uid == os.getuid() and not parent.stat().st_mode & 0o001 and parent != Path("/"):
            os.chmod(parent, parent.stat().st_mode | 0o001)
    receiver = Receiver()
    secret = "webhook-test-secret"
    worker_env = {"ATELIER_TRAINING_HOST_MOUNT_ROOTS": host, "ATELIER_TRAINING_WEBHOOK_SECRET": secret}
    settings.ATELIER_TRAINING_HOST_MOUNT_ROOTS = [host]
    settings.ATELIER_TRAINING_WEBHOOK_SECRET = secret
    try:
        training_worker(env=worker_env)
        job = training_job_create(
            user=owner, workspace=workspace, name="opts-1", pool=local_pool, flavor=cpu_flavor, experiment="none",
            boot_mode="custom", run_as_uid=4321,
            boot_command='echo "UID $(id -u)"; cat "$MA_MOUNT_PATH/data/host/hello.txt" && echo done > "$out/x.txt"',
            outputs=[{"name": "out", "uri": "storage://train-data/opts-out", "acquisition": "env"}],
            mounts=[{"source": host, "path": "data/host"}], persist_logs=True,
            log_path="storage://train-data/joblogs", notify_channel="webhook", notify_target=receiver.url,
            notify_events=["started", "ended"],
        )
        job = wait_job(job, TrainingStatus.COMPLETED, timeout=90)
        lines = job_log(job)
        assert "UID 4321" in lines  # the worker runs as root here, so the launcher switched users
        assert "from-the-host" in lines
        assert any(line.startswith("[atelier] Mounted ") and line.endswith("/data/host.") for line in lines)
        assert read("storage://train-data/opts-out/x.txt") == b"done\n"
        # Persisted logs and the notifications come from tasks on the worker, after the job ended.
        wait_for(lambda: len(receiver.received) >= 2, timeout=30, message="two webhook calls")
        events = sorted(json.loads(body)["event"] for _, body in receiver.received)
        assert events == ["ended", "started"]
        from apps.training import notifications

        for headers, body in receiver.received:
            assert headers[notifications.SIGNATURE_HEADER] == notifications.sign(body)
        wait_for(lambda: any(e.startswith("Logs saved to storage://train-data/joblogs") for e in job_events(job)),
                 timeout=30, message="the logs to be persisted")
        saved = read("storage://train-data/joblogs/opts-1-worker-0.log").decode()
        assert "UID 4321" in saved and "from-the-host" in saved
    finally:
        receiver.close()
        import shutil

        shutil.rmtree(host, ignore_errors=True)
