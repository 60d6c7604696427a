"""Validation of the job form's optional sections (spec seed-05 §17 items 8, 13, 14, 15):
run-as uid, custom flavor, extra host mounts, log persistence and event notifications.

Every function raises ValidationError({field: [message]}) naming the field and the rule, and
returns the cleaned value as it is stored on the TrainingJob row.
"""
from __future__ import annotations

import posixpath
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from .notifications import EVENT_LABELS, HANG

MAX_MOUNTS = 8
UID_MAX = 65535
SHARED_UID_MIN = 1000  # shared pools never run code as a system account
DEFAULT_UID = 1000
MAX_RECIPIENTS = 10
# Top-level folders of the run directory ($MA_MOUNT_PATH) the platform writes itself.
RESERVED_RUN_FOLDERS = {"inputs", "outputs", "log", "cache", ".pydeps", "mnt-platform"}


def pool_is_dedicated(pool) -> bool:
    """A pool is dedicated when staff marked it so (Resources > Pools); every other pool is shared."""
    return pool is not None and bool(pool.dedicated)


def run_as_uid_clean(value: Any, *, pool) -> int:
    """The uid of a custom-command job: default 1000; 1000–65535 on shared pools, 0–65535 on dedicated."""
    if value in (None, ""):
        return DEFAULT_UID
    low = 0 if pool_is_dedicated(pool) else SHARED_UID_MIN
    kind = "dedicated" if low == 0 else "shared"
    try:
        uid = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError({"run_as_uid": [f'"{value}" is not a uid; give a whole number {low}–{UID_MAX}.']}) from None
    if isinstance(value, bool) or not low <= uid <= UID_MAX:
        raise ValidationError({"run_as_uid": [f"The uid must be {low}–{UID_MAX} on the {kind} pool {pool.name}."]})
    return uid


def pool_node_capacity(pool) -> dict[str, int]:
    """The largest online worker of the pool: {"cpus", "memory_mb", "gpus"} (zeros when none is online)."""
    from apps.runtime.choices import NodeStatus
    from apps.runtime.models import WorkerNode

    best = {"cpus": 0, "memory_mb": 0, "gpus": 0}
    for node in WorkerNode.objects.filter(pools=pool, status=NodeStatus.ONLINE):
        best = {"cpus": max(best["cpus"], node.cpus), "memory_mb": max(best["memory_mb"], node.memory_mb),
                "gpus": max(best["gpus"], node.gpu_count)}
    return best


