"""Writes of the edge module: nodes (enrol, heartbeat, freeze, activate, log settings, delete),
pools (create, bind, delete), edge services (deploy, delete, run callbacks), load balancers
and access ports. Every refusal is a ValidationError naming the field and the rule."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add
from apps.runtime.choices import PoolStatus, RunStatus
from apps.runtime.models import Flavor, Pool, Run

from .choices import Accelerator, ActivationStatus, EdgeNodeStatus, LogLevel
from .models import AccessPort, EdgeNode, EdgeNodeSample, EdgePool, LoadBalancer

# seed-06 §7.4: Chinese, letters, digits, _ and -, 1–64 characters.
NAME_RE = re.compile(r"^[\w\-]{1,64}$")
# seed-06 §7.4: the description forbids these and ASCII control characters.
DESCRIPTION_FORBIDDEN = set("#~^$%&*<>[]\\/") | {chr(c) for c in range(32)}
MAX_ACTIVATE = 50  # nodes per activation (seed-06 §7.4)
ACTIVATION_MONTHS = (1, 3)
MAX_MASTERS = 3
AGENT_FILE = Path(__file__).with_name("agent.py")
AGENT_VERSION_RE = re.compile(r'^VERSION = "([^"]{1,32})"$', re.M)


def agent_bundle() -> dict:
    """The agent program the console hands out on upgrade: {"version", "files": {"agent.py": source},
    "sha256": {"agent.py": hex}}. The version is the VERSION the file itself declares, so the
    console's installed agent is always the current one."""
    source = AGENT_FILE.read_text()
    match = AGENT_VERSION_RE.search(source)
    return {"version": match.group(1) if match else "", "files": {"agent.py": source},
            "sha256": {"agent.py": hashlib.sha256(source.encode()).hexdigest()}}


def agent_version_current() -> str:
    return agent_bundle()["version"]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _name(value: str, field: str = "name") -> str:
    value = (value or "").strip()
    if not NAME_RE.match(value):
        raise ValidationError({field: ["Use 1–64 letters, digits, _ or - (Chinese characters are fine)."]})
    return value


def _description(value: str) -> str:
    value = value or ""
    if len(value) > 255:
        raise ValidationError({"description": ["Keep the description to 255 characters or fewer."]})
    bad = sorted(set(value) & DESCRIPTION_FORBIDDEN)
    if bad:
        shown = " ".join(repr(c) if ord(c) < 32 else c for c in bad)
        raise ValidationError({"description": [f"The description may not contain {shown}."]})
    return value


def _int_in(value, field: str, low: int, high: int, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: [f"{what} must be a whole number from {low} to {high}."]}) from None
    if not low <= number <= high:
        raise ValidationError({field: [f"{what} must be from {low} to {high}; got {number}."]})
    return number


def _log_settings(retention, system_level, app_level, rotate_days) -> dict:
    levels = LogLevel.values
    for field, level in (("system_log_level", system_level), ("app_log_level", app_level)):
        if level not in levels:
            raise ValidationError({field: [f"Use one of {', '.join(levels)}."]})
    return {"log_retention_days": _int_in(retention, "log_retention_days", 1, 30, "Log retention (days)"),
            "system_log_level": system_level, "app_log_level": app_level,
            "log_rotate_days": _int_in(rotate_days, "log_rotate_days", 1, 30, "Rolling period (days)")}


def _runtime_pool(name: str, description: str) -> Pool:
    """The run-engine pool (Celery queue `pool.<name>`) an edge target's agents consume; it offers
    every CPU flavor — the agent's machine is what it is, and the engine still checks capacity."""
    pool, _ = Pool.objects.get_or_create(name=name, defaults={"description": description, "job_types": ["inference"]})
    pool.flavors.add(*Flavor.objects.filter(gpus=0))
    return pool


def _runtime_pool_retire(pool: Pool | None) -> None:
    """Delete a deleted target's run-engine pool, or disable it while runs (history) still name it."""
    if pool is None:
        return
    if Run.objects.filter(pool=pool).exists():
        pool.status = PoolStatus.DISABLED
        pool.save(update_fields=["status"])
    else:
        pool.delete()


