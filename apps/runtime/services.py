"""Writes of the run engine: pools, flavors, runs (submit, stop, restart) and run state changes.

Placement, dispatch, worker registration and the sweep live in `scheduling.py`; the
supervision of a process on a worker lives in `executor.py`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.paths import parse, validate_key
from apps.core.permissions import has_perm, require_perm
from apps.core.services import audit_record, event_add, publish_on_commit

from .callbacks import RunChange, owner_notify_on_commit
from .choices import ACTIVE_STATUSES, LIVE_STATUSES, TERMINAL_STATUSES, HangAction, JobType, PoolStatus, RunStatus
from .exitcodes import exit_code_label
from .models import Flavor, GpuLease, Pool, Run

S = RunStatus

# Allowed previous states for each target state (the docstring of `Run` in words).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.STARTING: frozenset({S.QUEUED}),
    S.RUNNING: frozenset({S.STARTING}),
    S.STOPPING: frozenset({S.STARTING, S.RUNNING}),
    S.SUCCEEDED: frozenset({S.RUNNING, S.STOPPING}),
    S.FAILED: frozenset({S.STARTING, S.RUNNING, S.STOPPING}),
    S.STOPPED: frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.STOPPING}),
    S.LOST: frozenset(ACTIVE_STATUSES),
    S.QUEUED: frozenset(TERMINAL_STATUSES),
}

POOL_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$|^[a-z]$")
FLAVOR_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}[a-z0-9]$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
IO_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Limits that keep one submission's row and the worker's argv/env within sane sizes.
MAX_ARGS = 1000
MAX_ARG_CHARS = 100_000
MAX_ENV_VARS = 200
MAX_ENV_VALUE_CHARS = 32_768
MAX_IO_ENTRIES = 50
MAX_NODES = 64
MAX_RUNTIME_LIMIT = 30 * 24 * 3600  # longest max_runtime a run may ask for: 30 days


# ---------------------------------------------------------------------------------------------
# Pools and flavors (platform objects: staff only)
# ---------------------------------------------------------------------------------------------


def _require_staff(user, action: str) -> None:
    if not has_perm(user, None, action):
        raise PermissionDenied(f"Only platform administrators manage pools and flavors ({action}).")


def _clean_job_types(job_types: Iterable[str]) -> list[str]:
    values = list(dict.fromkeys(job_types))
    unknown = [value for value in values if value not in JobType.values]
    if unknown:
        raise ValidationError({"job_types": [f"Unknown job type {unknown[0]!r}; use {', '.join(JobType.values)}."]})
    if not values:
        raise ValidationError({"job_types": ["Choose at least one job type."]})
    return values


def _clean_pool_name(name: str) -> str:
    if not POOL_NAME_RE.match(name or ""):
        raise ValidationError({"name": [
            "A pool name has 1–40 characters: lowercase letters, digits and hyphens, starting with a letter "
            "and not ending with a hyphen."
        ]})
    return name


@transaction.atomic
def pool_create(*, actor, name: str, description: str = "", job_types: Iterable[str] = tuple(JobType.values),
                status: str = PoolStatus.ENABLED, dedicated: bool = False) -> Pool:
    """Create a pool (staff). Its queue is `pool.<name>`; workers join it with `-Q pool.<name>`.
    `dedicated` marks a pool that serves one team (wider run-as uid range for training jobs)."""
    _require_staff(actor, "pool:create")
    name = _clean_pool_name(name)
    if Pool.objects.filter(name=name).exists():
        raise ValidationError({"name": [f'A pool named "{name}" already exists.']})
    if status not in PoolStatus.values:
        raise ValidationError({"status": [f"Unknown status {status!r}."]})
    pool = Pool.objects.create(name=name, description=description.strip(), job_types=_clean_job_types(job_types),
                               status=status, dedicated=bool(dedicated))
    audit_record(actor=actor, action="pool:create", obj=pool)
    return pool


@transaction.atomic
def pool_update(*, actor, pool: Pool, description: str | None = None, job_types: Iterable[str] | None = None,
                status: str | None = None, dedicated: bool | None = None) -> Pool:
    """Change a pool's description, job types, status or dedicated flag (staff). The name, hence the
    queue, is fixed."""
    _require_staff(actor, "pool:update")
    if description is not None:
        pool.description = description.strip()
    if job_types is not None:
        pool.job_types = _clean_job_types(job_types)
    if status is not None:
        if status not in PoolStatus.values:
            raise ValidationError({"status": [f"Unknown status {status!r}."]})
        pool.status = status
    if dedicated is not None:
        pool.dedicated = bool(dedicated)
    pool.save()
    audit_record(actor=actor, action="pool:update", obj=pool)
    return pool


@transaction.atomic
def pool_delete(*, actor, pool: Pool) -> None:
    """Delete a pool no run ever used (staff); used pools can only be disabled."""
    _require_staff(actor, "pool:delete")
    name = pool.name
    try:
        pool.delete()
    except ProtectedError:
        raise ValidationError(f'Pool "{name}" has runs; disable it instead of deleting it.') from None
    audit_record(actor=actor, action="pool:delete", object_repr=name)


def _clean_flavor(*, cpus: int, memory_mb: int, gpus: int) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(cpus, int) or cpus < 1 or cpus > 4096:
        errors["cpus"] = ["CPU cores must be a whole number from 1 to 4096."]
    if not isinstance(memory_mb, int) or memory_mb < 64 or memory_mb > 64 * 1024 * 1024:
        errors["memory_mb"] = ["Memory must be a whole number of MiB from 64 to 67108864."]
    if not isinstance(gpus, int) or gpus < 0 or gpus > 64:
        errors["gpus"] = ["GPUs must be a whole number from 0 to 64."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def flavor_create(*, actor, name: str, cpus: int, memory_mb: int, gpus: int = 0, gpu_type: str = "",
                  description: str = "", pools: Iterable[Pool] = ()) -> Flavor:
    """Create a flavor offered by `pools` (staff)."""
    _require_staff(actor, "flavor:create")
    if not FLAVOR_NAME_RE.match(name or ""):
        raise ValidationError({"name": [
            "A flavor name has 2–64 characters: lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit."
        ]})
    if Flavor.objects.filter(name=name).exists():
        raise ValidationError({"name": [f'A flavor named "{name}" already exists.']})
    _clean_flavor(cpus=cpus, memory_mb=memory_mb, gpus=gpus)
    flavor = Flavor.objects.create(name=name, cpus=cpus, memory_mb=memory_mb, gpus=gpus, gpu_type=gpu_type.strip(),
                                   description=description.strip())
    flavor.pools.set(list(pools))
    audit_record(actor=actor, action="flavor:create", obj=flavor)
    return flavor


@transaction.atomic
def flavor_update(*, actor, flavor: Flavor, description: str | None = None, pools: Iterable[Pool] | None = None,
                  cpus: int | None = None, memory_mb: int | None = None, gpus: int | None = None,
                  gpu_type: str | None = None) -> Flavor:
    """Change a flavor (staff). Runs already submitted keep the resources they were placed with."""
    _require_staff(actor, "flavor:update")
    cpus = flavor.cpus if cpus is None else cpus
    memory_mb = flavor.memory_mb if memory_mb is None else memory_mb
    gpus = flavor.gpus if gpus is None else gpus
    _clean_flavor(cpus=cpus, memory_mb=memory_mb, gpus=gpus)
    flavor.cpus, flavor.memory_mb, flavor.gpus = cpus, memory_mb, gpus
    if gpu_type is not None:
        flavor.gpu_type = gpu_type.strip()
    if description is not None:
        flavor.description = description.strip()
    flavor.save()
    if pools is not None:
        flavor.pools.set(list(pools))
    audit_record(actor=actor, action="flavor:update", obj=flavor)
    return flavor


@transaction.atomic
def flavor_delete(*, actor, flavor: Flavor) -> None:
    """Delete a flavor no run ever used (staff)."""
    _require_staff(actor, "flavor:delete")
    name = flavor.name
    try:
        flavor.delete()
    except ProtectedError:
        raise ValidationError(f'Flavor "{name}" has runs and cannot be deleted.') from None
    audit_record(actor=actor, action="flavor:delete", object_repr=name)


# ---------------------------------------------------------------------------------------------
# Submitting runs
# ---------------------------------------------------------------------------------------------


def _clean_command(command) -> list[str]:
    if isinstance(command, str) or not isinstance(command, (list, tuple)) or not command:
        raise ValidationError({"command": ["Give the command as a non-empty list of arguments."]})
    if len(command) > MAX_ARGS:
        raise ValidationError({"command": [f"The command has {len(command)} arguments; at most {MAX_ARGS}."]})
    for index, arg in enumerate(command):
        if not isinstance(arg, str):
            raise ValidationError({"command": [f"Argument {index + 1} is not text."]})
        if "\x00" in arg:
            raise ValidationError({"command": [f"Argument {index + 1} contains a NUL character."]})
        if len(arg) > MAX_ARG_CHARS:
            raise ValidationError({"command": [f"Argument {index + 1} is longer than {MAX_ARG_CHARS} characters."]})
    if not command[0].strip():
        raise ValidationError({"command": ["The program (first argument) is empty."]})
    return list(command)


def _clean_env(env) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise ValidationError({"env": ["Give environment variables as an object of NAME: value."]})
    if len(env) > MAX_ENV_VARS:
        raise ValidationError({"env": [f"{len(env)} variables given; at most {MAX_ENV_VARS}."]})
    clean = {}
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise ValidationError({"env": [f"{name!r} is not a valid variable name (letters, digits, _; "
                                           f"not starting with a digit)."]})
        if name.upper().startswith("ATELIER_"):
            raise ValidationError({"env": [f"{name}: names starting with ATELIER_ are set by Atelier."]})
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValidationError({"env": [f"{name}: the value must be text or a number."]})
        value = str(value)
        if "\x00" in value or len(value) > MAX_ENV_VALUE_CHARS:
            raise ValidationError({"env": [f"{name}: the value contains NUL or is longer than "
                                           f"{MAX_ENV_VALUE_CHARS} characters."]})
        clean[name] = value
    return clean


def _clean_io(entries, field: str, user, *, output: bool) -> list[dict[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        raise ValidationError({field: ["Give a list of {name, uri} entries."]})
    if len(entries) > MAX_IO_ENTRIES:
        raise ValidationError({field: [f"{len(entries)} entries given; at most {MAX_IO_ENTRIES}."]})
    from apps.storage.selectors import storage_path_resolve

    clean, seen = [], set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValidationError({field: ["Each entry is an object with a name and a uri."]})
        name = entry.get("name")
        if not isinstance(name, str) or not IO_NAME_RE.match(name):
            raise ValidationError({field: [f"{name!r} is not a valid name (letters, digits, _; at most 64)."]})
        if name in seen:
            raise ValidationError({field: [f'The name "{name}" is used twice.']})
        seen.add(name)
        try:
            path = storage_path_resolve(user, entry.get("uri") or "", "storage:create" if output else "storage:view",
                                        must_exist=not output)
        except ValidationError as exc:
            raise ValidationError({field: [f"{name}: {message}" for message in exc.messages]}) from None
        item: dict[str, Any] = {"name": name, "uri": path.uri}
        if output:
            item["preload"] = bool(entry.get("preload", False))
        clean.append(item)
    return clean


def _clean_positive(value, field: str, *, upper: int) -> int | None:
    if value in (None, ""):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > upper:
        raise ValidationError({field: [f"Give a whole number of seconds from 1 to {upper}."]})
    return value


def run_log_path(run: Run):
    """Where the run's log lives in storage (one file per run, i.e. per node of a group)."""
    from apps.core.paths import StoragePath

    # The group's UUID keeps a reused primary key (a reset database) from appending to an old log.
    return StoragePath(settings.ATELIER_RUNTIME_LOG_BUCKET, f"runtime/runs/{run.group.hex}/{run.task_name}.log")


