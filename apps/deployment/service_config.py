"""Validation of an online or batch service's configuration: version rows (weights adding up to
100, Normal versions, pools and flavors, counts, environment), personalised routing rules,
options (auto-stop, deploy timeout, traffic limit vs WebSocket), storage mounts, and the
snapshot a config record keeps. Pure checks: nothing here writes."""
from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.runtime.models import Flavor, Pool

from .choices import DeployType, ModelStatus, ServiceKind
from .models import AiAppVersion, InferenceService
from .routing import MAX_HEADER_NAME, MAX_HEADER_VALUE, MAX_RULES, Condition, RuleError

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Storage mounts (seed-06 §3.3): an absolute path of letters, digits, _, - and /.
MOUNT_PATH_RE = re.compile(r"^/[A-Za-z0-9_/-]{1,1023}$")
MAX_MOUNTS = 8


def _int(value, field: str, low: int, high: int, message: str) -> int:
    if isinstance(value, bool):
        raise ValidationError({field: [message]})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: [message]}) from None
    if str(number) != str(value).strip() and not isinstance(value, int):
        raise ValidationError({field: [message]})
    if not low <= number <= high:
        raise ValidationError({field: [message]})
    return number


def versions_clean(workspace, versions: list[dict], *, kind: str = ServiceKind.ONLINE) -> list[dict]:
    """Check the version rows of a deploy/update form; returns them with objects resolved.

    Each row: {"model_version": AiAppVersion|pk, "weight", "flavor": Flavor|pk, "pool": Pool|pk,
    "instance_count", "env"}. Weights are whole numbers summing to 100.
    """
    if not versions:
        raise ValidationError({"versions": ["Add at least one AI application version."]})
    clean, seen = [], set()
    max_instances = settings.ATELIER_DEPLOYMENT_MAX_INSTANCES
    for index, row in enumerate(versions, start=1):
        where = f"Version {index}"
        # Always the current row: a version object passed in may predate a failed rebuild.
        wanted = getattr(row.get("model_version"), "pk", row.get("model_version"))
        try:
            model_version = AiAppVersion.objects.filter(pk=wanted, workspace=workspace).select_related("app").first()
        except (TypeError, ValueError):
            model_version = None
        if model_version is None:
            raise ValidationError({"versions": [f"{where}: choose an AI application version of this workspace."]})
        if model_version.status != ModelStatus.NORMAL:
            raise ValidationError({"versions": [
                f"{where}: {model_version.label} is {model_version.get_status_display().lower()}; only versions in "
                f"status Normal can be deployed."]})
        if kind not in model_version.deploy_types:
            raise ValidationError({"versions": [f"{where}: {model_version.label} was not created for "
                                                f"{DeployType(kind).label.lower()}s."]})
        if model_version.pk in seen:
            raise ValidationError({"versions": [f"{where}: {model_version.label} is listed twice."]})
        seen.add(model_version.pk)
        weight = _int(row.get("weight", 100 if len(versions) == 1 else None), "versions", 0, 100,
                      f"{where}: the traffic weight is a whole number from 0 to 100.")
        pool, flavor = row.get("pool"), row.get("flavor")
        pool = pool if isinstance(pool, Pool) else Pool.objects.filter(pk=pool).first()
        flavor = flavor if isinstance(flavor, Flavor) else Flavor.objects.filter(pk=flavor).first()
        if pool is None or flavor is None:
            raise ValidationError({"versions": [f"{where}: choose a pool and a flavor."]})
        if not flavor.pools.filter(pk=pool.pk).exists():
            raise ValidationError({"versions": [f'{where}: pool "{pool.name}" does not offer flavor "{flavor.name}".']})
        count = _int(row.get("instance_count", 1), "versions", 1, max_instances,
                     f"{where}: the instance count is a whole number from 1 to {max_instances}.")
        env = row.get("env") or {}
        if not isinstance(env, dict) or any(not ENV_NAME_RE.match(str(k)) or str(k).startswith("ATELIER_")
                                            for k in env):
            raise ValidationError({"versions": [f"{where}: environment variable names use letters, digits and _, "
                                                "do not start with a digit or ATELIER_."]})
        clean.append({"model_version": model_version, "weight": weight, "pool": pool, "flavor": flavor,
                      "instance_count": count, "env": {str(k): str(v) for k, v in env.items()}})
    total = sum(row["weight"] for row in clean)
    if total != 100:
        raise ValidationError({"versions": [f"The traffic weights add up to {total}; they must add up to 100."]})
    return clean


