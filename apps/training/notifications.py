"""Event notifications of training jobs (spec seed-05 §17 items 15 and 42).

A job subscribes one channel — e-mail (Django's mail backend) or a webhook (HTTP POST of JSON) —
to a subset of events. Services call `training_job_notify(job, event)` inside their transaction;
the message is sent by the Celery task `training_job_notify_send` after commit, so a slow mail
server or receiver never holds a database lock or the status change itself.

Webhook bodies are signed: header ``X-Atelier-Signature: sha256=<hex>`` is the HMAC-SHA256 of
the raw body with ATELIER_TRAINING_WEBHOOK_SECRET (or, when unset, a key derived from the
console's secret key); receivers recompute it to trust the message.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request

from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

STARTED, ENDED, FAILED, TERMINATED, HANG = "started", "ended", "failed", "terminated", "hang"
EVENT_LABELS = {STARTED: "Job started", ENDED: "Job ended", FAILED: "Job failed", TERMINATED: "Job terminated",
                HANG: "Job suspected hung"}
SIGNATURE_HEADER = "X-Atelier-Signature"
WEBHOOK_TIMEOUT_SECONDS = 10  # a receiver slower than this is reported as failed, not waited for


def webhook_secret() -> bytes:
    if settings.ATELIER_TRAINING_WEBHOOK_SECRET:
        return settings.ATELIER_TRAINING_WEBHOOK_SECRET.encode()
    # Derived, so it differs from the secret key itself (which must never leave the console).
    return hmac.new(settings.SECRET_KEY.encode(), b"atelier.training.webhook", hashlib.sha256).hexdigest().encode()


def sign(body: bytes) -> str:
    """The signature header value of a webhook body."""
    return "sha256=" + hmac.new(webhook_secret(), body, hashlib.sha256).hexdigest()


def event_for_status(status: str) -> str | None:
    """The notification event a new job status stands for (None: not notified)."""
    from .choices import TrainingStatus as S

    return {S.RUNNING: STARTED, S.COMPLETED: ENDED, S.FAILED: FAILED, S.ABNORMAL: FAILED,
            S.TERMINATED: TERMINATED}.get(status)


def training_job_notify(job, event: str, detail: str = "") -> bool:
    """Queue a notification of `event` after commit when the job subscribed to it; True if queued."""
    if not job.notify_channel or event not in (job.notify_events or []):
        return False
    job_id, at = job.pk, timezone.now().isoformat()

    def send():
        from .tasks import training_job_notify_send

        training_job_notify_send.apply_async(args=[job_id, event, at, detail], queue=settings.ATELIER_CONTROL_QUEUE)

    transaction.on_commit(send)
    return True


def payload(job, event: str, at: str, detail: str = "") -> dict:
    return {"event": event, "label": EVENT_LABELS[event], "at": at, "detail": detail,
            "job": {"id": job.pk, "name": job.name, "status": job.status, "status_label": job.get_status_display(),
                    "reason": job.status_reason, "workspace": job.workspace.name,
                    "url": f"/training/jobs/{job.pk}/"}}


def notification_send(job, event: str, at: str, detail: str = "") -> None:
    """Deliver one notification now (the task's body); raises on a delivery failure."""
    data = payload(job, event, at, detail)
    if job.notify_channel == "email":
        from django.core.mail import send_mail

        subject = f"[Atelier] {EVENT_LABELS[event]}: {job.name}"
        lines = [f"{EVENT_LABELS[event]} at {at}.", f"Job: {job.name} (id {job.pk})",
                 f"Status: {job.get_status_display()}"]
        if job.status_reason:
            lines.append(f"Reason: {job.status_reason}")
        if detail:
            lines.append(detail)
        recipients = [a.strip() for a in job.notify_target.split(",") if a.strip()]
        send_mail(subject, "\n".join(lines), None, recipients)
    elif job.notify_channel == "webhook":
        body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        request = urllib.request.Request(job.notify_target, data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(body), "User-Agent": "Atelier-Notifier/1"})
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 (http(s) only)
            response.read(1024)


def notification_deliver(job_id: int, event: str, at: str, detail: str = "") -> bool:
    """Send a queued notification; a failure becomes a warning event on the job, never an exception."""
    from apps.core.choices import EventLevel
    from apps.core.services import event_add

    from .models import TrainingJob

    job = TrainingJob.objects.select_related("workspace").filter(pk=job_id).first()
    if job is None or not job.notify_channel:
        return False
    try:
        notification_send(job, event, at, detail)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        logger.warning("training job %s: %s notification failed: %s", job_id, event, exc)
        event_add(obj=job, message=f"Notification of \"{EVENT_LABELS[event]}\" by {job.notify_channel} failed: "
                                   f"{exc}", level=EventLevel.WARNING)
        return False
    return True
