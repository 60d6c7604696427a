"""Fault recovery of training jobs: the attempt history (the "Fault recovery" tab), isolation of a
node that failed its pre-check, the limit on how long a restarted job may wait for resources, and
suspected-hang events.

The run engine re-queues every node of a failed group (auto-restart) and sends restarted groups
first (`apps.runtime.scheduling.runs_dispatch`); a restarted job is therefore at the front of the
queue. If it still waits longer than ATELIER_TRAINING_RESTART_WAIT_SECONDS (ModelArts: 30 min),
it fails here with an event saying why, instead of waiting forever.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.services import event_add

from .choices import TrainingStatus
from .models import TrainingJob

S = TrainingStatus

LEVEL_NODE_TASK = "Node-task reschedule"
LEVEL_JOB = "Job reschedule"


@dataclass
class Attempt:
    """One execution of the whole job: its nodes' outcomes merged."""

    number: int
    level: str = ""
    reason: str = ""
    status: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    hosts: list[str] = field(default_factory=list)
    live: bool = False


def job_attempts(job: TrainingJob) -> list[Attempt]:
    """Every attempt of the job, oldest first: finished ones from the engine's attempt records, then the
    current one when it is still queued or running. Attempts after the first carry the recovery level and
    the reason of the attempt before (what triggered the restart)."""
    from apps.runtime.choices import RunStatus
    from apps.runtime.models import Run, RunAttempt

    if job.run_group is None:
        return []
    runs = list(Run.objects.filter(group=job.run_group).select_related("worker").order_by("node_rank"))
    by_number: dict[int, Attempt] = {}
    for record in RunAttempt.objects.filter(run__group=job.run_group).select_related("run").order_by("attempt",
                                                                                                      "run__node_rank"):
        attempt = by_number.setdefault(record.attempt, Attempt(record.attempt))
        _merge(attempt, status=record.status, reason=record.reason, started=record.started_at,
               finished=record.finished_at, host=record.worker_name or record.host, rank=record.run.node_rank)
    for run in runs:
        if run.attempt not in by_number or run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED,
                                                             RunStatus.STOPPED, RunStatus.LOST):
            attempt = by_number.setdefault(run.attempt, Attempt(run.attempt))
            attempt.live = True
            _merge(attempt, status=run.status, reason=run.status_reason, started=run.started_at or run.claimed_at,
                   finished=None, host=run.worker.hostname if run.worker_id and run.worker else run.host,
                   rank=run.node_rank)
    attempts = [by_number[n] for n in sorted(by_number)]
    for previous, attempt in zip(attempts, attempts[1:]):
        lost = previous.status == RunStatus.LOST
        attempt.level = LEVEL_JOB if job.node_count > 1 else LEVEL_NODE_TASK
        reason = previous.reason.removeprefix("Lost: ")
        attempt.reason = (f"Worker lost: {reason}" if lost else reason) or "Restarted."
    if attempts:
        attempts[0].level = "First run"
    return attempts


def _merge(attempt: Attempt, *, status: str, reason: str, started, finished, host: str, rank: int) -> None:
    from apps.runtime.choices import RunStatus

    # The attempt's outcome is its worst node: lost > failed > stopped > succeeded.
    order = [RunStatus.LOST, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.SUCCEEDED]
    rank_of = {value: index for index, value in enumerate(order)}
    if not attempt.status or rank_of.get(status, 99) < rank_of.get(attempt.status, 99):
        attempt.status = status
        attempt.reason = reason
    if started and (attempt.started_at is None or started < attempt.started_at):
        attempt.started_at = started
    if finished and (attempt.finished_at is None or finished > attempt.finished_at):
        attempt.finished_at = finished
    if host:
        attempt.hosts.append(f"worker-{rank}: {host}")


def training_restart_waits_expire(*, now: datetime | None = None) -> int:
    """Fail jobs whose automatic restart has waited for resources longer than the limit; returns how many.

    The queued runs are removed from the queue and the job ends as Failed with an event stating the wait.
    """
    from apps.runtime.choices import RunStatus
    from apps.runtime.models import Run
    from apps.runtime.services import run_transition

    from .services import training_job_sync

    limit = settings.ATELIER_TRAINING_RESTART_WAIT_SECONDS
    cutoff = (now or timezone.now()) - timedelta(seconds=limit)
    groups = set(Run.objects.filter(status=RunStatus.QUEUED, attempt__gt=1, queued_at__lt=cutoff,
                                    owner_type="training.trainingjob").values_list("group", flat=True))
    failed = 0
    for job in TrainingJob.objects.filter(run_group__in=groups, status__in=[S.PENDING, S.RUNNING]):
        minutes = f"{limit // 60} min" if limit >= 120 else f"{limit} s"
        cause = f"The restarted job waited more than {minutes} for resources."
        with transaction.atomic():
            fresh = TrainingJob.objects.select_for_update().get(pk=job.pk)
            if fresh.is_terminal:
                continue
            TrainingJob.objects.filter(pk=fresh.pk).update(failure={
                "key": "restart_wait", "cause": cause, "retryable": False, "lines": [], "node": None,
                "suggestion": "Free capacity in the pool (or add a worker), then rebuild the job."})
            event_add(obj=fresh, level=EventLevel.ERROR,
                      message=f"训练作业排队失败 / Training job failed: the restart waited in the queue for more "
                              f"than {minutes}.")
            reason = f"Not restarted: waited more than {minutes} for resources."
            for run in Run.objects.filter(group=fresh.run_group, status=RunStatus.QUEUED):
                run_transition(run, RunStatus.STOPPED, reason=reason, event=reason, level=EventLevel.ERROR)
        training_job_sync(job)
        failed += 1
    return failed


def training_job_on_hang(job: TrainingJob, *, run_id: int, reason: str) -> None:
    """A node is suspected hung: a warning event on the job, which keeps running (the caller notifies
    subscribers of the "hang" event)."""
    from apps.runtime.models import Run

    run = Run.objects.filter(pk=run_id).only("node_rank").first()
    node = f"worker-{run.node_rank}" if run is not None else "a node"
    event_add(obj=job, level=EventLevel.WARNING,
              message=f"系统检测到您的作业疑似卡死，请及时前往作业详情界面查看并处理 / Suspected hang: {node} shows {reason}. "
                      "The job keeps running; check it on the job page.")


def restart_isolate_failed_node(run) -> bool:
    """The node `run` ran on failed its pre-check: keep the restarted job off that worker (the
    ModelArts rule "isolate the faulty node, re-dispatch"). True if a worker was isolated."""
    from apps.runtime.models import RunAttempt, WorkerNode
    from apps.runtime.services import run_group_exclude_worker

    record = RunAttempt.objects.filter(run=run, attempt=run.attempt - 1).first()
    worker = WorkerNode.objects.filter(hostname=record.worker_name).first() if record and record.worker_name else None
    if worker is None:
        return False
    return run_group_exclude_worker(run, worker_id=worker.pk,
                                    why=f"{worker.hostname} failed the environment pre-check; the restart runs on "
                                        f"another worker.")
