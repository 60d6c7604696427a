"""Placement and dispatch of runs, worker registration, and the sweep that finds lost runs.

Dispatch rules: a single-node run without GPUs goes to its pool's queue (`pool.<name>`) and
the first free worker takes it. GPU runs and the ranks of a multi-node run are placed by
the console on specific workers (each worker's own queue, Celery's worker-direct queue), so
GPU capacity is checked before sending and the ranks land on distinct nodes. Whatever the
queue, a worker only executes a run it can claim (`run_claim`), so sending twice is harmless.
"""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, Q, Value, When
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.services import event_add

from .choices import ACTIVE_STATUSES, JobType, NodeStatus, PoolStatus, RunStatus
from .models import Flavor, GpuLease, NodeSample, Pool, Run, RunSample, WorkerNode
from .services import run_finish, run_transition

logger = logging.getLogger(__name__)
S = RunStatus


# ---------------------------------------------------------------------------------------------
# The machine a worker runs on
# ---------------------------------------------------------------------------------------------


def gpus_discover() -> list[dict]:
    """This machine's GPUs: declared by ATELIER_WORKER_GPUS, else listed by `nvidia-smi`, else none."""
    declared = settings.ATELIER_WORKER_GPUS.strip()
    if declared:
        try:
            count = int(declared)
        except ValueError:
            raise ImproperlyConfigured(
                f"ATELIER_WORKER_GPUS must be a number of GPUs (or empty to detect them), not {declared!r}"
            ) from None
        return [{"index": i, "name": "declared GPU", "memory_mb": 0} for i in range(max(0, count))]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        logger.warning("nvidia-smi is installed but failed; this worker offers no GPUs", exc_info=True)
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            memory = int(float(parts[2])) if parts[2].replace(".", "", 1).isdigit() else 0
            gpus.append({"index": int(parts[0]), "name": parts[1], "memory_mb": memory})
    return gpus


def gpus_sample(gpus: list[dict], *, indices: list[int] | None = None) -> tuple[float | None, float | None]:
    """Mean GPU utilisation and memory use (percent) of real GPUs — all of them, or only `indices`
    (a run's leased GPUs); (None, None) when unknown."""
    if not gpus or settings.ATELIER_WORKER_GPUS.strip() or shutil.which("nvidia-smi") is None:
        return None, None
    command = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits"]
    if indices:
        command.append("--id=" + ",".join(str(int(i)) for i in indices))
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    utils, mems = [], []
    for line in out.strip().splitlines():
        try:
            util, used, total = (float(part) for part in line.split(","))
        except ValueError:
            continue
        utils.append(util)
        mems.append(100.0 * used / total if total else 0.0)
    if not utils:
        return None, None
    return sum(utils) / len(utils), sum(mems) / len(mems)


def host_address() -> str:
    """ATELIER_WORKER_HOST, else the address of the interface that routes outwards, else loopback."""
    if settings.ATELIER_WORKER_HOST:
        return settings.ATELIER_WORKER_HOST
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.255.255.255", 1))  # UDP connect sends nothing; it only picks a route
            return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# Worker nodes
# ---------------------------------------------------------------------------------------------


def _online_cutoff():
    return timezone.now() - timedelta(seconds=settings.ATELIER_RUNTIME_LOST_SECONDS)


def nodes_online():
    """Workers whose heartbeat is recent enough to trust them with a run."""
    return WorkerNode.objects.filter(status=NodeStatus.ONLINE, last_heartbeat__gte=_online_cutoff())


