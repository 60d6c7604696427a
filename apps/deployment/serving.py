"""Online services: deploy, start, stop, restart, update (rolling, scale, in place), delete, and
the reaction to instance runs (`service_on_run_change`, registered with the run engine).

Instances are long-lived runs of the model server (or of the custom command / container). A
rollout (deploy, start, restart, or an update that changes versions, flavors or env) starts a
new generation of instances; when all of them are ready the older generation is drained: the
gateway stops routing to it at once and the sweep stops its runs after
`ATELIER_DEPLOYMENT_DRAIN_SECONDS`, while uvicorn lets the requests they hold finish. A
generation that fails rolls back to the previous one. Event messages follow seed-06 §4.3.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import EventLevel, Role
from apps.core.permissions import has_perm, require_perm
from apps.core.services import audit_record, event_add, publish_on_commit
from apps.runtime.callbacks import RunChange
from apps.runtime.choices import LIVE_STATUSES, TERMINAL_STATUSES, RunStatus
from apps.runtime.models import Flavor, Pool, Run
from apps.runtime.services import run_stop, run_submit

from .choices import DEPLOYING, STARTABLE, STOPPABLE, ModelSource, ServiceKind, ServiceStatus
from .models import AiAppVersion, InferenceService, ServiceConfigRecord, ServiceInstance, ServiceVersion
from .service_config import (  # noqa: F401  (re-exported: batch, keys and tests import them from here)
    ENV_NAME_RE,
    MAX_MOUNTS,
    MOUNT_PATH_RE,
    _int,
    _options_clean,
    config_snapshot,
    mounts_clean,
    rules_clean,
    versions_clean,
)
from .services import name_clean

logger = logging.getLogger(__name__)
S = ServiceStatus
OWNER_TYPE = "deployment.inferenceservice"
MODELSERVER_DIR = Path(__file__).resolve().parent / "modelserver"
# Where a container image finds its version's model folder (ModelArts' custom-image contract).
IMAGE_MODEL_DIR = "/home/mind/model"
AUTO_STOP_HOURS = (1, 2, 4, 6)
# How much of an instance log is searched for the model server's load-failure line.
LOG_TAIL_BYTES = 64 * 1024


# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------


def instance_command(version: AiAppVersion, env_names=(), mounts=()) -> tuple[list[str], str, list[dict], dict[str, str]]:
    """(argv, health path, inputs, env) of one instance of `version`; `env_names` are the service
    version's own variables (passed into a container explicitly). An EXEC health check wraps the
    argv in `healthexec`, which restarts the instance after `failure_threshold` failed checks."""
    argv, health_path, inputs, env = _instance_command(version, env_names)
    if mounts:
        # Each storage folder is staged into the run directory; MODEL_MOUNTS maps the mount path
        # to that folder (relative to the working directory), and a container gets a real bind mount.
        places = {}
        for index, mount in enumerate(mounts, start=1):
            inputs = [*inputs, {"name": f"mount_{index}", "uri": mount["source"]}]
            places[mount["mount_path"]] = f"inputs/mount_{index}"
        env = {**env, "MODEL_MOUNTS": json.dumps(places)}
        if version.source_type == ModelSource.IMAGE:
            at = argv.index("--")
            extra = [arg for path, place in places.items() for arg in ("--mount", f"{place}:{path}")]
            argv = [*argv[:at], *extra, *argv[at:]]
    health = version.health or {}
    if health.get("check_method") == "EXEC" and health.get("command"):
        # The check runs beside the instance, in its environment (see healthexec's docstring).
        wrapper = ["python", str(MODELSERVER_DIR / "atelier_modelserver" / "healthexec.py"),
                   "--command", health["command"], "--period", str(health.get("period_seconds") or 10),
                   "--delay", str(health.get("initial_delay_seconds") or 0),
                   "--failures", str(health.get("failure_threshold") or 3),
                   "--timeout", str(health.get("timeout_seconds") or 5)]
        if version.source_type == ModelSource.IMAGE:
            wrapper.append("--container")
        argv = [*wrapper, "--", *argv]
    elif health_path and version.source_type == ModelSource.IMAGE and version.protocol == "https":
        # healthexec asks an HTTPS image's health URL over TLS for as long as the instance runs
        # (failed checks restart it as an EXEC check would). The path is left out of the run's
        # plain-HTTP readiness (edge agents, batch); the console's own instances get it back for
        # a TLS readiness probe (engine_tls_health_path).
        wrapper = ["python", str(MODELSERVER_DIR / "atelier_modelserver" / "healthexec.py"),
                   "--url", health_path, "--https", "--container",
                   "--period", str(health.get("period_seconds") or 10),
                   "--delay", str(health.get("initial_delay_seconds") or 0),
                   "--failures", str(health.get("failure_threshold") or 3),
                   "--timeout", str(health.get("timeout_seconds") or 5)]
        argv, health_path = [*wrapper, "--", *argv], ""
    return argv, health_path, inputs, env


def engine_tls_health_path(version: AiAppVersion) -> str:
    """The health URL the run engine asks over TLS for readiness: an image that declares HTTPS and
    has an HTTP health check is ready only after a 2xx there (as an HTTP image is); else ""."""
    health = version.health or {}
    if version.source_type == ModelSource.IMAGE and version.protocol == "https" and health.get("check_method") == "HTTP":
        return health.get("url", "")
    return ""


def _instance_command(version: AiAppVersion, env_names=()) -> tuple[list[str], str, list[dict], dict[str, str]]:
    health = version.health or {}
    health_path = health.get("url", "") if health.get("check_method") == "HTTP" else ""
    if version.serves_package:
        env = {
            "PYTHONPATH": str(MODELSERVER_DIR),
            "MODEL_NAME": version.app.name,
            "MODEL_VERSION": version.version,
            "MODEL_SERVER_ENV_ROOT": str(settings.ATELIER_DEPLOYMENT_ENV_ROOT),
            "MODEL_SERVER_BUILD_TIMEOUT": str(settings.ATELIER_DEPLOYMENT_BUILD_TIMEOUT_SECONDS),
            "MODEL_SERVER_PIP_ARGS": json.dumps(settings.ATELIER_DEPLOYMENT_PIP_ARGS),
            "MODEL_SERVER_METRIC_SECONDS": str(settings.ATELIER_DEPLOYMENT_METRIC_SECONDS),
        }
        return (["python", "-m", "atelier_modelserver"], "/health",
                [{"name": "package", "uri": version.package_uri}], env)
    if version.source_type == ModelSource.IMAGE:
        # Docker's own stop grace ends just before the engine's (the run's stop_grace_seconds).
        argv = ["python", "-m", "atelier_modelserver.container", "--image", version.image,
                "--container-port", str(version.port),
                "--stop-grace", str(settings.ATELIER_GATEWAY_TIMEOUT_SECONDS + 5)]
        # Options left out at their defaults, so edge agents with an older launcher still run it.
        if version.protocol == "https":
            argv += ["--protocol", "https"]
        if settings.ATELIER_DEPLOYMENT_METRIC_SECONDS != 60:  # the launcher's default
            argv += ["--metric-seconds", str(settings.ATELIER_DEPLOYMENT_METRIC_SECONDS)]
        for name in sorted(env_names):
            argv += ["--pass-env", name]
        inputs = []
        if version.package_uri:  # the model folder, staged into the run directory, at ModelArts' place
            inputs = [{"name": "package", "uri": version.package_uri}]
            argv += ["--mount", f"inputs/package/model:{IMAGE_MODEL_DIR}"]
        argv += ["--", *version.command]
        return argv, health_path, inputs, {"PYTHONPATH": str(MODELSERVER_DIR)}
    return list(version.command), health_path, [], {}


def _actor(service: InferenceService, user=None):
    """Who system actions (sweep, callbacks) run as: the acting user, the creator, else an admin.

    The run engine's stop/submit need a user with run permissions; the creator may have left.
    """
    for candidate in (user, service.created_by):
        if candidate is not None and has_perm(candidate, service.workspace, "run:create"):
            return candidate
    admin = (service.workspace.memberships.filter(role=Role.ADMIN, user__is_active=True)
             .select_related("user").first())
    if admin is None:
        raise PermissionDenied("No member of the workspace may run or stop instances any more.")
    return admin.user


def _instances_submit(service: InferenceService, row: dict, *, user, count: int, generation: int,
                      service_version: ServiceVersion | None) -> list[ServiceInstance]:
    version: AiAppVersion = row["model_version"]
    argv, health_path, inputs, env = instance_command(version, row["env"].keys(), service.mounts)
    health_tls = not health_path and bool(engine_tls_health_path(version))
    health_path = health_path or engine_tls_health_path(version)
    made = []
    for _ in range(count):
        run = run_submit(
            user=user, workspace=service.workspace, name=f"{service.name} · {version.label}", command=argv,
            flavor=row["flavor"], pool=row["pool"], job_type="inference", env={**row["env"], **env}, inputs=inputs,
            long_lived=True, health_path=health_path, health_tls=health_tls,
            max_restarts=settings.ATELIER_DEPLOYMENT_INSTANCE_RESTARTS,
            # Long enough for the requests an instance holds to finish after SIGTERM.
            stop_grace_seconds=settings.ATELIER_GATEWAY_TIMEOUT_SECONDS + 10,
            owner_type=OWNER_TYPE, owner_id=str(service.pk),
        )[0]
        made.append(ServiceInstance.objects.create(service=service, service_version=service_version,
                                                   model_version=version, run=run, generation=generation))
    return made


def _stop_runs(runs, *, user, reason: str) -> None:
    for run in runs:
        if run.status in LIVE_STATUSES:
            try:
                run_stop(user=user, run=run, reason=reason)
            except ValidationError:  # ended meanwhile: nothing to stop
                pass


def _status_set(service: InferenceService, status: str, *, expect=None, reason: str = "", event: str = "",
                level: str = EventLevel.INFO, **fields) -> bool:
    """Compare-and-set the status (from `expect`, default: the status the row had); records the event."""
    expected = {expect} if isinstance(expect, str) else set(expect or {service.status})
    now = timezone.now()
    values = dict(fields, status=status, status_changed_at=now, updated_at=now)
    if reason is not None:
        values["status_reason"] = reason[:1000]
    updated = InferenceService.objects.filter(pk=service.pk, status__in=expected).update(**values)
    if not updated:
        return False
    for key, value in values.items():
        setattr(service, key, value)
    if event:
        event_add(obj=service, message=event, level=level)
    publish_on_commit(f"deployment.inferenceservice.{service.pk}",
                      {"kind": "status", "status": status, "label": S(status).label, "reason": service.status_reason})
    return True


def _rollout(service: InferenceService, versions: list[dict], *, user, pending: bool) -> None:
    """Start a new generation of instances for `versions`.

    pending=False: the rows become the service's versions now (nothing serves yet).
    pending=True: the current versions keep serving; the rows wait in `pending_config` and take
    over when every new instance is ready (`_promote`).
    """
    generation = service.generation + 1
    InferenceService.objects.filter(pk=service.pk).update(generation=generation)
    service.generation = generation
    _image_builds_start(service, [row["model_version"] for row in versions])
    if pending:
        service.pending_config = [{"model_version": r["model_version"].pk, "weight": r["weight"], "pool": r["pool"].pk,
                                   "flavor": r["flavor"].pk, "instance_count": r["instance_count"], "env": r["env"]}
                                  for r in versions]
        InferenceService.objects.filter(pk=service.pk).update(pending_config=service.pending_config)
        for row in versions:
            _instances_submit(service, row, user=user, count=row["instance_count"], generation=generation,
                              service_version=None)
        return
    service.versions.all().delete()
    for position, row in enumerate(versions):
        sv = ServiceVersion.objects.create(service=service, model_version=row["model_version"], weight=row["weight"],
                                           pool=row["pool"], flavor=row["flavor"],
                                           instance_count=row["instance_count"], env=row["env"], position=position)
        _instances_submit(service, row, user=user, count=row["instance_count"], generation=generation,
                          service_version=sv)


# ---------------------------------------------------------------------------------------------
# Image builds seen from the service (seed-06 §4.3)
# ---------------------------------------------------------------------------------------------
# An AI-app version's dependency environment ("env image") is built when the version is imported,
# into ATELIER_DEPLOYMENT_ENV_ROOT; an instance re-uses it, or builds it itself when it is missing
# there (pruned cache, a fresh worker). The service reports that build: "Start to build image."
# when a rollout needs it, then "Image built successfully." or the failure with the building log.
# A cached environment needs no build; the service catalogue has no event for it (the AI-app
# version's own events say "Use cached env image.").
BUILD_FAILED_MARK = "building the runtime environment failed"
BUILD_LOG_LINES = 30


def _env_built(version: AiAppVersion) -> bool:
    """True when the version needs no environment or its environment is complete in the cache."""
    if not version.env_hash or not version.serves_package:
        return True
    return (Path(settings.ATELIER_DEPLOYMENT_ENV_ROOT) / version.env_hash / ".complete").exists()


def _image_builds_start(service: InferenceService, versions: list[AiAppVersion]) -> None:
    builds = dict(service.image_builds or {})
    for version in versions:
        if str(version.pk) in builds or _env_built(version):
            continue
        builds[str(version.pk)] = version.env_hash
        event_add(obj=service, message="Start to build image.")
    if builds != (service.image_builds or {}):
        service.image_builds = builds
        InferenceService.objects.filter(pk=service.pk).update(image_builds=builds)


def _build_log(run: Run) -> str:
    """The model server's building log: the lines before its 'Model load failed' line."""
    try:
        lines = _log_tail(run).splitlines()
    except Exception:  # no log: the event still names the failure and links the run log
        return ""
    end = next((i for i in range(len(lines) - 1, -1, -1) if BUILD_FAILED_MARK in lines[i]), len(lines))
    return "\n".join(line for line in lines[max(0, end - BUILD_LOG_LINES):end] if line.strip())