def custom_flavor_clean(spec: Any, *, pool) -> dict[str, int]:
    """{cpus, memory_mb, gpus} within the pool's node capacity; {} or None = off."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise ValidationError({"custom_flavor": ["Give the custom flavor as {cpus, memory_mb, gpus}."]})
    clean = {}
    for key, label, low in (("cpus", "CPU cores", 1), ("memory_mb", "memory (MiB)", 64), ("gpus", "GPUs", 0)):
        raw = spec.get(key, 0 if key == "gpus" else None)
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise ValidationError({"custom_flavor": [f"Custom flavor: {label} must be a whole number."]}) from None
        if number < low:
            raise ValidationError({"custom_flavor": [f"Custom flavor: {label} must be at least {low}."]})
        clean[key] = number
    capacity = pool_node_capacity(pool)
    over = [f"{label} {clean[key]} > {capacity[key]}" for key, label in
            (("cpus", "CPU cores"), ("memory_mb", "memory MiB"), ("gpus", "GPUs")) if clean[key] > capacity[key]]
    if over:
        raise ValidationError({"custom_flavor": [
            f"The custom flavor exceeds the largest online node of pool {pool.name} "
            f"({capacity['cpus']} CPU, {capacity['memory_mb']} MiB, {capacity['gpus']} GPU): {', '.join(over)}."]})
    return clean


def custom_flavor_resolve(spec: dict[str, int], pool):
    """The Flavor row the run engine schedules a custom flavor with (created once per shape, pool added).

    Named `custom-<cpus>c-<memory>m-<gpus>g`; the job form hides these rows from its flavor list.
    """
    from apps.runtime.models import Flavor

    name = f"custom-{spec['cpus']}c-{spec['memory_mb']}m-{spec['gpus']}g"
    flavor, _ = Flavor.objects.get_or_create(
        name=name, defaults={"cpus": spec["cpus"], "memory_mb": spec["memory_mb"], "gpus": spec["gpus"],
                             "description": "Custom flavor of training jobs (created on demand)."})
    flavor.pools.add(pool)
    return flavor


def _mount_path_clean(raw: str, local_code_dir: str) -> str:
    """A mount path is a folder of the run directory; a leading "/" means the run directory's root."""
    text = (raw or "").strip()
    if text in ("", "/", "."):
        raise ValidationError({"mounts": [f'Mount path "{text}": "/" (the run directory itself) cannot be a '
                                          f'mount path.']})
    root = str(settings.ATELIER_RUNTIME_WORK_ROOT).rstrip("/")
    if text.rstrip("/") == root or text.startswith(root + "/"):
        raise ValidationError({"mounts": [f'Mount path "{text}": the platform mount root {root} is reserved.']})
    path = posixpath.normpath(text.lstrip("/"))
    if path.startswith("..") or "\x00" in path or len(path) > 255:
        raise ValidationError({"mounts": [f'Mount path "{text}" must stay inside the run directory.']})
    top = path.split("/")[0]
    if top == "cache":
        raise ValidationError({"mounts": [f'Mount path "{text}": /cache is the scratch folder.']})
    if top in RESERVED_RUN_FOLDERS or top == (local_code_dir or "user-job-dir").split("/")[0]:
        raise ValidationError({"mounts": [f'Mount path "{text}": /{top} is a folder the platform mounts.']})
    return path


def mounts_clean(mounts: Any, *, local_code_dir: str = "user-job-dir") -> list[dict[str, str]]:
    """At most 8 host folders, each source once, each mount path once, outside the platform's folders."""
    if mounts in (None, ""):
        return []
    if not isinstance(mounts, list) or any(not isinstance(m, dict) for m in mounts):
        raise ValidationError({"mounts": ["Give mounts as a list of {source, path}."]})
    if len(mounts) > MAX_MOUNTS:
        raise ValidationError({"mounts": [f"{len(mounts)} mounts given; at most {MAX_MOUNTS}."]})
    roots = [posixpath.normpath(r) for r in settings.ATELIER_TRAINING_HOST_MOUNT_ROOTS]
    out, sources, paths = [], set(), set()
    for item in mounts:
        source = posixpath.normpath(str(item.get("source") or "").strip() or ".")
        if not source.startswith("/"):
            raise ValidationError({"mounts": [f'Source "{item.get("source", "")}": give an absolute host folder.']})
        if not any(source == r or source.startswith(r.rstrip("/") + "/") for r in roots):
            allowed = ", ".join(roots) or "none (the administrator has not allowed host mounts)"
            raise ValidationError({"mounts": [f'Source "{source}" is not below an allowed host folder: {allowed}.']})
        path = _mount_path_clean(str(item.get("path") or ""), local_code_dir)
        if source in sources:
            raise ValidationError({"mounts": [f'Source "{source}" is mounted twice; mount each folder once.']})
        if path in paths:
            raise ValidationError({"mounts": [f'Mount path "/{path}" is used twice; mount paths must be unique.']})
        sources.add(source)
        paths.add(path)
        out.append({"source": source, "path": path})
    return out


def log_path_clean(user, persist: bool, uri: Any) -> str:
    """The folder persisted logs are copied to: required (and writable) when persistence is on."""
    uri = str(uri or "").strip()
    if not persist:
        return ""
    if not uri:
        raise ValidationError({"log_path": ["Persisting logs needs a job log path (an empty storage folder)."]})
    from apps.storage.selectors import storage_path_resolve

    try:
        return storage_path_resolve(user, uri, "storage:create", kind="folder").uri
    except ValidationError as exc:
        raise ValidationError({"log_path": exc.messages}) from None