def rules_clean(rules, versions: list[dict]) -> list[dict]:
    """Check personalised routing rules against the service's versions (at most 10, ordered)."""
    rules = [r for r in (rules or []) if (r.get("condition") or "").strip()]
    if len(rules) > MAX_RULES:
        raise ValidationError({"rules": [f"At most {MAX_RULES} rules."]})
    ids = {row["model_version"].pk: row["model_version"] for row in versions}
    clean = []
    for index, rule in enumerate(rules, start=1):
        try:
            Condition(rule["condition"])
        except RuleError as exc:
            raise ValidationError({"rules": [f"Rule {index}: {exc}."]}) from None
        target = rule.get("version")
        target = getattr(target, "pk", target)
        try:
            target = int(target)
        except (TypeError, ValueError):
            target = None
        if target not in ids:
            raise ValidationError({"rules": [f"Rule {index}: the target must be one of the service's versions."]})
        name, value = (rule.get("header_name") or "").strip(), (rule.get("header_value") or "").strip()
        if len(name) > MAX_HEADER_NAME or len(value) > MAX_HEADER_VALUE:
            raise ValidationError({"rules": [f"Rule {index}: the header name has at most {MAX_HEADER_NAME} characters "
                                             f"and its value at most {MAX_HEADER_VALUE}."]})
        if value and not name:
            raise ValidationError({"rules": [f"Rule {index}: give the header name for the value."]})
        if name and not re.match(r"^[A-Za-z0-9-]+$", name):
            raise ValidationError({"rules": [f"Rule {index}: a header name has letters, digits and hyphens."]})
        clean.append({"condition": rule["condition"].strip(), "version": target, "header_name": name,
                      "header_value": value})
    return clean


def _options_clean(*, auto_stop_hours, deploy_timeout_minutes, traffic_limit, websocket: bool) -> dict:
    if auto_stop_hours in (None, "", 0, "0"):
        auto_stop_hours = None
    else:
        auto_stop_hours = _int(auto_stop_hours, "auto_stop_hours", 1, 24,
                               "Auto-stop is off or a whole number of hours from 1 to 24.")
    timeout = _int(deploy_timeout_minutes, "deploy_timeout_minutes", 3, 120,
                   "The deploy timeout is a whole number of minutes from 3 to 120.")
    if traffic_limit in (None, "", 0, "0"):
        traffic_limit = None
    else:
        traffic_limit = _int(traffic_limit, "traffic_limit", 1, 1_000_000,
                             "The traffic limit is a whole number of requests per second (1 or more).")
    if websocket and traffic_limit:
        raise ValidationError({"traffic_limit": ["A WebSocket service has no traffic limit; turn one of them off."]})
    return {"auto_stop_hours": auto_stop_hours, "deploy_timeout_minutes": timeout, "traffic_limit": traffic_limit,
            "websocket": bool(websocket)}


def mounts_clean(user, mounts) -> list[dict]:
    """Check storage mounts: [{"source": storage folder, "mount_path": "/abs/path"}], at most 8.

    Rows with neither field are ignored (an empty form row). The caller must be able to view the
    folder; it is resolved to its canonical storage:// URI.
    """
    from apps.storage.selectors import storage_path_resolve

    rows = [m for m in (mounts or []) if isinstance(m, dict)
            and ((m.get("source") or "").strip() or (m.get("mount_path") or "").strip())]
    if len(mounts or []) != len([m for m in (mounts or []) if isinstance(m, dict)]):
        raise ValidationError({"mounts": ["Each storage mount is an object with a source and a mount_path."]})
    if len(rows) > MAX_MOUNTS:
        raise ValidationError({"mounts": [f"At most {MAX_MOUNTS} storage mounts."]})
    clean, seen = [], set()
    for index, row in enumerate(rows, start=1):
        path = (row.get("mount_path") or "").strip()
        if not MOUNT_PATH_RE.match(path) or "//" in path or path.rstrip("/") == "":
            raise ValidationError({"mounts": [
                f"Mount {index}: the mount path starts with /, uses only letters, digits, _, - and /, has at most "
                "1024 characters and is not / itself (e.g. /home/mind/data)."]})
        path = path.rstrip("/")
        if path in seen:
            raise ValidationError({"mounts": [f"Mount {index}: {path} is mounted twice."]})
        seen.add(path)
        try:
            source = storage_path_resolve(user, (row.get("source") or "").strip(), "storage:view", must_exist=True,
                                          kind="folder")
        except ValidationError as exc:
            raise ValidationError({"mounts": [f"Mount {index}: {message}" for message in exc.messages]}) from None
        clean.append({"source": source.uri, "mount_path": path})
    return clean


def config_snapshot(service: InferenceService, versions: list[dict] | None = None) -> dict:
    """What a config record keeps: the versions with their weights, flavors, counts and env."""
    if versions is None:
        versions = [{"model_version": sv.model_version, "weight": sv.weight, "pool": sv.pool, "flavor": sv.flavor,
                     "instance_count": sv.instance_count, "env": sv.env}
                    for sv in service.versions.select_related("model_version__app", "pool", "flavor")]
    return {
        "versions": [{"model_version": row["model_version"].pk, "label": row["model_version"].label,
                      "weight": row["weight"], "pool": row["pool"].name, "flavor": row["flavor"].name,
                      "instance_count": row["instance_count"], "env": row["env"]} for row in versions],
        "deploy_timeout_minutes": service.deploy_timeout_minutes, "auto_stop_hours": service.auto_stop_hours,
        "traffic_limit": service.traffic_limit, "websocket": service.websocket, "rules": service.rules,
        "mounts": service.mounts,
    }