def _image_builds_follow(service: InferenceService, current: list[ServiceInstance]) -> None:
    """Report the outcome of each build a rollout announced, once: success as soon as the
    environment is complete, failure when an instance of the version gave up without it."""
    from django.urls import reverse

    builds = dict(service.image_builds)
    for key in list(builds):
        mine = [i for i in current if str(i.model_version_id) == key]
        version = mine[0].model_version if mine else AiAppVersion.objects.select_related("app").filter(pk=key).first()
        if version is None or not mine:  # the rollout that needed it is gone (rolled back, deleted)
            builds.pop(key)
            continue
        if _env_built(version):
            builds.pop(key)
            event_add(obj=service, message="Image built successfully.")
            continue
        failed = [i for i in mine if _given_up(i.run)]
        if not failed:
            continue
        builds.pop(key)
        run = failed[0].run
        if BUILD_FAILED_MARK in _failure_text(run):
            link = reverse("runtime:run_log", args=[run.pk])
            log = _build_log(run) or "(empty)"
            event_add(obj=service, level=EventLevel.ERROR,
                      message=f"Failed to build image for model ({version.app.name} {version.version}), docker build "
                              f"log:\n{log}\nFull building log: {link}.")
        else:
            event_add(obj=service, level=EventLevel.ERROR, message="Failed to build image.")
    if builds != service.image_builds:
        service.image_builds = builds
        InferenceService.objects.filter(pk=service.pk).update(image_builds=builds)


