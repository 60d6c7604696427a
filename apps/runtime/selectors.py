"""Read queries of the run engine. Runs are workspace-scoped; pools, flavors and workers are platform-wide."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.utils import timezone

from apps.core.permissions import has_perm
from apps.core.scoping import get_for_user

from .choices import ACTIVE_STATUSES, NodeStatus
from .models import Flavor, GpuLease, Metric, NodeSample, Pool, Run, WorkerNode


def run_get_for_user(user, pk, action: str = "run:view") -> Run:
    """The run if the user is in its workspace (else Http404) and their role allows `action`."""
    run = get_for_user(Run.objects.select_related("workspace", "flavor", "pool", "worker", "created_by"), user, pk=pk)
    if not has_perm(user, run.workspace, action):
        raise PermissionDenied(f"Your role does not allow {action}.")
    return run


def runs_visible(user):
    """Runs in every workspace the user belongs to, with what list pages show."""
    return Run.objects.visible_to(user).select_related("workspace", "flavor", "pool", "worker", "created_by")


def runs_in(workspace):
    if workspace is None:
        return Run.objects.none()
    return Run.objects.in_workspace(workspace).select_related("flavor", "pool", "worker", "created_by")


def run_group(run: Run) -> list[Run]:
    """All nodes of the run's group in rank order (the run itself when single-node)."""
    return list(Run.objects.filter(group=run.group).select_related("worker").order_by("node_rank"))


def run_metric_series(run: Run, *, name: str | None = None) -> dict[str, list[tuple[int, float]]]:
    """{name: [(step, value), …]} in step order, for charts and the API."""
    return run_metric_snapshot(run, name=name)[0]


def run_metric_snapshot(run: Run, *, name: str | None = None) -> tuple[dict[str, list[tuple[int, float]]], int]:
    """The series plus the highest metric id they include (what a live chart asks to continue after)."""
    qs = Metric.objects.filter(run=run)
    if name:
        qs = qs.filter(name=name)
    series: dict[str, list[tuple[int, float]]] = {}
    last_id = 0
    for pk, metric_name, step, value in qs.order_by("name", "step", "id").values_list("id", "name", "step", "value"):
        series.setdefault(metric_name, []).append((step, value))
        last_id = max(last_id, pk)
    return series, last_id


def run_metrics_after(run: Run, after: int, *, limit: int = 50000) -> list[Metric]:
    """Points recorded after metric id `after`, in id order (a viewer catching up)."""
    return list(Metric.objects.filter(run=run, pk__gt=after).order_by("pk")[:limit])


def can_view_resources(user) -> bool:
    """Pools, flavors, workers and monitoring (platform-wide): staff, or a user whose role allows
    resource:view in at least one of their workspaces."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    from apps.accounts.models import Membership

    workspaces = Membership.objects.filter(user=user).select_related("workspace")
    return any(has_perm(user, membership.workspace, "resource:view") for membership in workspaces)


def require_resource_view(user) -> None:
    if not can_view_resources(user):
        raise PermissionDenied("Your role does not allow resource:view.")


def pools_list():
    return Pool.objects.annotate(
        worker_count=Count("workers", distinct=True),
        flavor_count=Count("flavors", distinct=True),
    ).order_by("name")


def flavors_list():
    return Flavor.objects.prefetch_related("pools").order_by("gpus", "cpus", "memory_mb", "name")


def workers_list():
    """Worker nodes with their pools, running-run counts and leased GPUs."""
    return (WorkerNode.objects.prefetch_related("pools")
            .annotate(running=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES), distinct=True),
                      gpus_leased=Count("gpu_leases", distinct=True))
            .order_by("hostname"))


def worker_get(pk) -> WorkerNode:
    from django.http import Http404

    node = workers_list().filter(pk=pk).first()
    if node is None:
        raise Http404("Not found.")
    return node


def worker_is_online(node: WorkerNode) -> bool:
    cutoff = timezone.now() - timedelta(seconds=settings.ATELIER_RUNTIME_LOST_SECONDS)
    return node.status == NodeStatus.ONLINE and node.last_heartbeat >= cutoff


def worker_runs(node: WorkerNode, user):
    """Active runs on the node that `user` may see (other workspaces' runs are only counted)."""
    return runs_visible(user).filter(worker=node, status__in=ACTIVE_STATUSES).order_by("-started_at")


def node_samples(*, since, nodes=None):
    """Samples per node since `since`, oldest first: {node: [samples]}."""
    nodes = list(nodes if nodes is not None else WorkerNode.objects.order_by("hostname"))
    qs = NodeSample.objects.filter(at__gte=since, node__in=nodes).order_by("node_id", "at")
    by_node: dict[int, list[NodeSample]] = {node.pk: [] for node in nodes}
    for sample in qs.iterator(chunk_size=2000):
        by_node[sample.node_id].append(sample)
    return [(node, by_node[node.pk]) for node in nodes]


def gpu_leases_of(node: WorkerNode):
    return GpuLease.objects.filter(node=node).select_related("run").order_by("index")




def worker_get_for_user(user, pk) -> WorkerNode:
    """A worker node for someone allowed to see resources (PermissionDenied otherwise, Http404 if absent)."""
    require_resource_view(user)
    return worker_get(pk)