@transaction.atomic
def worker_node_register(*, hostname: str, pool_names: list[str], slots: int, pid: int) -> tuple[WorkerNode, list[Run]]:
    """Record (or refresh) a starting worker with this machine's capacity.

    Pools it serves are created when missing. Runs the database still assigns to this
    hostname belong to an earlier incarnation that died: they are returned (so the worker
    can kill leftover processes) and ended as lost, which restarts them when allowed.
    """
    import psutil

    now = timezone.now()
    node, created = WorkerNode.objects.update_or_create(
        hostname=hostname,
        defaults=dict(
            host=host_address(), cpus=psutil.cpu_count(logical=True) or 1,
            memory_mb=psutil.virtual_memory().total // (1024 * 1024), gpus=gpus_discover(), slots=max(1, slots),
            pid=pid, version=_version(), status=NodeStatus.ONLINE, started_at=now, last_heartbeat=now,
        ),
    )
    pools = []
    for name in pool_names:
        pool, made = Pool.objects.get_or_create(
            name=name, defaults={"description": f"Created when worker {hostname} joined.",
                                 "job_types": list(JobType.values)}
        )
        pools.append(pool)
    node.pools.set(pools)
    gpu_text = f", {len(node.gpus)} GPU" if node.gpus else ""
    event_add(obj=node, message=f"Online: {node.cpus} CPU, {node.memory_mb // 1024} GiB{gpu_text}, "
                                f"pools {', '.join(pool_names) or '(none)'}, {node.slots} slots.")
    stale = list(Run.objects.filter(worker=node, status__in=ACTIVE_STATUSES))
    for run in stale:
        _end_lost(run, why=f"its worker {hostname} restarted")
    GpuLease.objects.filter(node=node).exclude(run__status__in=ACTIVE_STATUSES).delete()
    return node, stale


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"celery {version('celery')}"
    except Exception:  # metadata is informative only
        return ""


def worker_node_heartbeat(*, node_id: int, cpu_percent: float, memory_percent: float,
                          gpu_percent: float | None, gpu_memory_percent: float | None) -> None:
    """The worker is alive: refresh its heartbeat and keep one resource sample."""
    now = timezone.now()
    running = Run.objects.filter(worker_id=node_id, status__in=ACTIVE_STATUSES).count()
    with transaction.atomic():
        came_back = WorkerNode.objects.filter(pk=node_id, status=NodeStatus.OFFLINE).exists()
        WorkerNode.objects.filter(pk=node_id).update(last_heartbeat=now, status=NodeStatus.ONLINE)
        NodeSample.objects.create(node_id=node_id, at=now, cpu_percent=cpu_percent, memory_percent=memory_percent,
                                  gpu_percent=gpu_percent, gpu_memory_percent=gpu_memory_percent,
                                  running_runs=running)
        if came_back:
            event_add(obj=WorkerNode.objects.get(pk=node_id), message="Heartbeats resumed; online again.")


def worker_node_offline(*, node_id: int, why: str) -> None:
    """The worker is shutting down (or went silent): it is offline until its next registration."""
    with transaction.atomic():
        updated = WorkerNode.objects.filter(pk=node_id, status=NodeStatus.ONLINE).update(status=NodeStatus.OFFLINE)
        if updated:
            event_add(obj=WorkerNode.objects.get(pk=node_id), message=f"Offline: {why}.", level=EventLevel.WARNING)


# ---------------------------------------------------------------------------------------------
# Placement and dispatch
# ---------------------------------------------------------------------------------------------


@dataclass
class Placement:
    """Where to send a group of `count` runs: `nodes` (one per rank) or the pool queue; else why not."""

    nodes: list[WorkerNode]
    use_pool_queue: bool
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.use_pool_queue or bool(self.nodes)


def _fits(node: WorkerNode, flavor: Flavor) -> bool:
    if node.cpus < flavor.cpus or node.memory_mb < flavor.memory_mb or node.gpu_count < flavor.gpus:
        return False
    if flavor.gpus and flavor.gpu_type:
        wanted = flavor.gpu_type.lower()
        return sum(1 for gpu in node.gpus if wanted in str(gpu.get("name", "")).lower()) >= flavor.gpus
    return True


def _gpu_phrase(count: int) -> str:
    return f"{count} GPU" if count == 1 else f"{count} GPUs"