def _fresh(service: InferenceService) -> None:
    """Reload the row under a lock: decisions are made on the current status, not a stale copy."""
    current = InferenceService.objects.select_for_update().get(pk=service.pk)
    for field in current._meta.concrete_fields:
        setattr(service, field.attname, getattr(current, field.attname))


def _rows_from_versions(service: InferenceService) -> list[dict]:
    return [{"model_version": sv.model_version, "weight": sv.weight, "pool": sv.pool, "flavor": sv.flavor,
             "instance_count": sv.instance_count, "env": sv.env}
            for sv in service.versions.select_related("model_version__app", "pool", "flavor")]


def _rows_from_pending(service: InferenceService) -> list[dict]:
    rows = []
    for item in service.pending_config:
        rows.append({"model_version": AiAppVersion.objects.select_related("app").get(pk=item["model_version"]),
                     "weight": item["weight"], "pool": Pool.objects.get(pk=item["pool"]),
                     "flavor": Flavor.objects.get(pk=item["flavor"]), "instance_count": item["instance_count"],
                     "env": item["env"]})
    return rows


# ---------------------------------------------------------------------------------------------
# Deploy, start, stop, restart, update, delete
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def service_create(*, user, workspace, name: str, versions: list[dict], description: str = "",
                   auto_stop_hours=1, deploy_timeout_minutes=20, traffic_limit=None, websocket: bool = False,
                   rules=None, max_unavailable: int = 1, mounts=None) -> InferenceService:
    """Deploy an online service (service:create): validate, save, start one instance per count.

    Refusals: name rules, per-user quota (ATELIER_DEPLOYMENT_MAX_ONLINE_SERVICES, stopped and
    abnormal services count), versions not Normal or not meant for online use, weights not
    adding up to 100, WebSocket together with a traffic limit, storage mounts with a bad path or
    a folder the user cannot view. Mounts, like the WebSocket flag, are fixed once deployed.
    """
    require_perm(user, workspace, "service:create")
    name = name_clean(name)
    if InferenceService.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'A service named "{name}" already exists in this workspace.']})
    quota = settings.ATELIER_DEPLOYMENT_MAX_ONLINE_SERVICES
    if InferenceService.objects.filter(created_by=user, kind=ServiceKind.ONLINE).count() >= quota:
        raise ValidationError(f"You already have {quota} online services, the most allowed; stopped and abnormal "
                              "services count too, so delete one first.")
    rows = versions_clean(workspace, versions)
    options = _options_clean(auto_stop_hours=auto_stop_hours, deploy_timeout_minutes=deploy_timeout_minutes,
                             traffic_limit=traffic_limit, websocket=websocket)
    clean_rules = rules_clean(rules, rows)
    clean_mounts = mounts_clean(user, mounts)
    max_unavailable = _int(max_unavailable, "max_unavailable", 1, 100, "Give a whole number of instances, 1 or more.")
    try:
        with transaction.atomic():
            service = InferenceService.objects.create(
                workspace=workspace, name=name, description=(description or "").strip()[:500], kind=ServiceKind.ONLINE,
                status=S.DEPLOYING, status_changed_at=timezone.now(), deploying_since=timezone.now(),
                created_by=user, rules=clean_rules, max_unavailable=max_unavailable, mounts=clean_mounts, **options)
    except IntegrityError:
        raise ValidationError({"name": [f'A service named "{name}" already exists in this workspace.']}) from None
    event_add(obj=service, message="Start to deploy service.")
    _rollout(service, rows, user=user, pending=False)
    ServiceConfigRecord.objects.create(service=service, created_by=user, note="Deployed",
                                       config=config_snapshot(service, rows))
    audit_record(actor=user, action="service:create", obj=service,
                 detail={"versions": [r["model_version"].label for r in rows]})
    return service