# ---------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------


def _new_token(node: EdgeNode) -> str:
    token = "edg_" + secrets.token_urlsafe(32)
    node.token_hash = _hash(token)
    node.token_expires_at = timezone.now() + timedelta(hours=settings.ATELIER_EDGE_TOKEN_HOURS)
    node.token_used_at = None
    return token


@transaction.atomic
def edge_node_create(*, user, workspace, name: str, description: str = "", accelerator: str = Accelerator.NONE,
                     log_retention_days=7, system_log_level: str = LogLevel.DEBUG,
                     app_log_level: str = LogLevel.DEBUG, log_rotate_days=5) -> tuple[EdgeNode, str]:
    """Create a node and its one-time enrolment token (returned once; only its hash is kept, valid
    ATELIER_EDGE_TOKEN_HOURS). Needs service:create. The node stays UNCONNECTED until the agent enrols."""
    require_perm(user, workspace, "service:create")
    name = _name(name)
    description = _description(description)
    if accelerator not in Accelerator.values:
        raise ValidationError({"accelerator": [f"Use one of {', '.join(Accelerator.values)}."]})
    logs = _log_settings(log_retention_days, system_log_level, app_log_level, log_rotate_days)
    if EdgeNode.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'An edge node named "{name}" already exists in this workspace.']})
    node = EdgeNode(workspace=workspace, name=name, description=description, accelerator=accelerator,
                    created_by=user, **logs)
    token = _new_token(node)
    node.save()
    node.pool = _runtime_pool(f"edge-node-{node.pk}", f"Edge node {name} (workspace {workspace.pk}).")
    node.save(update_fields=["pool"])
    event_add(obj=node, message="Edge node created; waiting for its agent to enrol.")
    audit_record(actor=user, action="edge_node:create", obj=node, workspace=workspace)
    return node, token


@transaction.atomic
def edge_node_token_renew(*, user, node: EdgeNode) -> str:
    """A fresh one-time token for a node whose agent has not enrolled yet (the old one stops working)."""
    require_perm(user, node.workspace, "service:create")
    if node.agent_key_hash:
        raise ValidationError({"token": ["This node's agent has already enrolled; a new token is not needed."]})
    token = _new_token(node)
    node.save(update_fields=["token_hash", "token_expires_at", "token_used_at", "updated_at"])
    return token


class EnrolError(Exception):
    """The token cannot enrol an agent; the message says why (unknown, spent or expired)."""


def edge_node_enroll(*, token: str, host: str = "", os_name: str = "", arch: str = "",
                     agent_version: str = "") -> tuple[EdgeNode, str]:
    """Spend a one-time token: the node gets the agent's facts and an agent key (returned once)
    the agent authenticates its heartbeats with. Refuses unknown, spent and expired tokens."""
    digest = _hash(token or "")
    with transaction.atomic():
        node = EdgeNode.objects.select_for_update().filter(token_hash=digest).first()
        if node is None:
            raise EnrolError("Unknown enrolment token.")
        if node.token_used_at is not None:
            raise EnrolError("This enrolment token was already used; create a new one on the node's page.")
        if node.token_expires_at is None or node.token_expires_at <= timezone.now():
            raise EnrolError("This enrolment token expired (tokens are valid "
                             f"{settings.ATELIER_EDGE_TOKEN_HOURS} h); create a new one on the node's page.")
        key = "eak_" + secrets.token_urlsafe(32)
        node.token_used_at = timezone.now()
        node.agent_key_hash = _hash(key)
        node.host, node.os, node.arch = host[:255], os_name[:100], arch[:32]
        node.agent_version = agent_version[:32]
        node.save()
        event_add(obj=node, message=f"Agent enrolled from {node.host or 'an unknown host'} ({node.os} {node.arch}).")
    return node, key


def edge_node_by_agent_key(key: str) -> EdgeNode | None:
    return EdgeNode.objects.select_related("pool", "edge_pool__pool").filter(agent_key_hash=_hash(key or "")).first() \
        if key else None