def placement_for(flavor: Flavor, pool: Pool, count: int = 1, *,
                  exclude: set[int] | frozenset = frozenset()) -> Placement:
    """Choose workers for `count` nodes of `flavor` in `pool`, or explain why none can take them now.

    The reason distinguishes "no online worker could ever serve this" from "capacity is busy",
    which is what a queued run shows while it waits.
    """
    if pool.status != PoolStatus.ENABLED:
        return Placement([], False, f"Pool {pool.name} is disabled.")
    online = list(nodes_online().filter(pools=pool).exclude(pk__in=exclude)
                  .annotate(active=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES))))
    if not online:
        return Placement([], False, f"No online worker serves pool {pool.name}.")
    capable = [node for node in online if _fits(node, flavor)]
    if not capable:
        need = f"{flavor.cpus} CPU, {flavor.memory_mb // 1024} GiB"
        if flavor.gpus:
            need += f", {_gpu_phrase(flavor.gpus)}" + (f" ({flavor.gpu_type})" if flavor.gpu_type else "")
        return Placement([], False, f"No worker in pool {pool.name} offers {need}.")
    if len(capable) < count:
        return Placement([], False, f"The run needs {count} workers offering {flavor.summary}; pool {pool.name} "
                                    f"has {len(capable)} online.")
    # The pool queue lets any of its workers take the run: only when none of them is excluded.
    if flavor.gpus == 0 and count == 1 and len(capable) == len(online) and not exclude:
        return Placement([], True)
    leased = dict(GpuLease.objects.filter(node__in=capable).values("node").annotate(n=Count("id"))
                  .values_list("node", "n"))
    with_room = [node for node in capable if node.gpu_count - leased.get(node.pk, 0) >= flavor.gpus]
    if len(with_room) < count:
        if flavor.gpus:
            where = f"{count} workers" if count > 1 else "a worker"
            return Placement([], False, f"Waiting for {_gpu_phrase(flavor.gpus)} to free up on {where} of pool "
                                        f"{pool.name}.")
        return Placement([], False, f"Waiting for {count} workers of pool {pool.name}.")
    # Least busy first: free slots, then free GPUs; the hostname keeps the order stable.
    with_room.sort(key=lambda n: (-(n.slots - n.active), -(n.gpu_count - leased.get(n.pk, 0)), n.hostname))
    return Placement(with_room[:count], False)


def flavor_availability(flavor: Flavor, *, online_by_pool: dict[int, list[WorkerNode]] | None = None
                        ) -> tuple[bool, str]:
    """Can any online worker of any enabled pool offering `flavor` serve it at all (capacity, not load)?

    Pass `online_by_pool` (from `online_nodes_by_pool`) when checking many flavors: the answer
    then costs no query beyond the flavor's prefetched pools.
    """
    if online_by_pool is None:
        online_by_pool = online_nodes_by_pool()
    pools = [pool for pool in flavor.pools.all() if pool.status == PoolStatus.ENABLED]
    if not pools:
        return False, "No enabled pool offers this flavor."
    reasons = []
    for pool in pools:
        online = online_by_pool.get(pool.pk, [])
        if any(_fits(node, flavor) for node in online):
            return True, ""
        reasons.append(f"no online worker in pool {pool.name}" if not online
                       else f"no worker in pool {pool.name} has {flavor.summary}")
    return False, "Unavailable: " + "; ".join(reasons) + "."


def online_nodes_by_pool() -> dict[int, list[WorkerNode]]:
    """{pool id: online workers serving it}, in two queries."""
    by_pool: dict[int, list[WorkerNode]] = defaultdict(list)
    for node in nodes_online().prefetch_related("pools"):
        for pool in node.pools.all():
            by_pool[pool.pk].append(node)
    return by_pool