@transaction.atomic
def service_start(*, user, service: InferenceService) -> InferenceService:
    """Start a stopped, abnormal or completed service with fresh instances (service:start)."""
    require_perm(user, service.workspace, "service:start")
    _fresh(service)
    if service.status not in STARTABLE:
        raise ValidationError(f"The service is {service.get_status_display().lower()}; only completed, abnormal or "
                              "stopped services can be started.")
    if service.kind == ServiceKind.BATCH:
        from .batch import batch_service_start

        return batch_service_start(user=user, service=service)
    live = Run.objects.filter(service_instance__service=service, status__in=LIVE_STATUSES)
    if live.exists():
        raise ValidationError("Instances of the last run are still stopping; try again in a moment.")
    service.instances.all().delete()
    _status_set(service, S.DEPLOYING, event="Starting service.", reason="", deploying_since=timezone.now(),
                pending_config=[])
    _rollout(service, _rows_from_versions(service), user=user, pending=False)
    audit_record(actor=user, action="service:start", obj=service)
    return service


@transaction.atomic
def service_stop(*, user, service: InferenceService, reason: str = "", event: str = "Stopping service.",
                 system: bool = False) -> InferenceService:
    """Stop every instance (service:stop). The status is Stopping until all runs have ended."""
    if not system:
        require_perm(user, service.workspace, "service:stop")
    _fresh(service)
    if service.status not in STOPPABLE:
        raise ValidationError(f"The service is {service.get_status_display().lower()}; there is nothing to stop.")
    actor = _actor(service, user)
    runs = list(Run.objects.filter(service_instance__service=service))
    delay = _stop_delay(service)
    _status_set(service, S.STOPPING, reason=reason, event=event, auto_stop_at=None, pending_config=[],
                stop_due_at=timezone.now() + timedelta(seconds=delay) if delay else None)
    if delay:
        # The instances keep answering until then; the sweep stops them (`service_stop_due`).
        event_add(obj=service, message=f"A health check is configured, so the instances stop in {_duration(delay)}.")
        if not system:
            audit_record(actor=user, action="service:stop", obj=service)
        return service
    _stop_runs(runs, user=actor, reason=reason or "The service is stopping.")
    if not any(run.status in LIVE_STATUSES for run in Run.objects.filter(pk__in=[r.pk for r in runs])):
        _status_set(service, S.STOPPED, expect=S.STOPPING, event="Service stopped.", reason=reason)
    if not system:
        audit_record(actor=user, action="service:stop", obj=service)
    return service