def run_submit(
    *,
    user,
    workspace,
    name: str,
    command: list[str],
    flavor: Flavor,
    pool: Pool,
    job_type: str = JobType.TRAINING,
    env: dict[str, str] | None = None,
    working_dir: str = "",
    inputs: list[dict] | None = None,
    outputs: list[dict] | None = None,
    node_count: int = 1,
    max_restarts: int = 0,
    max_runtime_seconds: int | None = None,
    stop_grace_seconds: int | None = None,
    hang_seconds: int | None = None,
    hang_action: str = HangAction.EVENT,
    long_lived: bool = False,
    health_path: str = "",
    health_tls: bool = False,
    owner_type: str = "",
    owner_id: str = "",
) -> list[Run]:
    """Queue a run (one row per node) in `workspace` and dispatch it after commit.

    Needs run:create. Inputs must exist and be readable by the user, outputs writable.
    Returns the rows in rank order. A run no worker can serve yet stays queued with the reason.
    A long-lived run is ready once its port answers, or, with `health_path`, once that path
    answers 2xx (over TLS with `health_tls`, the certificate not verified).
    """
    require_perm(user, workspace, "run:create")
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = ["Give a name of 1–200 characters."]
    if job_type not in JobType.values:
        errors["job_type"] = [f"Unknown job type {job_type!r}; use {', '.join(JobType.values)}."]
    if pool.status != PoolStatus.ENABLED:
        errors["pool"] = [f'Pool "{pool.name}" is disabled.']
    elif job_type in JobType.values and job_type not in pool.job_types:
        errors["pool"] = [f'Pool "{pool.name}" does not accept {JobType(job_type).label.lower()} runs.']
    if not flavor.pools.filter(pk=pool.pk).exists():
        errors["flavor"] = [f'Pool "{pool.name}" does not offer flavor "{flavor.name}".']
    if not isinstance(node_count, int) or isinstance(node_count, bool) or not 1 <= node_count <= MAX_NODES:
        errors["node_count"] = [f"Give a number of nodes from 1 to {MAX_NODES}."]
    elif node_count > 1 and long_lived:
        errors["node_count"] = ["A long-lived run (notebook, model server) runs on one node."]
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or not 0 <= max_restarts <= 3:
        errors["max_restarts"] = ["Automatic restarts: give 0, 1, 2 or 3."]
    if hang_action not in HangAction.values:
        errors["hang_action"] = [f"Unknown hang action {hang_action!r}; use {', '.join(HangAction.values)}."]
    if health_path and (not health_path.startswith("/") or len(health_path) > 255
                        or any(c.isspace() for c in health_path)):
        errors["health_path"] = ["A health path starts with / and has no spaces (e.g. /health)."]
    if errors:
        raise ValidationError(errors)
    command = _clean_command(command)
    env = _clean_env(env)
    if working_dir:
        try:
            validate_key(working_dir.strip("/"))
        except ValidationError as exc:
            raise ValidationError({"working_dir": exc.messages}) from None
        working_dir = working_dir.strip("/")
    inputs = _clean_io(inputs, "inputs", user, output=False)
    outputs = _clean_io(outputs, "outputs", user, output=True)
    for out in outputs:
        for inp in inputs:
            if parse(out["uri"]).is_within(parse(inp["uri"])):
                raise ValidationError({"outputs": [f'{out["name"]}: the output {out["uri"]} lies inside the input '
                                                   f'{inp["uri"]}; choose a separate folder.']})
    max_runtime_seconds = _clean_positive(max_runtime_seconds, "max_runtime_seconds", upper=MAX_RUNTIME_LIMIT)
    stop_grace_seconds = _clean_positive(stop_grace_seconds, "stop_grace_seconds", upper=3600)
    hang_seconds = _clean_positive(hang_seconds, "hang_seconds", upper=MAX_RUNTIME_LIMIT)

    with transaction.atomic():
        # Registered first so it runs first after commit: dispatch latency should not wait for
        # the realtime messages of the events below.
        run_ids: list[int] = []
        transaction.on_commit(lambda: _dispatch_later(run_ids))
        now = timezone.now()
        first = None
        runs = []
        for rank in range(node_count):
            run = Run(
                workspace=workspace, created_by=user, owner_type=owner_type, owner_id=str(owner_id or ""),
                name=name, job_type=job_type, command=command, env=env, working_dir=working_dir, inputs=inputs,
                outputs=outputs, flavor=flavor, pool=pool, node_rank=rank, node_count=node_count,
                max_restarts=max_restarts, max_runtime_seconds=max_runtime_seconds,
                stop_grace_seconds=stop_grace_seconds, hang_seconds=hang_seconds, hang_action=hang_action,
                long_lived=long_lived, health_path=health_path, health_tls=bool(health_tls), queued_at=now,
                status_reason="Waiting to be sent to a worker.",
            )
            if first is not None:
                run.group = first.group
            run.log_uri = run_log_path(run).uri
            run.save()
            first = first or run
            runs.append(run)
            event_add(obj=run, message=f"{_node_prefix(run)}Queued in pool {pool.name} with flavor {flavor.name} "
                                       f"({flavor.summary}).")
        audit_record(actor=user, action="run:create", obj=first, workspace=workspace,
                     detail={"nodes": node_count, "pool": pool.name, "flavor": flavor.name})
        run_ids.extend(run.pk for run in runs)
    return runs


