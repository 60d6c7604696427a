"""Job-event notifications (e-mail through Django's mail backend, signed webhooks), log persistence
and the retention purge."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from apps.core.storage import get_storage
from apps.runtime.models import Run
from apps.training import notifications, retention
from apps.training.choices import TrainingStatus
from apps.training.models import TrainingJob
from apps.training.services import training_job_create, training_job_stop

from .conftest import job_events, put, read

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint recording every POST (body and headers)."""

    def __init__(self, status=200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _job(owner, workspace, pool, flavor, **kwargs):
    values = dict(user=owner, workspace=workspace, name="job-n", pool=pool, flavor=flavor, experiment="none",
                  boot_mode="custom", boot_command="echo hi")
    values.update(kwargs)
    return training_job_create(**values)


def test_email_notification_through_the_mail_backend(owner, workspace, local_pool, cpu_flavor, mailoutbox):
    job = _job(owner, workspace, local_pool, cpu_flavor, notify_channel="email", notify_target="a@x.io, b@x.io",
               notify_events=["terminated"])
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.TERMINATED, status_reason="Terminated by alice.")
    assert notifications.notification_deliver(job.pk, "terminated", "2026-01-01T00:00:00+00:00")
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.subject == "[Atelier] Job terminated: job-n"
    assert mail.to == ["a@x.io", "b@x.io"]
    assert "Status: Terminated" in mail.body and "Reason: Terminated by alice." in mail.body


def test_webhook_is_signed_with_hmac(owner, workspace, local_pool, cpu_flavor, receiver, settings):
    settings.ATELIER_TRAINING_WEBHOOK_SECRET = "s3cret"
    job = _job(owner, workspace, local_pool, cpu_flavor, notify_channel="webhook", notify_target=receiver.url,
               notify_events=["started", "ended"])
    assert notifications.notification_deliver(job.pk, "ended", "2026-01-01T00:00:00+00:00")
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers[notifications.SIGNATURE_HEADER] == expected
    data = json.loads(body)
    assert (data["event"], data["label"], data["job"]["id"], data["job"]["name"]) == ("ended", "Job ended", job.pk,
                                                                                    "job-n")


def test_a_failed_delivery_becomes_a_job_event(owner, workspace, local_pool, cpu_flavor):
    failing = Receiver(status=500)
    try:
        job = _job(owner, workspace, local_pool, cpu_flavor, notify_channel="webhook", notify_target=failing.url,
                   notify_events=["failed"])
        assert notifications.notification_deliver(job.pk, "failed", "2026-01-01T00:00:00+00:00") is False
    finally:
        failing.close()
    assert any(m.startswith('Notification of "Job failed" by webhook failed: HTTP Error 500') for m in job_events(job))


def test_status_changes_queue_only_subscribed_events(owner, workspace, local_pool, cpu_flavor, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    from apps.training import tasks

    queued = []
    monkeypatch.setattr(tasks.training_job_notify_send, "apply_async",
                        lambda args, queue: queued.append((args[0], args[1], queue)))
    job = _job(owner, workspace, local_pool, cpu_flavor, notify_channel="email", notify_target="a@x.io",
               notify_events=["terminated"])
    with django_capture_on_commit_callbacks(execute=True):
        training_job_stop(user=owner, job=job)  # no runs yet: Terminated at once
    assert queued == [(job.pk, "terminated", "atelier.control")]
    other = _job(owner, workspace, local_pool, cpu_flavor, name="job-m", notify_channel="email",
                 notify_target="a@x.io", notify_events=["failed"])
    with django_capture_on_commit_callbacks(execute=True):
        training_job_stop(user=owner, job=other)
    assert len(queued) == 1  # "terminated" is not among job-m's events


def test_event_for_status():
    assert [notifications.event_for_status(s) for s in TrainingStatus.values] == [
        None, None, "started", "ended", "failed", "terminated", "failed"]


def _finished_job(owner, workspace, pool, flavor, *, name, days_ago, persist=False, log_path=""):
    import uuid

    job = _job(owner, workspace, pool, flavor, name=name, persist_logs=persist, log_path=log_path)
    group = uuid.uuid4()
    run = Run.objects.create(workspace=workspace, created_by=owner, name=f"training {name}", command=["true"],
                             flavor=flavor, pool=pool, group=group, node_rank=0, node_count=1,
                             owner_type="training.trainingjob", owner_id=str(job.pk))
    from apps.runtime.services import run_log_path

    Run.objects.filter(pk=run.pk).update(log_uri=run_log_path(run).uri)
    run.refresh_from_db()
    put(run.log_uri, f"line of {name}\n")
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.COMPLETED, run_group=group,
                                                 finished_at=timezone.now() - dt.timedelta(days=days_ago))
    job.refresh_from_db()
    return job, run