def _stop_delay(service: InferenceService) -> int:
    """Seconds a stop waits (seed-06 §4.1: 3 minutes when a health check is configured): only
    for serving services whose versions declare a check."""
    delay = settings.ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS
    if delay <= 0 or service.status not in (S.RUNNING, S.ALARM):
        return 0
    checked = any((sv.model_version.health or {}).get("check_method")
                  for sv in service.versions.select_related("model_version"))
    return delay if checked else 0


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if minutes and not rest:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


@transaction.atomic
def service_stop_due(service: InferenceService) -> bool:
    """Sweep: a delayed stop whose time has come stops the instances now (idempotent)."""
    _fresh(service)
    if service.status != S.STOPPING or service.stop_due_at is None or service.stop_due_at > timezone.now():
        return False
    InferenceService.objects.filter(pk=service.pk).update(stop_due_at=None)
    service.stop_due_at = None
    runs = list(Run.objects.filter(service_instance__service=service))
    _stop_runs(runs, user=_actor(service), reason=service.status_reason or "The service is stopping.")
    if not any(run.status in LIVE_STATUSES for run in Run.objects.filter(pk__in=[r.pk for r in runs])):
        _status_set(service, S.STOPPED, expect=S.STOPPING, event="Service stopped.", reason=service.status_reason)
    return True


@transaction.atomic
def service_restart(*, user, service: InferenceService) -> InferenceService:
    """Restart a running online service (service:restart): a new generation replaces the old one
    once ready, so the service keeps answering meanwhile."""
    require_perm(user, service.workspace, "service:restart")
    _fresh(service)
    if service.kind != ServiceKind.ONLINE or service.status not in (S.RUNNING, S.ALARM):
        raise ValidationError(f"Only running online services can be restarted; this one is "
                              f"{service.get_status_display().lower()}.")
    if service.pending_config:
        raise ValidationError("An update is in progress; wait until it has finished.")
    event_add(obj=service, message="Restarting service: new instances replace the current ones once ready.")
    _rollout(service, _rows_from_versions(service), user=_actor(service, user), pending=True)
    audit_record(actor=user, action="service:restart", obj=service)
    return service


def _needs_restart(old: list[dict], new: list[dict]) -> bool:
    def key(rows):
        return {r["model_version"].pk: (r["pool"].pk, r["flavor"].pk, tuple(sorted(r["env"].items()))) for r in rows}

    return key(old) != key(new)


