"""Worker-process hooks: register the node when a Celery worker starts, heartbeat, go offline.

Connected in `RuntimeConfig.ready()`; the signals only fire inside `celery worker`, so
importing this module in the web process is harmless. The heartbeat thread lives in the
worker's main process: with the prefork pool, runs are supervised by the pool's child
processes and each run heartbeats on its own (see `executor.RunHeartbeat`).
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)


class _State:
    node_id: int | None = None
    hostname: str = ""
    stop = threading.Event()
    thread: threading.Thread | None = None


STATE = _State()


def _pool_names(instance) -> list[str]:
    queues = instance.app.amqp.queues
    names = list(getattr(queues, "consume_from", None) or queues.keys())
    return sorted(name[len("pool."):] for name in names if name.startswith("pool.") and len(name) > len("pool."))


def _kill_leftovers(runs) -> None:
    """Kill process groups of runs this hostname ran before it died, if they are still there."""
    import psutil

    for run in runs:
        if not run.pid:
            continue
        try:
            proc = psutil.Process(run.pid)
            if proc.environ().get("ATELIER_RUN_ID") != str(run.pk):
                continue  # the pid was reused by an unrelated process
            os.killpg(run.pid, signal.SIGKILL)
            logger.warning("killed leftover process group %s of run %s", run.pid, run.pk)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue


# Seconds a Docker client command may take while the worker starts (a hung daemon must not keep
# the worker from serving its runs; the next start tries again).
DOCKER_TIMEOUT = 20


def _remove_orphan_containers() -> list[str]:
    """Stop and remove the containers of runs under this worker's work root whose run attempt is
    no longer active; returns their names.

    The model server's container launcher labels each container `atelier.run`, `atelier.attempt`
    and `atelier.workdir` (the run directory, ATELIER_WORK_DIR). A launcher killed outright with
    its worker leaves its container running: nothing else would stop it before that run's next
    attempt starts here. Only containers whose run directory lies in ATELIER_RUNTIME_WORK_ROOT
    are judged (another console may share the daemon, and its run ids mean nothing here), and
    those of attempts still active are kept, whichever worker of this machine supervises them.
    Call it after the stale runs of this worker were ended, so their attempts count as over.
    """
    import shutil
    import subprocess

    from .choices import ACTIVE_STATUSES
    from .models import Run

    docker = shutil.which("docker")
    if docker is None:
        return []
    try:
        listed = subprocess.run([docker, "ps", "--all", "--filter", "label=atelier.workdir", "--format",
                                 '{{.ID}}\t{{.Names}}\t{{.Label "atelier.run"}}\t{{.Label "atelier.attempt"}}'
                                 '\t{{.Label "atelier.workdir"}}'],
                                capture_output=True, text=True, timeout=DOCKER_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        logger.warning("could not list the containers of earlier runs", exc_info=True)
        return []
    if listed.returncode != 0:  # no daemon on this worker, or not ours to use
        return []
    root = os.path.normpath(str(settings.ATELIER_RUNTIME_WORK_ROOT))
    orphans = []
    for line in listed.stdout.splitlines():
        container, name, run_id, attempt, workdir = (line.split("\t") + [""] * 5)[:5]
        if not (run_id.isdigit() and attempt.isdigit()) or os.path.dirname(os.path.normpath(workdir)) != root:
            continue  # not a run of this console as the launcher labels it: not ours to judge
        if not Run.objects.filter(pk=int(run_id), attempt=int(attempt), status__in=ACTIVE_STATUSES).exists():
            orphans.append((container, name))
    if orphans:
        try:
            # `rm --force` kills and removes at once: the attempt is over, nothing waits on a clean stop.
            subprocess.run([docker, "rm", "--force", *(c for c, _n in orphans)], capture_output=True,
                           timeout=DOCKER_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            logger.warning("could not remove the containers of ended runs", exc_info=True)
            return []
        logger.warning("removed containers of ended run attempts: %s", ", ".join(n for _c, n in orphans))
    return [n for _c, n in orphans]


@celeryd_after_setup.connect
def _register(sender, instance, **kwargs):
    from .scheduling import worker_node_register

    pools = _pool_names(instance)
    if not pools:
        # A worker serving only the control queue (sweeps, dispatch) runs no user processes.
        logger.info("worker %s serves no pool: not registered as a compute node", sender)
        return
    node, stale = worker_node_register(hostname=str(sender), pool_names=pools,
                                       slots=int(getattr(instance, "concurrency", 1) or 1), pid=os.getpid())
    _kill_leftovers(stale)
    _remove_orphan_containers()
    STATE.node_id = node.pk
    STATE.hostname = node.hostname
    close_old_connections()
    logger.info("registered worker node %s (pools: %s, GPUs: %d)", node.hostname, ", ".join(pools), node.gpu_count)


def _beat() -> None:
    import psutil

    from .models import WorkerNode
    from .scheduling import gpus_sample, worker_node_heartbeat

    psutil.cpu_percent(interval=None)  # the first call only primes the counter
    gpus = list(WorkerNode.objects.filter(pk=STATE.node_id).values_list("gpus", flat=True))
    gpus = gpus[0] if gpus else []
    # Beat at once: a slow start may have outlasted the registration's heartbeat.
    wait = 0.0
    while not STATE.stop.wait(wait):
        wait = settings.ATELIER_RUNTIME_HEARTBEAT_SECONDS
        try:
            gpu_util, gpu_mem = gpus_sample(gpus)
            worker_node_heartbeat(node_id=STATE.node_id, cpu_percent=psutil.cpu_percent(interval=None),
                                  memory_percent=psutil.virtual_memory().percent,
                                  gpu_percent=gpu_util, gpu_memory_percent=gpu_mem)
        except Exception:  # the database may be restarting: try again next beat
            logger.warning("worker heartbeat failed", exc_info=True)
        finally:
            close_old_connections()


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs):
    if STATE.node_id is None or STATE.thread is not None:
        return
    STATE.stop.clear()
    STATE.thread = threading.Thread(target=_beat, name="atelier-worker-heartbeat", daemon=True)
    STATE.thread.start()


@worker_shutdown.connect
def _offline(sender=None, **kwargs):
    from .scheduling import worker_node_offline

    STATE.stop.set()
    if STATE.node_id is None:
        return
    try:
        worker_node_offline(node_id=STATE.node_id, why="the worker shut down")
    except Exception:
        logger.warning("could not mark worker %s offline", STATE.hostname, exc_info=True)
