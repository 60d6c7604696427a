"""The deployment sweep (a beat task every ATELIER_DEPLOYMENT_SWEEP_SECONDS): deploy timeouts,
Waiting (instances still queued for lack of room after ATELIER_DEPLOYMENT_WAITING_SECONDS),
auto-stop, stopping drained instances, and the health checks of running instances.

Health checks (seed-06 §2.5): every ready instance of a running service is probed at its
version's HTTP health URL (default `/health` for the model server) every `period_seconds`, starting
`initial_delay_seconds` after it became ready; `failure_threshold` failures in a row replace it:
it drains (no new traffic; stopped after ATELIER_DEPLOYMENT_DRAIN_SECONDS) and a new instance
starts, so the service shows Alarm until the replacement is ready. A crashed instance never gets
here: the run engine restarts it. EXEC checks run in the instance's environment instead
(`atelier_modelserver.healthexec`, wired in by `serving.instance_command`): failing ones exit the
instance, which the run engine then restarts like a crash.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.services import event_add
from apps.runtime.choices import LIVE_STATUSES, RunStatus

from .choices import DEPLOYING, ServiceKind, ServiceStatus
from .models import InferenceService, ServiceInstance
from .serving import (
    _actor,
    _instances_submit,
    _ready,
    _rollback,
    _status_set,
    _stop_runs,
    service_refresh,
    service_stop,
    service_stop_due,
)

logger = logging.getLogger(__name__)
S = ServiceStatus
# Health settings of model-server instances, whose package declares none (the server's /health).
DEFAULT_HEALTH = {"check_method": "HTTP", "url": "/health", "period_seconds": 10, "failure_threshold": 3,
                  "initial_delay_seconds": 0, "timeout_seconds": 5}

def deployment_sweep(*, now=None) -> dict[str, int]:
    """Beat task body: time out deployments, auto-stop services, stop drained instances, probe health."""
    now = now or timezone.now()
    counts = {"timeouts": 0, "auto_stopped": 0, "drained": 0, "waiting": 0, "replaced": 0}
    for service in InferenceService.objects.filter(kind=ServiceKind.ONLINE).exclude(
            status__in=[S.STOPPED, S.ABNORMAL, S.COMPLETED]).select_related("workspace", "created_by"):
        try:
            counts_for = _sweep_service(service, now)
            if service.status in (S.RUNNING, S.ALARM):
                counts_for["replaced"] = instances_probe(service, now)
        except Exception:
            logger.exception("sweep of service %s failed", service.pk)
            continue
        for key, value in counts_for.items():
            counts[key] += value
    from .async_requests import async_requests_expire
    from .batch import batch_sweep

    from .edge.services import edge_nodes_sweep

    counts.update(batch_sweep(now))
    counts.update(async_requests_expire(now))
    counts.update(edge_nodes_sweep(now))
    return counts


def _sweep_service(service: InferenceService, now) -> dict[str, int]:
    counts = {"timeouts": 0, "auto_stopped": 0, "drained": 0, "waiting": 0}
    with transaction.atomic():
        drain_after = now - timedelta(seconds=settings.ATELIER_DEPLOYMENT_DRAIN_SECONDS)
        drained = list(service.instances.filter(draining_since__lte=drain_after,
                                                run__status__in=LIVE_STATUSES).select_related("run"))
        if drained:
            _stop_runs([i.run for i in drained], user=_actor(service), reason="Drained: no longer takes traffic.")
            counts["drained"] = len(drained)
        if service.status == S.STOPPING and service.stop_due_at and service.stop_due_at <= now:
            service_stop_due(service)
            return counts
        timeout = timedelta(minutes=service.deploy_timeout_minutes)
        deploying = service.status in DEPLOYING or bool(service.pending_config)
        since = service.deploying_since or service.status_changed_at
        if deploying and since and now - since > timeout:
            current = list(service.instances.filter(generation=service.generation, draining_since__isnull=True)
                           .select_related("run"))
            waiting = [i.run for i in current if not _ready(i.run)]
            details = "; ".join(f"instance {r.pk}: {r.get_status_display().lower()} ({r.status_reason.rstrip('.')})"
                                for r in waiting[:3]) or "no instance became ready"
            if service.pending_config:
                _rollback(service, current, reason=f"Deploying timeout, details: {details}")
            elif _status_set(service, S.ABNORMAL, expect=DEPLOYING, level=EventLevel.ERROR,
                             reason=f"Deploying timeout after {service.deploy_timeout_minutes} min",
                             event=f"Deploying timeout, details: {details}."):
                _stop_runs([i.run for i in current], user=_actor(service), reason="Deploying timeout.")
            counts["timeouts"] = 1
        elif service.status == S.DEPLOYING and since and now - since > timedelta(
                seconds=settings.ATELIER_DEPLOYMENT_WAITING_SECONDS):
            queued = [i.run for i in service.instances.filter(generation=service.generation,
                                                             draining_since__isnull=True).select_related("run")
                      if i.run.status == RunStatus.QUEUED]
            if queued and _status_set(service, S.WAITING, expect=S.DEPLOYING, level=EventLevel.WARNING,
                                      reason=queued[0].status_reason,
                                      event="Lack of resources, transform state to waiting."):
                from apps.runtime.scheduling import nodes_online

                # The two catalogue messages of seed-06 §4.3, the second with the engine's reason.
                first = service.instances.filter(run=queued[0]).select_related("model_version__app").first()
                label = first.model_version.label if first and first.model_version else ""
                event_add(obj=service, level=EventLevel.WARNING,
                          message=f"{service.name} {label} Schedule failed due to insufficient resources. Retry later. "
                                  f"{nodes_online().count()} nodes are available: {queued[0].status_reason}")
                counts["waiting"] = 1
        elif service.auto_stop_at and service.auto_stop_at <= now and service.status in (S.RUNNING, S.ALARM):
            try:
                service_stop(user=None, service=service, system=True,
                             event="Service stopped automatically because due time is reached.")
                counts["auto_stopped"] = 1
            except Exception as exc:
                event_add(obj=service, level=EventLevel.ERROR,
                          message=f"Failed to stop service automatically, error message: {exc}")
    return counts


def _health_of(instance: ServiceInstance) -> dict | None:
    version = instance.model_version
    if version is None:
        return None
    health = version.health or {}
    if health.get("check_method") == "HTTP":
        return health
    # The model server always answers /health; an EXEC check runs beside the instance itself
    # (atelier_modelserver.healthexec), so there is nothing to probe from here for other sources.
    return DEFAULT_HEALTH if version.serves_package else None


def _probe_one(instance: ServiceInstance, health: dict) -> str | None:
    """None when healthy, else what went wrong."""
    version = instance.model_version
    scheme = "https" if (not version.serves_package and health.get("protocol") == "https") else "http"
    try:
        response = httpx.get(f"{scheme}://{instance.run.endpoint}{health.get('url', '/health')}", verify=False,
                             timeout=health.get("timeout_seconds") or 5, trust_env=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def instances_probe(service: InferenceService, now) -> int:
    """Probe the ready instances that are due; replace those past their failure threshold."""
    due = []
    for instance in (service.instances.filter(draining_since__isnull=True, generation=service.generation,
                                              run__status=RunStatus.RUNNING, run__ready_at__isnull=False)
                     .select_related("run", "model_version__app", "service_version")):
        health = _health_of(instance)
        if health is None:
            continue
        if now < instance.run.ready_at + timedelta(seconds=health.get("initial_delay_seconds") or 0):
            continue
        # One counter per readiness episode: a restarted instance starts again from zero.
        key = f"deployment:probe:{instance.pk}:{instance.run_id}:{instance.run.ready_at.timestamp():.3f}"
        state = cache.get(key) or {"last": 0.0, "failures": 0}
        if now.timestamp() - state["last"] < (health.get("period_seconds") or 10):
            continue
        due.append((instance, health, key, state))
    replaced = 0
    for instance, health, key, state in due:  # HTTP calls outside any transaction
        problem = _probe_one(instance, health)
        state = {"last": now.timestamp(), "failures": 0 if problem is None else state["failures"] + 1}
        cache.set(key, state, timeout=24 * 3600)
        if problem is not None and state["failures"] >= (health.get("failure_threshold") or 3):
            if _replace(service, instance, reason=f"failed its health check {state['failures']} times in a row "
                                                   f"({problem})"):
                replaced += 1
                cache.delete(key)
    return replaced


@transaction.atomic
def _replace(service: InferenceService, instance: ServiceInstance, *, reason: str) -> bool:
    """Drain an unhealthy instance and start a replacement for its version."""
    updated = ServiceInstance.objects.filter(pk=instance.pk, draining_since__isnull=True).update(
        draining_since=timezone.now())
    sv = instance.service_version
    if not updated or sv is None:
        return False
    event_add(obj=service, level=EventLevel.WARNING,
              message=f"Instance #{instance.pk} ({sv.model_version.label}) {reason}; replacing it.")
    row = {"model_version": sv.model_version, "pool": sv.pool, "flavor": sv.flavor, "env": sv.env}
    _instances_submit(service, row, user=_actor(service), count=1, generation=service.generation, service_version=sv)
    service_refresh(service)
    return True