@transaction.atomic
def service_update(*, user, service: InferenceService, versions: list[dict] | None = None, description=None,
                   auto_stop_hours="unchanged", deploy_timeout_minutes=None, traffic_limit="unchanged", rules=None,
                   max_unavailable=None, websocket=None) -> str:
    """Modify a service (service:update); not while it deploys. Returns what happened:

    "rolling" (versions, flavors or env changed on a running service: new instances, then the old
    ones drain; a failure rolls back), "scaled" (only instance counts changed: instances are
    added, or drained and stopped), "updated" (weights, rules, limits, description: in place).
    The WebSocket flag cannot change: `websocket` may repeat the current value (clients that send
    the whole service back), any other value is refused.
    """
    require_perm(user, service.workspace, "service:update")
    _fresh(service)
    if websocket is not None and bool(websocket) != service.websocket:
        raise ValidationError({"websocket": ["The WebSocket flag is fixed once the service is deployed; deploy a "
                                             "new service to change it."]})
    if service.status in DEPLOYING or service.pending_config:
        raise ValidationError("The service is deploying; modify it once the deployment has finished.")
    if service.status == S.STOPPING:
        raise ValidationError("The service is stopping; modify it once it has stopped.")
    current = _rows_from_versions(service)
    rows = versions_clean(service.workspace, versions) if versions is not None else current
    options = _options_clean(
        auto_stop_hours=service.auto_stop_hours if auto_stop_hours == "unchanged" else auto_stop_hours,
        deploy_timeout_minutes=service.deploy_timeout_minutes if deploy_timeout_minutes is None else deploy_timeout_minutes,
        traffic_limit=service.traffic_limit if traffic_limit == "unchanged" else traffic_limit,
        websocket=service.websocket)
    clean_rules = rules_clean(service.rules if rules is None else rules, rows)
    changed_fields = ["rules", "deploy_timeout_minutes", "traffic_limit", "updated_at"]
    service.rules, service.deploy_timeout_minutes = clean_rules, options["deploy_timeout_minutes"]
    service.traffic_limit = options["traffic_limit"]
    if description is not None:
        service.description = description.strip()[:500]
        changed_fields.append("description")
    if max_unavailable is not None:
        service.max_unavailable = _int(max_unavailable, "max_unavailable", 1, 100,
                                       "Give a whole number of instances, 1 or more.")
        changed_fields.append("max_unavailable")
    if options["auto_stop_hours"] != service.auto_stop_hours:
        service.auto_stop_hours = options["auto_stop_hours"]
        changed_fields.append("auto_stop_hours")
        _auto_stop_arm(service)
        changed_fields.append("auto_stop_at")
    service.save(update_fields=changed_fields)
    serving = service.status in (S.RUNNING, S.ALARM)
    if serving and _needs_restart(current, rows):
        event_add(obj=service, message="Updating service.")
        _rollout(service, rows, user=_actor(service, user), pending=True)
        outcome = "rolling"
    else:
        outcome = _apply_in_place(service, rows, user=user, serving=serving)
    ServiceConfigRecord.objects.create(service=service, created_by=user, note={"rolling": "Update (rolling)",
                                       "scaled": "Instance count changed", "updated": "Updated"}[outcome],
                                       config=config_snapshot(service, rows))
    audit_record(actor=user, action="service:update", obj=service, detail={"outcome": outcome})
    return outcome


def _apply_in_place(service: InferenceService, rows: list[dict], *, user, serving: bool) -> str:
    """Same versions, flavors and env: update weights and counts; add or drain instances."""
    existing = {sv.model_version_id: sv for sv in service.versions.all()}
    scaled = False
    keep = set()
    for position, row in enumerate(rows):
        sv = existing.get(row["model_version"].pk)
        if sv is None:  # not serving (stopped/abnormal): versions may change freely
            sv = ServiceVersion.objects.create(service=service, model_version=row["model_version"], weight=row["weight"],
                                               pool=row["pool"], flavor=row["flavor"],
                                               instance_count=row["instance_count"], env=row["env"], position=position)
        else:
            before = sv.instance_count
            sv.weight, sv.instance_count, sv.position = row["weight"], row["instance_count"], position
            sv.pool, sv.flavor, sv.env = row["pool"], row["flavor"], row["env"]
            sv.save()
            if serving and before != sv.instance_count:
                scaled = True
                _scale(service, sv, row, before=before, user=user)
        keep.add(sv.pk)
    service.versions.exclude(pk__in=keep).delete()
    return "scaled" if scaled else "updated"


def _scale(service: InferenceService, sv: ServiceVersion, row: dict, *, before: int, user) -> None:
    live = list(sv.instances.filter(draining_since__isnull=True).select_related("run").order_by("-created_at", "-id"))
    target = sv.instance_count
    if target > len(live):
        _instances_submit(service, row, user=_actor(service, user), count=target - len(live),
                          generation=service.generation, service_version=sv)
        event_add(obj=service, message=f"Scaling {sv.model_version.label} from {before} to {target} instances.")
    elif target < len(live):
        # Not-ready instances go first: they hold no requests.
        live.sort(key=lambda i: (i.run.ready_at is not None, i.created_at))
        now = timezone.now()
        for instance in live[:len(live) - target]:
            ServiceInstance.objects.filter(pk=instance.pk).update(draining_since=now)
        event_add(obj=service, message=f"Scaling {sv.model_version.label} from {before} to {target} instances: "
                                       f"{len(live) - target} instance(s) drain and stop.")