def notification_clean(channel: str, target: Any, events: Any, *, gpus: int) -> tuple[str, str, list[str]]:
    """(channel, target, events): email addresses or a webhook URL, and a non-empty event subset.

    "Suspected hang" is only watched on GPU jobs, so only they may subscribe to it.
    """
    channel = (channel or "").strip()
    if not channel:
        return "", "", []
    if channel not in ("email", "webhook"):
        raise ValidationError({"notify_channel": [f'Unknown channel "{channel}"; use email or webhook.']})
    target = str(target or "").strip()
    if channel == "email":
        addresses = [a.strip() for a in target.replace(";", ",").split(",") if a.strip()]
        if not addresses or len(addresses) > MAX_RECIPIENTS:
            raise ValidationError({"notify_target": [f"Give 1–{MAX_RECIPIENTS} e-mail addresses, comma-separated."]})
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"notify_target": [f'"{address}" is not an e-mail address.']}) from None
        target = ", ".join(addresses)
    else:
        try:
            URLValidator(schemes=["http", "https"])(target)
        except ValidationError:
            raise ValidationError({"notify_target": [f'"{target}" is not an http(s) URL.']}) from None
    if not isinstance(events, (list, tuple)) or not events:
        raise ValidationError({"notify_events": ["Choose at least one event to be notified of."]})
    unknown = [e for e in events if e not in EVENT_LABELS]
    if unknown:
        raise ValidationError({"notify_events": [f'Unknown event "{unknown[0]}"; choose from '
                                                 f'{", ".join(EVENT_LABELS)}.']})
    if HANG in events and not gpus:
        raise ValidationError({"notify_events": ["Only GPU jobs are watched for a suspected hang."]})
    return channel, target, [e for e in EVENT_LABELS if e in events]


# Input-constraint data formats (ModelArts names) → dataset version formats. Atelier publishes the
# columnar table format as Parquet where ModelArts has CarbonData (datasets spec §13), so one stands for the other.
DATA_FORMAT_VERSIONS = {"Default": "default", "CarbonData": "parquet"}
SPLIT_VERSIONS = {"split_only": "split", "unsplit_only": "unsplit", "any": "any"}


def dataset_inputs_check(user, definitions: list[dict], job_inputs: list[dict]) -> None:
    """Inputs whose definition is constrained to a dataset must point at a matching published version.

    The candidates are `apps.datasets.selectors.versions_for_training()` (published versions the user
    may read) narrowed by the constraint's label type, data formats and split.
    """
    from apps.datasets.selectors import versions_for_training

    by_name = {c["name"]: c for c in job_inputs}
    for definition in definitions or []:
        constraint = definition.get("constraint") or {}
        channel = by_name.get(definition["name"])
        if constraint.get("source") != "dataset" or channel is None:
            continue
        versions = versions_for_training(user, label_type=constraint.get("label_type") or "",
                                         format=[DATA_FORMAT_VERSIONS[f] for f in constraint.get("data_format") or []
                                                 if f in DATA_FORMAT_VERSIONS],
                                         split=SPLIT_VERSIONS.get(constraint.get("split") or "any", "any"))
        uris = {v.storage_uri.rstrip("/") for v in versions}
        if channel["uri"].rstrip("/") not in uris:
            wanted = ", ".join(filter(None, [constraint.get("label_type"), "/".join(constraint.get("data_format") or []),
                                             {"split_only": "split", "unsplit_only": "unsplit"}.get(
                                                 constraint.get("split") or "")]))
            raise ValidationError({"inputs": [
                f"{definition['name']}: choose a published dataset version{f' ({wanted})' if wanted else ''}; "
                f"{channel['uri']} is not one."]})