def flavors_with_availability(flavors) -> list[tuple[Flavor, bool, str]]:
    """[(flavor, available, reason)] for list pages and the API, in a fixed number of queries."""
    online = online_nodes_by_pool()
    return [(flavor, *flavor_availability(flavor, online_by_pool=online)) for flavor in flavors]


def runs_dispatch(run_ids: list[int] | None = None) -> int:
    """Send queued runs (these, or all waiting ones) to workers; returns how many messages were sent."""
    from celery.utils.nodenames import worker_direct

    from .tasks import run_execute

    qs = Run.objects.filter(status=S.QUEUED).select_related("flavor", "pool")
    if run_ids is not None:
        qs = qs.filter(pk__in=run_ids)
    by_group: dict = defaultdict(list)
    # Restarted groups (attempt > 1) go first: they already held resources and lost them to a fault.
    restarted_first = Case(When(attempt__gt=1, then=Value(0)), default=Value(1))
    for run in qs.order_by(restarted_first, "queued_at", "node_rank"):
        by_group[run.group].append(run)
    sent = 0
    now = timezone.now()
    for group, runs in by_group.items():
        first = runs[0]
        busy_nodes = set(Run.objects.filter(group=group, status__in=ACTIVE_STATUSES)
                         .values_list("worker_id", flat=True))
        isolated = {int(pk) for run in runs for pk in run.excluded_workers}
        placement = placement_for(first.flavor, first.pool, len(runs), exclude=(busy_nodes - {None}) | isolated)
        if not placement.ok:
            Run.objects.filter(pk__in=[r.pk for r in runs], status=S.QUEUED).exclude(
                status_reason=placement.reason).update(status_reason=placement.reason)
            Run.objects.filter(pk__in=[r.pk for r in runs], status=S.QUEUED).update(dispatched_at=None)
            continue
        try:
            for index, run in enumerate(runs):
                if placement.use_pool_queue:
                    queue, reason = run.pool.queue, f"Sent to pool {run.pool.name}; waiting for a free worker."
                else:
                    node = placement.nodes[index]
                    queue, reason = worker_direct(node.hostname), f"Sent to {node.hostname}."
                updated = Run.objects.filter(pk=run.pk, attempt=run.attempt, status=S.QUEUED).update(
                    dispatched_at=now, status_reason=reason)
                if updated:
                    run_execute.apply_async(args=[run.pk, run.attempt], queue=queue)
                    sent += 1
        except Exception as exc:  # broker unreachable: stay queued, the sweep sends again
            logger.warning("dispatch of run group %s failed: %s", group, exc)
            Run.objects.filter(pk__in=[r.pk for r in runs], status=S.QUEUED).update(
                dispatched_at=None, status_reason="The message broker is unreachable; the run will be sent when "
                                                  "it is back.")
    return sent


# ---------------------------------------------------------------------------------------------
# Claiming (on the worker)
# ---------------------------------------------------------------------------------------------