@transaction.atomic
def service_delete(*, user, service: InferenceService) -> None:
    """Delete a service in any status (service:delete): instances are stopped; irreversible."""
    require_perm(user, service.workspace, "service:delete")
    runs = list(Run.objects.filter(service_instance__service=service))
    _stop_runs(runs, user=_actor(service, user), reason=f'Service "{service.name}" was deleted.')
    name, workspace = service.name, service.workspace
    service.delete()
    audit_record(actor=user, action="service:delete", object_repr=name, workspace=workspace)


@transaction.atomic
def services_delete(*, user, services: list[InferenceService]) -> int:
    """Delete several services at once (bulk delete; service:delete on each): all or none."""
    for service in services:
        service_delete(user=user, service=service)
    return len(services)


def _auto_stop_arm(service: InferenceService) -> None:
    """Set the auto-stop time from now (running services) and say so."""
    if service.auto_stop_hours and service.status in (S.RUNNING, S.ALARM, *DEPLOYING):
        service.auto_stop_at = timezone.now() + timedelta(hours=service.auto_stop_hours)
        unit = "hour" if service.auto_stop_hours == 1 else "hours"
        event_add(obj=service, message=f"Auto-stop switched on, service will be stopped in "
                                       f"{service.auto_stop_hours} {unit}.")
    else:
        if service.auto_stop_at is not None:
            event_add(obj=service, message="Auto-stop switched off.")
        service.auto_stop_at = None
    InferenceService.objects.filter(pk=service.pk).update(auto_stop_at=service.auto_stop_at)


# ---------------------------------------------------------------------------------------------
# Reacting to instance runs
# ---------------------------------------------------------------------------------------------


def _given_up(run: Run) -> bool:
    """The engine will not restart this run again by itself."""
    return run.status in (RunStatus.FAILED, RunStatus.LOST, RunStatus.SUCCEEDED) and run.auto_restarts >= run.max_restarts


def _ready(run: Run) -> bool:
    return run.status == RunStatus.RUNNING and run.ready_at is not None


def _log_tail(run: Run) -> str:
    """The last LOG_TAIL_BYTES of the run's log; raises when there is no log (yet)."""
    from apps.core.paths import parse
    from apps.core.storage import get_storage

    storage, path = get_storage(), parse(run.log_uri)
    size = storage.stat(path).size
    with storage.open(path) as handle:
        if size > LOG_TAIL_BYTES and getattr(handle, "seekable", lambda: False)():
            handle.seek(size - LOG_TAIL_BYTES)
        return handle.read(LOG_TAIL_BYTES).decode("utf-8", "replace")


def _failure_text(run: Run) -> str:
    """The model server's 'Model load failed' line or the EXEC health check's verdict, when the
    log has one; else the run's own reason."""
    reason = run.status_reason.rstrip(".")
    try:
        for line in reversed(_log_tail(run).splitlines()):
            if "Model load failed:" in line:
                return f"Model load failed: {line.split('Model load failed:', 1)[1].strip().rstrip('.')}"
            if line.startswith("[health] Health check failed") and "in a row" in line:
                return line[len("[health] "):].split(" Stopping the instance")[0].rstrip(".")
    except Exception:  # the log is a bonus; the run's own reason is always there
        pass
    return reason


def service_on_run_change(change: RunChange) -> None:
    """Run engine callback for instance runs: move the service along its status machine."""
    service = InferenceService.objects.filter(pk=change.owner_id).first()
    if service is None:
        return
    if service.kind == ServiceKind.BATCH:
        from .batch import batch_on_run_change

        batch_on_run_change(service, change)
        return
    service_refresh(service)