def agent_config(node: EdgeNode) -> dict:
    """What the agent applies: its queues, its log settings and the load balancers it runs."""
    queues = [node.pool.queue] if node.pool else []
    if node.edge_pool_id and node.edge_pool.pool:
        queues.append(node.edge_pool.pool.queue)
    balancers = []
    lbs = LoadBalancer.objects.filter(workspace=node.workspace)
    lbs = lbs.filter(node=node) if not (node.edge_pool_id and node.is_master) else \
        lbs.filter(edge_pool_id=node.edge_pool_id) | lbs.filter(node=node)
    for lb in lbs:
        rules = []
        for rule in lb.rules:
            endpoints = list(Run.objects.filter(edge_instance__service_id=rule["service"], status=RunStatus.RUNNING)
                             .exclude(endpoint="").order_by("pk").values_list("endpoint", flat=True))
            rules.append({"match": rule["match"], "path": rule["path"], "endpoints": endpoints})
        balancers.append({"id": lb.pk, "name": lb.name, "listen_port": lb.listen_port, "sticky": lb.sticky,
                          "rules": rules})
    return {
        "node": node.pk, "name": node.name, "queues": sorted(queues), "frozen": node.frozen,
        "heartbeat_seconds": settings.ATELIER_EDGE_HEARTBEAT_SECONDS,
        "logs": {"retention_days": node.log_retention_days, "system_level": node.system_log_level,
                 "app_level": node.app_log_level, "total_mb": node.log_size_mb, "file_mb": node.log_file_mb,
                 "rotate_days": node.log_rotate_days},
        "load_balancers": balancers,
        # Set while an admin's upgrade request is pending: the agent fetches `…/edge/agent/` and re-execs.
        "upgrade": {"version": agent_version_current()} if node.upgrade_requested else None,
    }


def edge_node_heartbeat(*, node: EdgeNode, cpu_percent: float, memory_percent: float, disk_percent: float,
                        gpus: list | None = None, upgrading: bool = False, agent_version: str = "",
                        upgrade_error: str = "") -> dict:
    """Record a heartbeat (and a monitoring sample when the last is ATELIER_EDGE_SAMPLE_SECONDS old);
    returns the agent's configuration.

    Upgrades: `upgrading` (UPGRADING while the agent fetches and re-execs) and `agent_version` are
    the agent's word; a pending request ends when the agent reports the console's version (event
    "Agent upgraded") or an `upgrade_error` (warning event with the agent's reason)."""
    now = timezone.now()
    before = node.current_status(now)
    was_upgrading = node.upgrading
    node.last_heartbeat = now
    node.upgrading = bool(upgrading)
    if agent_version:
        node.agent_version = agent_version[:32]
    if node.upgrading and not was_upgrading:
        event_add(obj=node, message=f"Agent is upgrading (from {node.agent_version or 'an unknown version'}).")
    if node.upgrade_requested and not node.upgrading:
        current = agent_version_current()
        if upgrade_error:
            node.upgrade_requested = False
            event_add(obj=node, level=EventLevel.WARNING,
                      message=f"Agent upgrade to {current} failed on the node: {upgrade_error[:500]}")
        elif node.agent_version == current:
            node.upgrade_requested = False
            event_add(obj=node, message=f"Agent upgraded to {current}; it re-executed itself and is running.")
    node.save(update_fields=["last_heartbeat", "upgrading", "upgrade_requested", "agent_version", "updated_at"])
    last = node.samples.order_by("-at").values_list("at", flat=True).first()
    if last is None or now - last >= timedelta(seconds=settings.ATELIER_EDGE_SAMPLE_SECONDS):
        EdgeNodeSample.objects.create(node=node, at=now, cpu_percent=float(cpu_percent),
                                      memory_percent=float(memory_percent), disk_percent=float(disk_percent),
                                      gpus=gpus or [])
    if before in (EdgeNodeStatus.UNCONNECTED, EdgeNodeStatus.FAULTY):
        event_add(obj=node, message=f"Node is {node.current_status(now).lower()} (was {before.lower()}).")
    return agent_config(node)