def _dispatch_later(run_ids: list[int]) -> None:
    from .scheduling import runs_dispatch

    runs_dispatch(run_ids)


def _node_prefix(run: Run) -> str:
    return f"[{run.task_name}] " if run.node_count > 1 else ""


# ---------------------------------------------------------------------------------------------
# State changes
# ---------------------------------------------------------------------------------------------


def run_transition(run: Run, to: str, *, reason: str | None = None, event: str | None = None,
                   level: str = EventLevel.INFO, require: Iterable[str] | None = None, **fields) -> bool:
    """Move `run` to status `to` if it is still at its attempt and in an allowed previous state.

    A compare-and-set in the database: returns False (and changes nothing) when another actor
    moved the run first. On success `run` is refreshed, the event is recorded, watchers get the
    new status and the owner is told after commit; GPU leases are released on terminal states.
    """
    allowed = set(require) if require is not None else set(TRANSITIONS[to])
    previous = run.status
    now = timezone.now()
    values = dict(fields)
    values["status"] = to
    if reason is not None:
        values["status_reason"] = reason[:500]
    if to in TERMINAL_STATUSES:
        values.setdefault("finished_at", now)
    with transaction.atomic():
        updated = Run.objects.filter(pk=run.pk, attempt=run.attempt, status__in=allowed).update(**values)
        if not updated:
            return False
        if to in TERMINAL_STATUSES:
            GpuLease.objects.filter(run_id=run.pk).delete()
        run.refresh_from_db()
        if to in TERMINAL_STATUSES:
            _attempt_record(run)
        if event:
            event_add(obj=run, message=f"{_node_prefix(run)}{event}", level=level)
        publish_on_commit(run.group_channel, run_status_payload(run))
        owner_notify_on_commit(RunChange(run_id=run.pk, owner_type=run.owner_type, owner_id=run.owner_id,
                                         kind="status", previous=previous, status=to, reason=run.status_reason,
                                         exit_code=run.exit_code))
    return True