@transaction.atomic
def service_refresh(service: InferenceService) -> str:
    """Recompute the status from the instances; idempotent, safe to call from any process."""
    service = InferenceService.objects.select_related("workspace", "created_by").get(pk=service.pk)
    instances = list(service.instances.select_related("run", "model_version__app"))
    # Drained instances whose runs ended are history now (their runs stay in Resources).
    for instance in instances:
        if instance.draining_since and instance.run.status in TERMINAL_STATUSES:
            instance.delete()
    instances = [i for i in instances if i.pk is not None]
    current = [i for i in instances if i.generation == service.generation and not i.draining_since]
    if service.image_builds:
        _image_builds_follow(service, current)
    status = service.status
    if status == S.STOPPING:
        if all(i.run.status in TERMINAL_STATUSES for i in instances):
            _status_set(service, S.STOPPED, expect=S.STOPPING, event="Service stopped.")
        return service.status
    if status not in (S.RUNNING, S.ALARM, *DEPLOYING):
        return status
    failed = [i for i in current if _given_up(i.run)]
    ready = [i for i in current if _ready(i.run)]
    if service.pending_config:
        if failed:
            _rollback(service, current, reason=_failure_text(failed[0].run))
        elif len(ready) == len(current):
            _promote(service, current)
        return service.status
    if status == S.WAITING and any(i.run.status != RunStatus.QUEUED for i in current):
        if _status_set(service, S.DEPLOYING, expect=S.WAITING, event="Resources are available; deploying."):
            status = S.DEPLOYING
    if status in DEPLOYING:
        if failed:
            why = _failure_text(failed[0].run)
            if _status_set(service, S.ABNORMAL, expect=DEPLOYING, reason=why, level=EventLevel.ERROR,
                           event=f"Service {service.name} started failed. {why}."):
                _stop_runs([i.run for i in current], user=_actor(service), reason="Another instance failed to start.")
        elif current and len(ready) == len(current):
            if _status_set(service, S.RUNNING, expect=DEPLOYING, event=f"Service {service.name} started successfully.",
                           started_at=timezone.now(), deploying_since=None):
                _auto_stop_arm(service)
        return service.status
    unhealthy = [i for i in current if not _ready(i.run)]
    if unhealthy and status == S.RUNNING:
        first = unhealthy[0].run
        _status_set(service, S.ALARM, expect=S.RUNNING, level=EventLevel.WARNING,
                    reason=f"{len(unhealthy)} instance(s) not ready",
                    event=f"Service abnormal, unhealthy instances: {len(unhealthy)} "
                          f"({first.get_status_display().lower()}: {first.status_reason.rstrip('.')}). "
                          "Crashed instances are restarted automatically.")
    elif not unhealthy and status == S.ALARM:
        _status_set(service, S.RUNNING, expect=S.ALARM, event=f"Service recovered: all {len(current)} instances ready.")
    for instance in failed:
        event_add(obj=service, level=EventLevel.ERROR,
                  message=f"Instance {instance.pk} ({instance.model_version.label if instance.model_version else '?'}) "
                          f"failed after {instance.run.auto_restarts} restarts: {_failure_text(instance.run)}. "
                          "Restart the service to replace it.")
    return service.status


def _promote(service: InferenceService, current: list[ServiceInstance]) -> None:
    """Every instance of the new generation is ready: it takes over, the old generation drains."""
    rows = _rows_from_pending(service)
    updated = InferenceService.objects.filter(pk=service.pk, generation=service.generation).exclude(
        pending_config=[]).update(pending_config=[])
    if not updated:
        return
    now = timezone.now()
    old = ServiceInstance.objects.filter(service=service, draining_since__isnull=True).exclude(
        generation=service.generation)
    drained = old.update(draining_since=now)
    service.versions.all().delete()
    by_version = {}
    for position, row in enumerate(rows):
        sv = ServiceVersion.objects.create(service=service, model_version=row["model_version"], weight=row["weight"],
                                           pool=row["pool"], flavor=row["flavor"], instance_count=row["instance_count"],
                                           env=row["env"], position=position)
        by_version[row["model_version"].pk] = sv
    for instance in current:
        ServiceInstance.objects.filter(pk=instance.pk).update(service_version=by_version.get(instance.model_version_id))
    service.pending_config = []
    event_add(obj=service, message=f"Update finished: {len(current)} new instance(s) serve; {drained} old instance(s) "
                                   "drain and stop.")
    if service.status == S.ALARM:
        _status_set(service, S.RUNNING, expect=S.ALARM, event="Service recovered.")


def _rollback(service: InferenceService, current: list[ServiceInstance], *, reason: str) -> None:
    updated = InferenceService.objects.filter(pk=service.pk, generation=service.generation).exclude(
        pending_config=[]).update(pending_config=[], generation=service.generation - 1)
    if not updated:
        return
    service.pending_config, service.generation = [], service.generation - 1
    event_add(obj=service, level=EventLevel.ERROR, message=f"Failed to update service, rollback it. {reason}.")
    try:
        _stop_runs([i.run for i in current], user=_actor(service), reason="The update failed; rolled back.")
        now = timezone.now()
        ServiceInstance.objects.filter(pk__in=[i.pk for i in current]).update(draining_since=now)
        event_add(obj=service, message="Failed to update service, rollback succeeded.")
    except Exception as exc:
        logger.exception("rollback of service %s failed", service.pk)
        event_add(obj=service, level=EventLevel.ERROR, message=f"Failed to update service, rollback failed. {exc}")


def service_description_update(*, user, service: InferenceService, description: str) -> InferenceService:
    """Edit the description only (allowed in any status)."""
    require_perm(user, service.workspace, "service:update")
    service.description = (description or "").strip()[:500]
    service.save(update_fields=["description", "updated_at"])
    audit_record(actor=user, action="service:update", obj=service)
    return service


def instance_stats(service: InferenceService) -> dict[str, Any]:
    instances = list(service.instances.select_related("run"))
    return {"total": len(instances), "ready": sum(1 for i in instances if _ready(i.run) and not i.draining_since)}
