"""Node logs of training jobs after the job ends: persistence and the retention purge (§17 items 15, 43).

* A job with "persist logs" on gets every node log copied to its job log path
  (`<log_path>/<job name>-worker-<rank>.log`) once it reaches a final status. Those copies
  belong to the user and are never purged.
* The daily beat task `training_log_purge` deletes the run-engine log files of jobs that ended
  more than ATELIER_TRAINING_LOG_RETENTION_DAYS (30) days ago; a job that persists its logs keeps
  its log files too. The job, its events and its metrics stay: only the log files go, and the job
  records when (`logs_purged_at`), so its page can say why the log is empty. Metrics are never
  touched here, which keeps the ≥ 3 days the resource-usage tab shows.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.paths import parse
from apps.core.services import event_add
from apps.core.storage import NotFound, get_storage

from .choices import TERMINAL_JOB_STATUSES
from .models import TrainingJob

logger = logging.getLogger(__name__)
PURGE_BATCH = 200  # jobs per purge pass; the next day's pass continues a long backlog


def _runs(job: TrainingJob):
    from apps.runtime.models import Run

    if job.run_group is None:
        return []
    return list(Run.objects.filter(group=job.run_group).order_by("node_rank"))


def training_job_persist_logs_later(job: TrainingJob) -> None:
    """Queue the copy of the job's node logs after commit (called when the job reaches a final status)."""
    if not job.persist_logs or not job.log_path:
        return
    job_id = job.pk

    def queue():
        from .tasks import training_job_persist_logs

        training_job_persist_logs.apply_async(args=[job_id], queue=settings.ATELIER_CONTROL_QUEUE)

    transaction.on_commit(queue)


def training_job_persist_logs(job: TrainingJob) -> list[str]:
    """Copy every node log to the job log path; returns the written URIs (idempotent: files are replaced)."""
    from apps.runtime.logstream import open_log

    if not job.persist_logs or not job.log_path or job.status not in TERMINAL_JOB_STATUSES:
        return []
    storage, folder, written = get_storage(), parse(job.log_path), []
    for run in _runs(job):
        fh = open_log(run)
        if fh is None:
            continue
        target = folder.child(f"{job.name}-worker-{run.node_rank}.log")
        with fh:
            storage.save(target, fh)
        written.append(target.uri)
    TrainingJob.objects.filter(pk=job.pk).update(logs_persisted_at=timezone.now())
    event_add(obj=job, message=f"Logs saved to {job.log_path} ({len(written)} file{'s' if len(written) != 1 else ''}).")
    return written


def training_log_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the node log files of jobs that ended before the retention window; returns how many jobs."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.ATELIER_TRAINING_LOG_RETENTION_DAYS)
    jobs = (TrainingJob.objects.filter(status__in=TERMINAL_JOB_STATUSES, finished_at__lt=cutoff,
                                       persist_logs=False, logs_purged_at__isnull=True)
            .order_by("finished_at")[:PURGE_BATCH])
    storage, purged = get_storage(), 0
    for job in jobs:
        for run in _runs(job):
            try:
                storage.delete(parse(run.log_uri))
            except (NotFound, FileNotFoundError):
                pass  # already gone: the purge is idempotent
        TrainingJob.objects.filter(pk=job.pk).update(logs_purged_at=now)
        event_add(obj=job, message=f"Logs deleted after {settings.ATELIER_TRAINING_LOG_RETENTION_DAYS} days "
                                   f"(log persistence was off).", level=EventLevel.INFO)
        purged += 1
    if purged:
        logger.info("training log purge: %s jobs", purged)
    return purged


def retention_settings_check(app_configs=None, **kwargs):
    """System check: node samples live ≥ 3 days (the resource-usage tab), logs at least a day."""
    from django.core.checks import Error

    errors = []
    if settings.ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS < 72:
        errors.append(Error("ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS must be at least 72: training jobs show the last "
                            "3 days of resource usage.", id="training.E001"))
    if settings.ATELIER_TRAINING_LOG_RETENTION_DAYS < 1:
        errors.append(Error("ATELIER_TRAINING_LOG_RETENTION_DAYS must be at least 1.", id="training.E002"))
    return errors