def edge_nodes_sweep(now=None) -> dict[str, int]:
    """Sweep step: one warning event per outage for nodes whose heartbeats stopped (now FAULTY).

    The status itself is derived on read; the cache key names the last heartbeat, so a node that
    comes back and fails again gets a new event, and overlapping sweeps write one."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ATELIER_EDGE_FAULTY_SECONDS)
    count = 0
    # Outages older than a day were reported by earlier sweeps; the bound keeps the query small.
    for node in EdgeNode.objects.filter(last_heartbeat__lt=cutoff, last_heartbeat__gte=now - timedelta(days=1),
                                        frozen=False):
        if cache.add(f"edge.faulty.{node.pk}.{node.last_heartbeat.timestamp():.0f}", 1, timeout=2 * 86400):
            event_add(obj=node, level=EventLevel.WARNING,
                      message=f"Node is faulty: no heartbeat since {node.last_heartbeat:%Y-%m-%d %H:%M:%S} UTC.")
            count += 1
    return {"edge_faulty": count}


@transaction.atomic
def edge_node_freeze(*, user, node: EdgeNode, frozen: bool) -> EdgeNode:
    """Freeze (FREEZE: no new services, the agent pauses) or unfreeze a node. Workspace admins only."""
    require_perm(user, node.workspace, "workspace:update")
    node.frozen = bool(frozen)
    node.save(update_fields=["frozen", "updated_at"])
    event_add(obj=node, message="Node frozen by an admin." if frozen else "Node unfrozen.")
    audit_record(actor=user, action="edge_node:freeze" if frozen else "edge_node:unfreeze", obj=node,
                 workspace=node.workspace)
    return node


@transaction.atomic
def edge_node_upgrade_request(*, user, node: EdgeNode) -> EdgeNode:
    """Ask the node's agent to upgrade itself to the console's agent (workspace admins): on its next
    heartbeat it reports UPGRADING, fetches the program over its authenticated channel, re-execs
    itself (its worker and instances keep running) and comes back RUNNING with the new version.
    Refused for a node without a connected agent, a frozen one, or one already on this version."""
    require_perm(user, node.workspace, "workspace:update")
    current = agent_version_current()
    status = node.current_status()
    if status in (EdgeNodeStatus.UNCONNECTED, EdgeNodeStatus.FAULTY):
        raise ValidationError({"node": [f'Node "{node.name}" is {status}: its agent must be connected to upgrade.']})
    if status == EdgeNodeStatus.FREEZE:
        raise ValidationError({"node": [f'Node "{node.name}" is frozen: unfreeze it before upgrading its agent.']})
    if node.upgrade_requested or node.upgrading:
        raise ValidationError({"node": [f'An agent upgrade of "{node.name}" is already in progress.']})
    if node.agent_version == current:
        raise ValidationError({"node": [f'The agent of "{node.name}" already runs version {current}, the '
                                        "console's."]})
    node.upgrade_requested = True
    node.save(update_fields=["upgrade_requested", "updated_at"])
    event_add(obj=node, message=f"Agent upgrade from {node.agent_version or 'an unknown version'} to {current} "
                                "requested.")
    audit_record(actor=user, action="edge_node:upgrade", obj=node, workspace=node.workspace,
                 detail={"from": node.agent_version, "to": current})
    return node


@transaction.atomic
def edge_nodes_activate(*, user, workspace, nodes: list[EdgeNode], months) -> list[EdgeNode]:
    """Activate up to 50 connected, not yet activated nodes for 1 or 3 months, effective now."""
    require_perm(user, workspace, "workspace:update")
    if not nodes:
        raise ValidationError({"nodes": ["Choose at least one node to activate."]})
    if len(nodes) > MAX_ACTIVATE:
        raise ValidationError({"nodes": [f"Activate at most {MAX_ACTIVATE} nodes at a time; {len(nodes)} chosen."]})
    try:
        months = int(months)
    except (TypeError, ValueError):
        months = 0
    if months not in ACTIVATION_MONTHS:
        raise ValidationError({"months": ["The term is 1 or 3 months."]})
    for node in nodes:
        if node.workspace_id != workspace.pk:
            raise ValidationError({"nodes": [f"Node {node.pk} is not in this workspace."]})
        if node.current_status() == EdgeNodeStatus.UNCONNECTED:
            raise ValidationError({"nodes": [f'Node "{node.name}" is UNCONNECTED: enrol its agent first.']})
        if node.is_activated:
            raise ValidationError({"nodes": [f'Node "{node.name}" is already activated.']})
    until = timezone.now() + timedelta(days=30 * months)
    for node in nodes:
        node.activation, node.activated_until = ActivationStatus.ACTIVATED, until
        node.save(update_fields=["activation", "activated_until", "updated_at"])
        event_add(obj=node, message=f"Activated for {months} month{'s' if months > 1 else ''}, until {until:%Y-%m-%d}.")
    audit_record(actor=user, action="edge_node:activate", workspace=workspace,
                 detail={"nodes": [n.pk for n in nodes], "months": months})
    return nodes


@transaction.atomic
def edge_node_log_settings_update(*, user, node: EdgeNode, log_retention_days, system_log_level: str,
                                  app_log_level: str, log_rotate_days) -> EdgeNode:
    """Change retention, levels and the rolling period; the agent applies them on its next heartbeat.
    The 50 MB total and 10 MB file sizes are fixed (seed-06 §7.4)."""
    require_perm(user, node.workspace, "service:update")
    values = _log_settings(log_retention_days, system_log_level, app_log_level, log_rotate_days)
    for field, value in values.items():
        setattr(node, field, value)
    node.save()
    audit_record(actor=user, action="edge_node:update", obj=node, workspace=node.workspace, detail=values)
    return node


@transaction.atomic
def edge_node_delete(*, user, node: EdgeNode) -> None:
    """Delete a node that is in no pool and runs no edge service or load balancer."""
    require_perm(user, node.workspace, "service:delete")
    if node.is_master and node.edge_pool_id:
        raise ValidationError({"node": [f'"{node.name}" is a master of pool "{node.edge_pool.name}": master nodes '
                                        "cannot be deleted; delete the pool first."]})
    if node.edge_pool_id:
        raise ValidationError({"node": [f'"{node.name}" is bound to pool "{node.edge_pool.name}": remove it from '
                                        "the pool first."]})
    if node.services.exists():
        raise ValidationError({"node": [f'"{node.name}" runs edge services: delete them first.']})
    if node.load_balancers.exists():
        raise ValidationError({"node": [f'"{node.name}" has load balancers: delete them first.']})
    audit_record(actor=user, action="edge_node:delete", obj=node, workspace=node.workspace)
    pool = node.pool
    node.delete()
    _runtime_pool_retire(pool)


# ---------------------------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------------------------


def _ids(values, field: str) -> list[int]:
    try:
        return [int(i) for i in values or []]
    except (TypeError, ValueError):
        raise ValidationError({field: ["Give node ids as a list of numbers."]}) from None


def _free_nodes(workspace, ids, field: str) -> list[EdgeNode]:
    ids = _ids(ids, field)
    nodes = list(EdgeNode.objects.select_for_update().filter(workspace=workspace, pk__in=ids))
    missing = sorted(set(ids) - {n.pk for n in nodes})
    if missing:
        raise ValidationError({field: [f"No edge node with id {missing[0]} in this workspace."]})
    taken = [n for n in nodes if n.edge_pool_id]
    if taken:
        raise ValidationError({field: [f'Node "{taken[0].name}" already belongs to pool "{taken[0].edge_pool.name}".']})
    return nodes


@transaction.atomic
def edge_pool_create(*, user, workspace, name: str, description: str = "", max_workers=8,
                     masters: list | None = None, workers: list | None = None) -> EdgePool:
    """A pool of 1–3 master nodes and up to `max_workers` (1–64) workers; no node may be in two
    roles or two pools."""
    require_perm(user, workspace, "service:create")
    name = _name(name)
    description = _description(description)
    max_workers = _int_in(max_workers, "max_workers", 1, 64, "Max worker count")
    masters, workers = _ids(masters, "masters"), _ids(workers, "workers")
    if not 1 <= len(masters) <= MAX_MASTERS:
        raise ValidationError({"masters": [f"Choose 1 to {MAX_MASTERS} master nodes; {len(masters)} chosen."]})
    if set(masters) & set(workers):
        raise ValidationError({"workers": ["A node cannot be both a master and a worker of the pool."]})
    if len(workers) > max_workers:
        raise ValidationError({"workers": [f"At most {max_workers} workers (the pool's max worker count); "
                                           f"{len(workers)} chosen."]})
    if EdgePool.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'An edge pool named "{name}" already exists in this workspace.']})
    master_nodes = _free_nodes(workspace, masters, "masters")
    worker_nodes = _free_nodes(workspace, workers, "workers")
    pool = EdgePool.objects.create(workspace=workspace, name=name, description=description, max_workers=max_workers,
                                   created_by=user)
    pool.pool = _runtime_pool(f"edge-pool-{pool.pk}", f"Edge pool {name} (workspace {workspace.pk}).")
    pool.save(update_fields=["pool"])
    for node in master_nodes + worker_nodes:
        node.edge_pool, node.is_master = pool, node in master_nodes
        node.save(update_fields=["edge_pool", "is_master", "updated_at"])
    audit_record(actor=user, action="edge_pool:create", obj=pool, workspace=workspace)
    return pool


@transaction.atomic
def edge_pool_workers_add(*, user, pool: EdgePool, node_ids: list) -> EdgePool:
    require_perm(user, pool.workspace, "service:update")
    nodes = _free_nodes(pool.workspace, node_ids, "workers")
    count = pool.nodes.filter(is_master=False).count()
    if count + len(nodes) > pool.max_workers:
        raise ValidationError({"workers": [f"The pool takes at most {pool.max_workers} workers; it has {count}."]})
    for node in nodes:
        node.edge_pool, node.is_master = pool, False
        node.save(update_fields=["edge_pool", "is_master", "updated_at"])
    audit_record(actor=user, action="edge_pool:update", obj=pool, workspace=pool.workspace,
                 detail={"added": [n.pk for n in nodes]})
    return pool


@transaction.atomic
def edge_pool_worker_remove(*, user, pool: EdgePool, node: EdgeNode) -> None:
    """Unbind a worker node (masters stay for the pool's life)."""
    require_perm(user, pool.workspace, "service:update")
    if node.edge_pool_id != pool.pk:
        raise ValidationError({"node": [f'"{node.name}" is not in pool "{pool.name}".']})
    if node.is_master:
        raise ValidationError({"node": [f'"{node.name}" is a master: masters cannot be removed from a pool.']})
    node.edge_pool, node.is_master = None, False
    node.save(update_fields=["edge_pool", "is_master", "updated_at"])
    audit_record(actor=user, action="edge_pool:update", obj=pool, workspace=pool.workspace,
                 detail={"removed": [node.pk]})


@transaction.atomic
def edge_pool_delete(*, user, pool: EdgePool) -> None:
    """Delete a pool with no edge services, load balancers or access ports; its nodes are unbound."""
    require_perm(user, pool.workspace, "service:delete")
    if pool.services.exists():
        raise ValidationError({"pool": [f'Pool "{pool.name}" has edge services: delete them first.']})
    if pool.load_balancers.exists():
        raise ValidationError({"pool": [f'Pool "{pool.name}" has load balancers: delete them first.']})
    if AccessPort.objects.filter(service__edge_pool=pool).exists():
        raise ValidationError({"pool": [f'Pool "{pool.name}" has access ports: delete them first.']})
    pool.nodes.update(edge_pool=None, is_master=False)
    audit_record(actor=user, action="edge_pool:delete", obj=pool, workspace=pool.workspace)
    runtime = pool.pool
    pool.delete()
    _runtime_pool_retire(runtime)