def test_logs_are_persisted_to_the_job_log_path(owner, workspace, local_pool, cpu_flavor, bucket):
    job, run = _finished_job(owner, workspace, local_pool, cpu_flavor, name="keep", days_ago=0, persist=True,
                             log_path="storage://train-data/joblogs")
    assert retention.training_job_persist_logs(job) == ["storage://train-data/joblogs/keep-worker-0.log"]
    assert read("storage://train-data/joblogs/keep-worker-0.log") == b"line of keep\n"
    assert TrainingJob.objects.get(pk=job.pk).logs_persisted_at is not None
    assert "Logs saved to storage://train-data/joblogs (1 file)." in job_events(job)


def test_purge_deletes_only_old_unpersisted_logs(owner, workspace, local_pool, cpu_flavor, bucket, settings):
    from apps.core.paths import parse

    old, old_run = _finished_job(owner, workspace, local_pool, cpu_flavor, name="old", days_ago=31)
    recent, recent_run = _finished_job(owner, workspace, local_pool, cpu_flavor, name="recent", days_ago=29)
    kept, kept_run = _finished_job(owner, workspace, local_pool, cpu_flavor, name="kept", days_ago=40, persist=True,
                                   log_path="storage://train-data/joblogs")
    assert retention.training_log_purge() == 1
    storage = get_storage()
    assert not storage.exists(parse(old_run.log_uri))
    assert storage.exists(parse(recent_run.log_uri)) and storage.exists(parse(kept_run.log_uri))
    assert TrainingJob.objects.get(pk=old.pk).logs_purged_at is not None
    assert "Logs deleted after 30 days (log persistence was off)." in job_events(old)
    assert retention.training_log_purge() == 0  # idempotent
    # The beat schedule runs the purge daily on the control queue.
    entry = settings.CELERY_BEAT_SCHEDULE["training-log-purge"]
    assert (entry["task"], entry["schedule"]) == ("apps.training.tasks.training_log_purge", 24 * 3600.0)


def test_retention_settings_check(settings):
    assert retention.retention_settings_check() == []
    settings.ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS = 24
    settings.ATELIER_TRAINING_LOG_RETENTION_DAYS = 0
    assert [e.id for e in retention.retention_settings_check()] == ["training.E001", "training.E002"]


def test_suspected_hang_notifies_subscribers(owner, workspace, local_pool, monkeypatch,
                                             django_capture_on_commit_callbacks):
    from apps.runtime.callbacks import RunChange
    from apps.runtime.models import Flavor
    from apps.training import tasks
    from apps.training.services import training_job_on_run_change

    gpu = Flavor.objects.create(name="gpu-1x", cpus=1, memory_mb=1024, gpus=1)
    gpu.pools.add(local_pool)
    queued = []
    monkeypatch.setattr(tasks.training_job_notify_send, "apply_async",
                        lambda args, queue: queued.append((args[0], args[1])))
    job = _job(owner, workspace, local_pool, gpu, notify_channel="webhook", notify_target="http://127.0.0.1:9/h",
               notify_events=["hang"])
    with django_capture_on_commit_callbacks(execute=True):
        training_job_on_run_change(RunChange(run_id=0, owner_type="training.trainingjob", owner_id=str(job.pk),
                                             kind="hang", previous="running", status="running",
                                             reason="no output for 10 min"))
    assert queued == [(job.pk, "hang")]
    assert any(m.startswith("系统检测到您的作业疑似卡死") for m in job_events(job))
