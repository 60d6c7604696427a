"""Read queries of the training section, always scoped to the user's workspaces."""
from __future__ import annotations

from django.db.models import Count

from apps.core.scoping import get_for_user

from .models import Algorithm, Experiment, TrainingJob


def training_jobs_in(workspace):
    if workspace is None:
        return TrainingJob.objects.none()
    return (TrainingJob.objects.in_workspace(workspace)
            .select_related("created_by", "experiment", "algorithm", "pool", "flavor"))


def training_job_get_for_user(user, pk) -> TrainingJob:
    return get_for_user(TrainingJob.objects.select_related("workspace", "experiment", "algorithm", "pool", "flavor",
                                                           "created_by"), user, pk=pk)


def algorithms_in(workspace):
    if workspace is None:
        return Algorithm.objects.none()
    return Algorithm.objects.in_workspace(workspace).select_related("created_by").annotate(job_count=Count("jobs"))


def algorithm_get_for_user(user, pk) -> Algorithm:
    return get_for_user(Algorithm.objects.select_related("workspace"), user, pk=pk)


def experiments_in(workspace):
    if workspace is None:
        return Experiment.objects.none()
    return Experiment.objects.in_workspace(workspace).select_related("created_by").annotate(job_count=Count("jobs"))


def experiment_get_for_user(user, pk) -> Experiment:
    return get_for_user(Experiment.objects.select_related("workspace"), user, pk=pk)


def job_runs(job: TrainingJob):
    """The job's nodes (runs of the engine), rank order; empty before submission."""
    from apps.runtime.models import Run

    if job.run_group is None:
        return Run.objects.none()
    return Run.objects.filter(group=job.run_group).select_related("worker").order_by("node_rank")


def job_final_metrics(job: TrainingJob) -> dict[str, float]:
    """Last value of every metric reported by rank 0 (the node that evaluates)."""
    from apps.runtime.models import Metric

    runs = list(job_runs(job)[:1])
    if not runs:
        return {}
    latest: dict[str, float] = {}
    for name, value in Metric.objects.filter(run=runs[0]).order_by("name", "step", "id").values_list("name", "value"):
        latest[name] = value
    return latest


def job_metric_series(job: TrainingJob) -> dict[str, list[tuple[int, float]]]:
    """Every metric of rank 0 as (step, value) pairs in step order."""
    from apps.runtime.models import Metric

    runs = list(job_runs(job)[:1])
    series: dict[str, list[tuple[int, float]]] = {}
    if not runs:
        return series
    for name, step, value in Metric.objects.filter(run=runs[0]).order_by("name", "step", "id").values_list(
            "name", "step", "value"):
        series.setdefault(name, []).append((step, value))
    return series
