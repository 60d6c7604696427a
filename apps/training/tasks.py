"""Celery entry points of the training section. Thin: they call a service."""
from celery import shared_task


@shared_task(name="apps.training.tasks.training_dispatch", ignore_result=True)
def training_dispatch() -> int:
    """Beat: hand waiting training jobs to the run engine where their pool has room."""
    from .services import training_jobs_dispatch

    return training_jobs_dispatch()


@shared_task(name="apps.training.tasks.training_job_notify_send", ignore_result=True)
def training_job_notify_send(job_id: int, event: str, at: str, detail: str = "") -> bool:
    """Send one job-event notification (e-mail or signed webhook); failures become job events."""
    from .notifications import notification_deliver

    return notification_deliver(job_id, event, at, detail)


@shared_task(name="apps.training.tasks.training_job_persist_logs", ignore_result=True)
def training_job_persist_logs(job_id: int) -> int:
    """Copy a finished job's node logs to its job log path (idempotent)."""
    from .models import TrainingJob
    from .retention import training_job_persist_logs as persist

    job = TrainingJob.objects.filter(pk=job_id).first()
    return len(persist(job)) if job is not None else 0


@shared_task(name="apps.training.tasks.training_log_purge", ignore_result=True)
def training_log_purge() -> int:
    """Beat (daily): delete node logs of jobs that ended more than 30 days ago and did not persist them."""
    from .retention import training_log_purge as purge

    return purge()