def _attempt_record(run: Run) -> None:
    """Keep how this attempt ended (the run row is reused by the next one): fault-recovery history."""
    from .models import RunAttempt

    RunAttempt.objects.update_or_create(run=run, attempt=run.attempt, defaults={
        "status": run.status, "reason": run.status_reason[:500], "exit_code": run.exit_code, "host": run.host,
        "worker_name": run.worker.hostname if run.worker_id and run.worker else "",
        "started_at": run.started_at or run.claimed_at, "finished_at": run.finished_at})


def run_status_payload(run: Run) -> dict[str, Any]:
    """What live views receive when the status changes."""
    return {
        "kind": "status",
        "status": run.status,
        "label": run.get_status_display(),
        "reason": run.status_reason,
        "exit_code": run.exit_code,
        "exit_text": exit_code_label(run.exit_code),
        "attempt": run.attempt,
        "worker": run.worker.hostname if run.worker_id and run.worker else "",
        "endpoint": run.endpoint,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _group_runs(run: Run) -> list[Run]:
    return list(Run.objects.filter(group=run.group).order_by("node_rank"))


def run_stop(*, user, run: Run, reason: str = "") -> Run:
    """Stop a run, and every node of its group: queued nodes end at once, active ones get
    SIGTERM then SIGKILL after the grace period (the supervisor polls the request). Needs run:stop."""
    require_perm(user, run.workspace, "run:stop")
    nodes = _group_runs(run)
    if not any(node.status in LIVE_STATUSES for node in nodes):
        raise ValidationError(f"The run is already {run.get_status_display().lower()}; there is nothing to stop.")
    who = user.get_username() if user is not None and user.is_authenticated else "the system"
    with transaction.atomic():
        for node in nodes:
            run_node_stop(node, reason=reason or f"Stopped by {who}.")
        audit_record(actor=user, action="run:stop", obj=run, workspace=run.workspace)
    run.refresh_from_db()
    return run


def run_node_stop(node: Run, *, reason: str, level: str = EventLevel.INFO) -> None:
    """Stop one node on the system's behalf, without a permission check (peers of a failed node, a hang)."""
    if node.status == S.QUEUED:
        run_transition(node, S.STOPPED, reason=reason, event=f"{reason} Removed from the queue.", level=level)
    elif node.status in (S.STARTING, S.RUNNING):
        run_transition(node, S.STOPPING, reason=reason, event=reason, level=level,
                       stop_requested_at=timezone.now())


def run_restart(*, user, run: Run) -> Run:
    """Run a finished run again (all nodes of its group): a new attempt on the same row, same log.

    Needs run:restart; refused while any node is still live.
    """
    require_perm(user, run.workspace, "run:restart")
    nodes = _group_runs(run)
    live = [node for node in nodes if node.status not in TERMINAL_STATUSES]
    if live:
        raise ValidationError(f"The run is {live[0].get_status_display().lower()}; stop it before restarting it.")
    with transaction.atomic():
        for node in nodes:
            _requeue(node, event=f"Restarted by {user.get_username()} (attempt {node.attempt + 1}).", automatic=False)
        audit_record(actor=user, action="run:restart", obj=run, workspace=run.workspace)
        ids = [node.pk for node in nodes]
        transaction.on_commit(lambda: _dispatch_later(ids))
    run.refresh_from_db()
    return run


def _requeue(run: Run, *, event: str, automatic: bool) -> bool:
    fields = dict(
        attempt=run.attempt + 1, exit_code=None, worker=None, pid=None, gpu_indices=[], claimed_at=None,
        started_at=None, finished_at=None, heartbeat_at=None, dispatched_at=None, stop_requested_at=None,
        hang_detected_at=None, queued_at=timezone.now(), endpoint="", ready_at=None, port=None,
        master_addr="", master_port=None,
    )
    if automatic:
        fields["auto_restarts"] = run.auto_restarts + 1
    ok = run_transition(run, S.QUEUED, reason="Waiting to be sent to a worker.", event=event, **fields)
    return ok


def run_finish(run: Run, to: str, *, reason: str, event: str, exit_code: int | None = None,
               level: str = EventLevel.INFO, **fields) -> bool:
    """End an active run (worker or sweep), then apply the group and restart rules.

    A failed or lost node stops its live peers; when every node of the group has ended and
    one of them failed or was lost, the whole group is queued again while restarts remain.
    """
    with transaction.atomic():
        if not run_transition(run, to, reason=reason, event=event, level=level, exit_code=exit_code, **fields):
            return False
        failed = to in (S.FAILED, S.LOST)
        nodes = _group_runs(run) if run.node_count > 1 else [run]
        if failed and run.node_count > 1:
            for peer in nodes:
                if peer.pk != run.pk and peer.status in LIVE_STATUSES:
                    why = f"Node {run.node_rank} ended ({reason.rstrip('.')}); stopping the others."
                    run_node_stop(peer, reason=why, level=EventLevel.WARNING)
            nodes = _group_runs(run)
        if all(node.status in TERMINAL_STATUSES for node in nodes):
            _maybe_auto_restart(nodes)
    return True


# A run that exceeded its maximum runtime is not restarted automatically: it would time out again.
REASON_MAX_RUNTIME = "Exceeded its maximum runtime."


def _maybe_auto_restart(nodes: list[Run]) -> None:
    """Queue the group again when a node failed or was lost and its restart budget allows."""
    if any(n.status_reason == REASON_MAX_RUNTIME for n in nodes):
        return
    culprit = next((n for n in nodes if n.status in (S.FAILED, S.LOST)), None)
    if culprit is None:
        return
    # A node stopped on purpose by a user ends the group; peers stopped because of the culprit do not.
    if any(n.status == S.STOPPED and not n.status_reason.startswith(f"Node {culprit.node_rank} ended") for n in nodes):
        return
    if culprit.auto_restarts >= culprit.max_restarts:
        return
    cause = "lost worker" if culprit.status == S.LOST else f"failure ({culprit.status_reason.rstrip('.')})"
    number = culprit.auto_restarts + 1
    for node in nodes:
        _requeue(node, event=f"Restarted ({number}/{node.max_restarts}) after {cause}.", automatic=True)
    ids = [node.pk for node in nodes]
    transaction.on_commit(lambda: _dispatch_later(ids))


def run_group_exclude_worker(run: Run, *, worker_id: int, why: str) -> bool:
    """Keep every node of `run`'s group off worker `worker_id` from now on (a node that failed its
    environment checks is isolated, as ModelArts does); True if it was not excluded yet."""
    nodes = _group_runs(run)
    if all(worker_id in node.excluded_workers for node in nodes):
        return False
    for node in nodes:
        if worker_id not in node.excluded_workers:
            Run.objects.filter(pk=node.pk).update(excluded_workers=[*node.excluded_workers, worker_id])
    event_add(obj=run, level=EventLevel.WARNING, message=f"{_node_prefix(run)}{why}")
    return True


def run_mark_ready(run: Run, *, endpoint: str, port: int) -> bool:
    """A long-lived run answers its health URL: record `host:port` and tell watchers and the owner."""
    with transaction.atomic():
        updated = Run.objects.filter(pk=run.pk, attempt=run.attempt, status=S.RUNNING).update(
            endpoint=endpoint, port=port, ready_at=timezone.now()
        )
        if not updated:
            return False
        run.refresh_from_db()
        event_add(obj=run, message=f"Ready at {endpoint}.")
        publish_on_commit(run.group_channel, run_status_payload(run))
        owner_notify_on_commit(RunChange(run_id=run.pk, owner_type=run.owner_type, owner_id=run.owner_id,
                                         kind="ready", previous=run.status, status=run.status))
    return True


def run_report_hang(run: Run, *, idle_seconds: int, why: str = "no output and almost no CPU use") -> bool:
    """Record a suspected hang once per episode (`why`, e.g. no output and ~no CPU, for `idle_seconds`)."""
    idle = f"{idle_seconds // 60} min" if idle_seconds >= 120 else f"{idle_seconds} s"
    with transaction.atomic():
        updated = Run.objects.filter(pk=run.pk, attempt=run.attempt, hang_detected_at__isnull=True).update(
            hang_detected_at=timezone.now()
        )
        if not updated:
            return False
        run.refresh_from_db()
        action = " Stopping it, as configured." if run.hang_action == HangAction.STOP else ""
        event_add(obj=run, level=EventLevel.WARNING,
                  message=f"{_node_prefix(run)}Suspected hang: {why} for {idle}.{action}")
        publish_on_commit(run.group_channel, run_status_payload(run) | {"hang": True})
        # The owner records its own event and notifies subscribers; the run is not stopped here.
        owner_notify_on_commit(RunChange(run_id=run.pk, owner_type=run.owner_type, owner_id=run.owner_id,
                                         kind="hang", previous=run.status, status=run.status,
                                         reason=f"{why} for {idle}"))
    return True


def run_clear_hang(run: Run) -> None:
    """Output or CPU use resumed: a later hang is reported again."""
    Run.objects.filter(pk=run.pk, attempt=run.attempt).update(hang_detected_at=None)


def runtime_bootstrap() -> dict[str, list[str]]:
    """Make sure the `local` pool and flavors sized to this machine exist; idempotent.

    Existing pools and flavors are left as they are (an operator may have edited them).
    Returns the names created, for the command's output.
    """
    import psutil

    from .scheduling import gpus_discover

    created: dict[str, list[str]] = {"pools": [], "flavors": []}
    with transaction.atomic():
        pool, made = Pool.objects.get_or_create(
            name="local",
            defaults={"description": "This machine: the embedded worker started by `make run`.",
                      "job_types": list(JobType.values)},
        )
        if made:
            created["pools"].append(pool.name)
        cpus = psutil.cpu_count(logical=True) or 1
        memory_mb = psutil.virtual_memory().total // (1024 * 1024)
        specs = []
        size = 1
        while size <= cpus:
            # 2 GiB per core, capped at three quarters of the machine so the console keeps room.
            specs.append((f"cpu-{size}c-{min(2 * size, memory_mb * 3 // 4 // 1024) or 1}g", size,
                          min(2048 * size, memory_mb * 3 // 4), 0))
            size *= 2
        gpus = gpus_discover()
        if gpus:
            count = 1
            while count <= len(gpus):
                per_gpu_cpus = max(1, min(cpus, 4 * count))
                specs.append((f"gpu-{count}x-{per_gpu_cpus}c", per_gpu_cpus, min(8192 * count, memory_mb * 3 // 4),
                              count))
                count *= 2
        for name, flavor_cpus, flavor_mem, flavor_gpus in specs:
            try:
                with transaction.atomic():
                    flavor, made = Flavor.objects.get_or_create(
                        name=name, defaults={"cpus": flavor_cpus, "memory_mb": max(64, flavor_mem),
                                             "gpus": flavor_gpus,
                                             "description": "Sized to this machine at first start."},
                    )
            except IntegrityError:  # a concurrent bootstrap created it first
                continue
            if made:
                flavor.pools.add(pool)
                created["flavors"].append(name)
    return created