def run_claim(*, run_id: int, attempt: int, node: WorkerNode) -> Run | None:
    """Take a queued run for `node`: leases its GPUs and moves it to starting, atomically.

    Returns None, changing nothing but the waiting reason, when the message is stale (other
    attempt, no longer queued), the node cannot serve the flavor, or its GPUs are taken; in the
    last two cases the run goes back to waiting for the next dispatch.
    """
    with transaction.atomic():
        run = Run.objects.select_for_update().select_related("flavor", "pool").filter(pk=run_id).first()
        if run is None or run.attempt != attempt or run.status != S.QUEUED:
            return None
        flavor = run.flavor
        refusal = ""
        if not _fits(node, flavor):
            refusal = f"{node.hostname} cannot serve {flavor.name} ({flavor.summary}); waiting for another worker."
        elif run.node_count > 1 and Run.objects.filter(group=run.group, worker=node,
                                                       status__in=ACTIVE_STATUSES).exists():
            refusal = f"{node.hostname} already runs another node of this run; waiting for another worker."
        indices: list[int] = []
        if not refusal and flavor.gpus:
            taken = set(GpuLease.objects.filter(node=node).values_list("index", flat=True))
            wanted = flavor.gpu_type.lower()
            free = [int(g["index"]) for g in node.gpus if int(g["index"]) not in taken
                    and (not flavor.gpus or not wanted or wanted in str(g.get("name", "")).lower())]
            if len(free) < flavor.gpus:
                refusal = f"Waiting for {_gpu_phrase(flavor.gpus)} to free up ({node.hostname} has {len(free)} free)."
            else:
                indices = sorted(free)[: flavor.gpus]
        if refusal:
            Run.objects.filter(pk=run.pk, attempt=attempt, status=S.QUEUED).update(
                status_reason=refusal, dispatched_at=None)
            return None
        try:
            with transaction.atomic():
                GpuLease.objects.bulk_create([GpuLease(node=node, index=i, run=run) for i in indices])
        except IntegrityError:  # another claim leased one of them first: wait for the next dispatch
            Run.objects.filter(pk=run.pk, attempt=attempt, status=S.QUEUED).update(
                status_reason=f"Waiting for {_gpu_phrase(flavor.gpus)} to free up.", dispatched_at=None)
            return None
        now = timezone.now()
        gpus = f" (GPU {', '.join(map(str, indices))})" if indices else ""
        ok = run_transition(run, S.STARTING, reason="", event=f"Scheduled on {node.hostname}{gpus}.",
                            worker=node, host=node.host, claimed_at=now, heartbeat_at=now, gpu_indices=indices)
        if not ok:
            GpuLease.objects.filter(run=run).delete()
            return None
        run.worker = node
        return run


# ---------------------------------------------------------------------------------------------
# The sweep (beat)
# ---------------------------------------------------------------------------------------------


def _end_lost(run: Run, *, why: str) -> bool:
    """End an active run whose worker is gone: stopped if a stop was asked for, else lost."""
    if run.status == S.STOPPING:
        return run_finish(run, S.STOPPED, reason="Stopped (its worker went away before confirming).",
                          event=f"Stopped: {why} while it was stopping.")
    return run_finish(run, S.LOST, reason=f"Lost: {why}.", event=f"Lost: {why}.", level=EventLevel.ERROR)


def runtime_sweep() -> dict[str, int]:
    """Mark silent workers offline and their runs lost (restarting them when allowed), send
    waiting runs again, and prune old monitoring samples. Safe to run concurrently."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.ATELIER_RUNTIME_LOST_SECONDS)
    offline = 0
    for node in WorkerNode.objects.filter(status=NodeStatus.ONLINE, last_heartbeat__lt=cutoff):
        worker_node_offline(node_id=node.pk, why=f"no heartbeat since {node.last_heartbeat:%Y-%m-%d %H:%M:%S} UTC")
        offline += 1
    lost = 0
    stale = Run.objects.filter(status__in=ACTIVE_STATUSES).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, claimed_at__lt=cutoff)
    ).select_related("worker")
    for run in stale:
        silent = int((now - (run.heartbeat_at or run.claimed_at)).total_seconds())
        worker = run.worker.hostname if run.worker else "its worker"
        if _end_lost(run, why=f"{worker} stopped sending heartbeats ({silent} s ago)"):
            lost += 1
    redispatch_before = now - timedelta(seconds=settings.ATELIER_RUNTIME_REDISPATCH_SECONDS)
    waiting = list(Run.objects.filter(status=S.QUEUED).filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=redispatch_before)).values_list("pk", flat=True))
    sent = runs_dispatch(waiting) if waiting else 0
    keep_after = now - timedelta(hours=settings.ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS)
    pruned, _ = NodeSample.objects.filter(at__lt=keep_after).delete()
    pruned += RunSample.objects.filter(at__lt=keep_after).delete()[0]
    return {"offline": offline, "lost": lost, "sent": sent, "pruned": pruned}
