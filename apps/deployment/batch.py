"""Batch services: run a model version over a folder or a `.manifest` of files (seed-06 §6).

Each instance is a run of `python -m atelier_modelserver.batch` processing one shard of the
inputs; its output folder is the service's output location. Statuses: deploying (runs queued)
→ running (a process started) → completed ("Service stopped automatically after running.")
or abnormal; a completed, abnormal or stopped batch service can be started again (a new task
id), stopped, deleted, never restarted.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.paths import StoragePath, parse
from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add
from apps.core.storage import get_storage
from apps.runtime.callbacks import RunChange
from apps.runtime.choices import TERMINAL_STATUSES, RunStatus
from apps.runtime.models import Run
from apps.runtime.services import run_submit

from .choices import ModelSource, ServiceKind, ServiceStatus
from .models import AiAppVersion, InferenceService, ServiceConfigRecord, ServiceInstance, ServiceVersion
from .serving import MODELSERVER_DIR, OWNER_TYPE, _actor, _int, _status_set, _stop_runs, versions_clean
from .services import name_clean

logger = logging.getLogger(__name__)
S = ServiceStatus
PRIMITIVES = {"string", "number", "integer", "boolean"}
# Distinct source folders one manifest may draw from (each is staged as one run input).
MAX_SOURCE_FOLDERS = 40
REMOTE_SCHEMES = ("obs://", "s3://")


def mapping_default(api: dict) -> dict:
    """The request schema with a 0-based CSV column `index` on every primitive leaf, in order."""
    schema = copy.deepcopy(((api.get("request") or {}).get("data")) or {})
    counter = iter(range(10_000))

    def walk(node):
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "object":
            for child in (node.get("properties") or {}).values():
                walk(child)
        elif kind == "array":
            items = node.get("items")
            for child in (items if isinstance(items, list) else [items]):
                walk(child)
        elif kind in PRIMITIVES:
            node["index"] = next(counter)

    walk(schema)
    return schema


def _mapping_check(mapping) -> dict:
    if not isinstance(mapping, dict):
        raise ValidationError({"mapping": ["The mapping is a JSON Schema object with an index on each field."]})

    def walk(node, where):
        if isinstance(node, dict):
            if "index" in node and (not isinstance(node["index"], int) or isinstance(node["index"], bool)
                                    or node["index"] < 0):
                raise ValidationError({"mapping": [f"{where}: index must be a whole number ≥ 0 (a CSV column)."]})
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(mapping, "")
    return mapping


def _storage_source(user, text: str, *, field: str, must_exist: bool = True, action: str = "storage:view") -> StoragePath:
    """A storage path the user may use; missing → ModelArts.3551, denied → ModelArts.3567."""
    from apps.storage.selectors import storage_path_resolve

    for scheme in REMOTE_SCHEMES:
        if text.startswith(scheme):
            text = "storage://" + text[len(scheme):]
    try:
        return storage_path_resolve(user, text, action, must_exist=must_exist)
    except ValidationError as exc:
        codes = {getattr(e, "code", "") for e in exc.error_list}
        if codes & {"permission"}:
            raise ValidationError({field: [f"ModelArts.3567: storage error occurs because Access Denied ({text})."]}) \
                from None
        if codes & {"missing", "no_bucket"}:
            raise ValidationError({field: [f"ModelArts.3551: storage path {text} does not exist."]}) from None
        raise ValidationError({field: exc.messages}) from None


@transaction.atomic
def batch_service_create(*, user, workspace, name: str, model_version, input_uri: str, output_uri: str, flavor,
                         pool, instance_count: int = 1, env=None, deploy_timeout_minutes: int = 20,
                         mapping=None, description: str = "") -> InferenceService:
    """Deploy a batch service (service:create) and start it.

    Refusals: name rules, quota (ATELIER_DEPLOYMENT_MAX_BATCH_SERVICES per user), a version that
    is not Normal or not meant for batch, an API without request/response content types and
    schemas, a missing input or output (ModelArts.3551), no access (ModelArts.3567), an input
    that is neither a folder nor a .manifest file.
    """
    require_perm(user, workspace, "service:create")
    name = name_clean(name)
    if InferenceService.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'A service named "{name}" already exists in this workspace.']})
    quota = settings.ATELIER_DEPLOYMENT_MAX_BATCH_SERVICES
    if InferenceService.objects.filter(created_by=user, kind=ServiceKind.BATCH).count() >= quota:
        raise ValidationError(f"You already have {quota} batch services, the most allowed; delete one first.")
    rows = versions_clean(workspace, [{"model_version": model_version, "weight": 100, "flavor": flavor, "pool": pool,
                                       "instance_count": instance_count, "env": env or {}}], kind=ServiceKind.BATCH)
    version: AiAppVersion = rows[0]["model_version"]
    api = version.api
    for part in ("request", "response"):
        body = api.get(part) or {}
        if not body.get("Content-type") or not body.get("data"):
            raise ValidationError({"model_version": [f"{version.label}: a batch service needs apis[0].{part} with "
                                                     "Content-type and data in config.json."]})
    source = _storage_source(user, (input_uri or "").strip(), field="input_uri")
    storage = get_storage()
    if storage.is_folder(source):
        input_kind = "folder"
    elif source.key.endswith(".manifest"):
        input_kind = "manifest"
    else:
        raise ValidationError({"input_uri": ["The input is a folder or a .manifest file."]})
    target = _storage_source(user, (output_uri or "").strip(), field="output_uri", action="storage:create")
    if not storage.is_folder(target):
        raise ValidationError({"output_uri": [f"ModelArts.3551: storage path {target.uri} does not exist or is not "
                                              "a folder."]})
    if target.is_within(source) or (input_kind == "folder" and source.is_within(target)):
        raise ValidationError({"output_uri": ["Choose an output folder outside the input folder."]})
    is_json = (api.get("request") or {}).get("Content-type") == "application/json"
    if mapping in (None, "", {}):
        mapping = mapping_default(api) if is_json else {}
    elif isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except ValueError as exc:
            raise ValidationError({"mapping": [f"The mapping is not valid JSON: {exc}."]}) from None
    mapping = _mapping_check(mapping)
    timeout = _int(deploy_timeout_minutes, "deploy_timeout_minutes", 3, 120,
                   "The deploy timeout is a whole number of minutes from 3 to 120.")
    try:
        with transaction.atomic():
            service = InferenceService.objects.create(
                workspace=workspace, name=name, description=(description or "").strip()[:500], kind=ServiceKind.BATCH,
                status=S.DEPLOYING, status_changed_at=timezone.now(), created_by=user, deploy_timeout_minutes=timeout,
                auto_stop_hours=None, input_uri=source.uri, input_kind=input_kind, output_uri=target.uri,
                request_path=api.get("url", "/"), mapping=mapping)
    except IntegrityError:
        raise ValidationError({"name": [f'A service named "{name}" already exists in this workspace.']}) from None
    row = rows[0]
    ServiceVersion.objects.create(service=service, model_version=version, weight=100, pool=row["pool"],
                                  flavor=row["flavor"], instance_count=row["instance_count"], env=row["env"])
    ServiceConfigRecord.objects.create(service=service, created_by=user, note="Deployed", config={
        "version": version.label, "input": source.uri, "output": target.uri, "instance_count": row["instance_count"],
        "flavor": row["flavor"].name, "mapping": mapping})
    audit_record(actor=user, action="service:create", obj=service, detail={"kind": "batch", "version": version.label})
    _batch_run(service, user=user)
    return service


def _resolve_manifest(user, service: InferenceService) -> tuple[list[dict], list[dict]]:
    """(run inputs for the manifest's folders, resolved entries) of a manifest input."""
    storage = get_storage()
    output = parse(service.output_uri)
    with storage.open(parse(service.input_uri)) as handle:
        text = handle.read(50 * 1024 * 1024).decode("utf-8-sig")
    folders: dict[str, str] = {}
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            source = json.loads(line)["source"]
        except (ValueError, KeyError, TypeError):
            raise ValidationError({"input_uri": [f"Manifest line {number} is not a JSON object with a source."]}) \
                from None
        if not isinstance(source, str):
            raise ValidationError({"input_uri": [f"Manifest line {number}: source must be text."]})
        if source.startswith("https://"):
            entries.append({"source": source, "local": source, "name": source.split("?")[0].rsplit("/", 1)[-1]})
            continue
        path = _storage_source(user, source, field="input_uri")
        # A file's folder is staged whole, unless that folder is a bucket root or holds the output:
        # then only the file is (the run engine refuses an output inside an input, and rightly so).
        parent = path.parent
        staged = path if not parent.key or output.is_within(parent) else parent
        if staged.uri not in folders:
            if len(folders) >= MAX_SOURCE_FOLDERS:
                raise ValidationError({"input_uri": [f"The manifest draws from more than {MAX_SOURCE_FOLDERS} folders; "
                                                     "group the files into fewer folders."]})
            folders[staged.uri] = f"src_{len(folders)}"
        entries.append({"source": source, "local": f"{folders[staged.uri]}/{path.name}", "name": path.name})
    if not entries:
        raise ValidationError({"input_uri": ["The manifest lists no files."]})
    return [{"name": name, "uri": uri} for uri, name in folders.items()], entries


def _batch_run(service: InferenceService, *, user) -> None:
    """Submit one run per instance (shard) for a new task id."""
    sv = service.versions.select_related("model_version__app", "pool", "flavor").get()
    version = sv.model_version
    task_id = uuid.uuid4().hex[:12]
    inputs: list[dict] = []
    argv_extra: list[str] = []
    if service.input_kind == "manifest":
        folder_inputs, entries = _resolve_manifest(user, service)
        output = parse(service.output_uri)
        sources = StoragePath(output.bucket, f"atelier-batch/{service.pk}/{task_id}/sources.json")
        get_storage().save(sources, io.BytesIO(json.dumps(entries).encode()))
        inputs += folder_inputs + [{"name": "sources", "uri": sources.uri}]
    else:
        inputs.append({"name": "data", "uri": service.input_uri})
        argv_extra += ["--input-uri", service.input_uri]
    env = {"PYTHONPATH": str(MODELSERVER_DIR), "MODEL_NAME": version.app.name, "MODEL_VERSION": version.version}
    if version.serves_package:
        inputs.append({"name": "package", "uri": version.package_uri})
    else:
        from .serving import instance_command

        argv, health_path, image_inputs, extra_env = instance_command(version, sv.env.keys())
        inputs.extend(image_inputs)  # an image's model folder, staged for its /home/mind/model mount
        env.update(extra_env)
        argv_extra += ["--command", json.dumps(argv), "--health-path", health_path]
        if version.source_type == ModelSource.IMAGE and version.protocol == "https":
            argv_extra += ["--scheme", "https"]
    InferenceService.objects.filter(pk=service.pk).update(task_id=task_id, progress={}, generation=service.generation + 1)
    service.task_id, service.generation = task_id, service.generation + 1
    for shard in range(sv.instance_count):
        argv = ["python", "-m", "atelier_modelserver.batch", "--output-uri", service.output_uri, "--task-id", task_id,
                "--request-path", service.request_path or "/", "--api", json.dumps(version.api),
                "--mapping", json.dumps(service.mapping) if service.mapping else "",
                "--shard", str(shard), "--shards", str(sv.instance_count), *argv_extra]
        run = run_submit(user=user, workspace=service.workspace, name=f"{service.name} · batch {shard + 1}/"
                         f"{sv.instance_count}", command=argv, flavor=sv.flavor, pool=sv.pool, job_type="inference",
                         env={**sv.env, **env}, inputs=inputs, outputs=[{"name": "result", "uri": service.output_uri}],
                         max_restarts=0, owner_type=OWNER_TYPE, owner_id=str(service.pk))[0]
        ServiceInstance.objects.create(service=service, service_version=sv, model_version=version, run=run,
                                       generation=service.generation)
    event_add(obj=service, message=f"Start to deploy service. Task {task_id}: {sv.instance_count} instance(s) over "
                                   f"{service.input_uri}.")


@transaction.atomic
def batch_service_start(*, user, service: InferenceService) -> InferenceService:
    """Run a completed, abnormal or stopped batch service again with a new task id."""
    if Run.objects.filter(service_instance__service=service).exclude(status__in=TERMINAL_STATUSES).exists():
        raise ValidationError("Instances of the last run are still stopping; try again in a moment.")
    service.instances.all().delete()
    _status_set(service, S.DEPLOYING, event="Starting service.", reason="", deploying_since=timezone.now())
    _batch_run(service, user=_actor(service, user))
    audit_record(actor=user, action="service:start", obj=service)
    return service


def batch_on_run_change(service: InferenceService, change: RunChange) -> None:
    with transaction.atomic():
        batch_refresh(service)


def batch_refresh(service: InferenceService) -> str:
    service = InferenceService.objects.select_related("workspace", "created_by").get(pk=service.pk)
    runs = [i.run for i in service.instances.filter(generation=service.generation).select_related("run")]
    if not runs:
        return service.status
    if service.status == S.DEPLOYING and any(r.status in (RunStatus.RUNNING,) or r.started_at for r in runs):
        _status_set(service, S.RUNNING, expect=S.DEPLOYING, event="Batch inference started.",
                    started_at=timezone.now())
    if not all(r.status in TERMINAL_STATUSES for r in runs):
        return service.status
    progress = _progress(runs)
    InferenceService.objects.filter(pk=service.pk).update(progress=progress)
    if service.status == S.STOPPING:
        _status_set(service, S.STOPPED, expect=S.STOPPING, event="Service stopped.")
    elif all(r.status == RunStatus.SUCCEEDED for r in runs):
        _status_set(service, S.COMPLETED, expect={S.DEPLOYING, S.RUNNING},
                    event=f"Service stopped automatically after running. {progress.get('done', 0)} succeeded, "
                          f"{progress.get('failed', 0)} failed of {progress.get('total', 0)} inputs; results in "
                          f"{service.output_uri}.")
    else:
        failed = next(r for r in runs if r.status != RunStatus.SUCCEEDED)
        why = failed.status_reason.rstrip(".")
        _status_set(service, S.ABNORMAL, expect={S.DEPLOYING, S.RUNNING}, level=EventLevel.ERROR, reason=why,
                    event=f"Failed to run batch service, retry later. Error message: {why}.")
        _stop_runs(runs, user=_actor(service), reason="Another batch instance failed.")
    return service.status


def _progress(runs: list[Run]) -> dict:
    from apps.runtime.models import Metric

    totals = {"total": 0, "done": 0, "failed": 0}
    for run in runs:
        for name in totals:
            value = (Metric.objects.filter(run=run, name=f"batch_{name}").order_by("-step", "-id")
                     .values_list("value", flat=True).first())
            totals[name] += int(value or 0)
    return totals


def batch_progress(service: InferenceService) -> dict:
    """Live progress of the current task from the runs' metric lines."""
    runs = [i.run for i in service.instances.filter(generation=service.generation).select_related("run")]
    return _progress(runs) if runs else dict(service.progress or {})


def batch_sweep(now) -> dict[str, int]:
    """Deploy timeouts of batch services (their runs never reached the running state)."""
    count = 0
    for service in InferenceService.objects.filter(kind=ServiceKind.BATCH, status=S.DEPLOYING):
        since = service.deploying_since or service.status_changed_at or service.created_at
        if now - since > timedelta(minutes=service.deploy_timeout_minutes):
            with transaction.atomic():
                runs = [i.run for i in service.instances.filter(generation=service.generation).select_related("run")]
                details = "; ".join(f"{r.get_status_display().lower()}: {r.status_reason.rstrip('.')}" for r in runs[:3])
                if _status_set(service, S.ABNORMAL, expect=S.DEPLOYING, level=EventLevel.ERROR,
                               reason="Deploying timeout", event=f"Deploying timeout, details: {details}."):
                    _stop_runs(runs, user=_actor(service), reason="Deploying timeout.")
                    count += 1
    return {"batch_timeouts": count}

