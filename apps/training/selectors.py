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


def pool_overview() -> dict[int, dict]:
    """What the job form shows under the pool picker (seed-05 §17 item 13), per pool id: status,
    dedicated or shared, the node flavor (largest online node), nodes online / registered, idle nodes
    (online, nothing running), fragment nodes (online, partly used), nodes with a free slot, and
    GPUs free / total. Platform data (pools serve every workspace); three queries whatever the size."""
    from django.db.models import Q

    from apps.runtime.choices import ACTIVE_STATUSES
    from apps.runtime.models import Pool, WorkerNode
    from apps.runtime.scheduling import nodes_online

    online_ids = set(nodes_online().values_list("pk", flat=True))
    nodes = (WorkerNode.objects.prefetch_related("pools")
             .annotate(active=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES), distinct=True),
                       leased=Count("gpu_leases", distinct=True)))
    out = {pool.pk: {"status": pool.get_status_display(), "dedicated": pool.dedicated, "nodes_total": 0,
                     "nodes_online": 0, "nodes_idle": 0, "nodes_fragment": 0, "nodes_available": 0,
                     "gpus_total": 0, "gpus_free": 0, "node_flavor": ""}
           for pool in Pool.objects.all()}
    largest: dict[int, tuple] = {}
    for node in nodes:
        for pool in node.pools.all():
            info = out[pool.pk]
            info["nodes_total"] += 1
            if node.pk not in online_ids:
                continue
            info["nodes_online"] += 1
            info["nodes_idle"] += node.active == 0
            info["nodes_fragment"] += 0 < node.active < node.slots
            info["nodes_available"] += node.active < node.slots
            info["gpus_total"] += node.gpu_count
            info["gpus_free"] += max(0, node.gpu_count - node.leased)
            shape = (node.gpu_count, node.cpus, node.memory_mb)
            if shape > largest.get(pool.pk, (-1, 0, 0)):
                largest[pool.pk] = shape
                gpus = f" · {node.gpu_count} GPU ({node.gpus[0].get('name', 'GPU')})" if node.gpus else ""
                info["node_flavor"] = f"{node.cpus} CPU · {node.memory_mb / 1024:.0f} GiB{gpus}"
    return out
