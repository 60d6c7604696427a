"""Writes of AI applications and their versions: create, new version, import, build, delete.

Online and batch services live in `serving.py` and `batch.py`; the gateway in `gateway.py`.
Event messages follow the AI-application catalogue of seed-06 §2.10.
"""
from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.paths import parse
from apps.core.permissions import require_perm
from apps.core.services import audit_record, event_add, publish_on_commit

from . import importing
from .choices import DeployType, ModelSource, ModelStatus, RequestMode
from .models import AiApp, AiAppVersion, ServiceVersion
from .modelserver.atelier_modelserver.config import ConfigError, config_parse, health_parse

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VERSION_RE = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,4}$")
IMAGE_RE = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                      r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$")
MAX_DOCS = 3
NAME_RULE = "A name has 1–64 characters: letters, digits, hyphens and underscores."


def name_clean(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({field: [NAME_RULE]})
    return name


def _version_group(version: AiAppVersion) -> str:
    return f"deployment.aiappversion.{version.pk}"


def _publish_version(version: AiAppVersion) -> None:
    publish_on_commit(_version_group(version), {"kind": "status", "status": version.status,
                                                "label": version.get_status_display(),
                                                "reason": version.status_reason})


def next_version(app: AiApp) -> str:
    """The patch after the highest existing version (0.0.1 for the first)."""
    best = (0, 0, 0)
    for text in app.versions.values_list("version", flat=True):
        if VERSION_RE.match(text):
            best = max(best, tuple(int(p) for p in text.split(".")))
    if best == (0, 0, 0):
        return "0.0.1"
    return f"{best[0]}.{best[1]}.{best[2] + 1}"


def _clean_deploy_types(values) -> list[str]:
    values = list(dict.fromkeys(values or []))
    unknown = [v for v in values if v not in DeployType.values]
    if unknown or not values:
        raise ValidationError({"deploy_types": [f"Choose at least one of: {', '.join(DeployType.labels)}."]})
    return values


def _clean_docs(docs) -> list[dict]:
    docs = [d for d in (docs or []) if (d.get("name") or d.get("url"))]
    if len(docs) > MAX_DOCS:
        raise ValidationError({"docs": [f"At most {MAX_DOCS} documents."]})
    clean = []
    for index, doc in enumerate(docs, start=1):
        name, url = (doc.get("name") or "").strip(), (doc.get("url") or "").strip()
        if not name or len(name) > 48:
            raise ValidationError({"docs": [f"Document {index}: give a name of 1–48 characters."]})
        if not re.match(r"^https?://\S+$", url) or len(url) > 500:
            raise ValidationError({"docs": [f"Document {index}: the URL must start with http:// or https://."]})
        clean.append({"name": name, "url": url})
    return clean


START_PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_START_PARAMS = 32


def start_params_clean(raw, request_mode: str) -> list[dict]:
    """Service start parameters of an asynchronous application: [{"name", "default", "required",
    "description"}], names usable as environment variables (not PORT or ATELIER_…), at most 32.
    Synchronous applications define none (seed-06 §2.7 lists them under async usage constraints)."""
    if raw in (None, "", []):
        return []
    if request_mode != RequestMode.ASYNC:
        raise ValidationError({"start_params": ["Service start parameters are defined by asynchronous AI "
                                                "applications only; choose the Asynchronous request mode."]})
    if not isinstance(raw, list) or len(raw) > MAX_START_PARAMS:
        raise ValidationError({"start_params": [f"Give a list of at most {MAX_START_PARAMS} start parameters."]})
    out, seen = [], set()
    for number, row in enumerate(raw, start=1):
        row = row if isinstance(row, dict) else {}
        name = str(row.get("name") or "").strip()
        if not START_PARAM_RE.match(name) or name == "PORT" or name.startswith(("ATELIER_", "EDGE_")):
            raise ValidationError({"start_params": [f"Parameter {number}: {name or '(empty)'!r} is not a usable "
                                                    "name (letters, digits and _, not starting with a digit; not "
                                                    "PORT, ATELIER_… or EDGE_…)."]})
        if name in seen:
            raise ValidationError({"start_params": [f"Parameter {number}: {name} is defined twice."]})
        seen.add(name)
        default = "" if row.get("default") is None else str(row.get("default"))
        description = str(row.get("description") or "").strip()
        if len(default) > 1000 or len(description) > 200:
            raise ValidationError({"start_params": [f"Parameter {number} ({name}): keep the default to 1000 and "
                                                    "the description to 200 characters."]})
        out.append({"name": name, "default": default, "required": bool(row.get("required")),
                    "description": description})
    return out


def _clean_command(command) -> list[str]:
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            raise ValidationError({"command": [f"The command cannot be split into arguments: {exc}."]}) from None
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise ValidationError({"command": ["Give the command as a list of arguments."]})
    return command


def _clean_custom_config(*, apis, health, model_algorithm: str = "custom") -> tuple[dict, list[str]]:
    """config.json for image/command sources, built from the form's apis and health fields."""
    raw: dict[str, Any] = {"model_type": "Image", "model_algorithm": model_algorithm or "custom"}
    if apis:
        raw["apis"] = apis
    if health:
        raw["health"] = health
    try:
        return config_parse(raw)
    except ConfigError as exc:
        fields: dict[str, list[str]] = {}
        for where, message in exc.problems:
            key = "health" if where.startswith("health") else "apis" if where.startswith("apis") else "config"
            fields.setdefault(key, []).append(f"{where}: {message}")
        raise ValidationError(fields) from None


def _training_source(user, training_job_id) -> tuple[str, str, str]:
    """(storage uri of the job's output, job id, job name) of a completed training job."""
    if not django_apps.is_installed("apps.training"):
        raise ValidationError({"training_job": ["Training jobs are not available in this installation."]})
    from apps.training.choices import TrainingStatus
    from apps.training.selectors import training_job_get_for_user

    try:
        job = training_job_get_for_user(user, training_job_id)
    except Exception:
        raise ValidationError({"training_job": ["No such training job."]}) from None
    if job.status != TrainingStatus.COMPLETED:
        raise ValidationError({"training_job": [f'Training job "{job.name}" is {job.get_status_display().lower()}; '
                                                "only completed jobs can be imported."]})
    outputs = [o for o in job.outputs if o.get("uri")]
    chosen = next((o for o in outputs if o.get("name") == "train_url"), outputs[0] if outputs else None)
    if chosen is None:
        raise ValidationError({"training_job": [f'Training job "{job.name}" has no output folder to import.']})
    return chosen["uri"], str(job.pk), job.name


@transaction.atomic
def ai_app_create(*, user, workspace, name: str, description: str = "", request_mode: str = RequestMode.SYNC,
                  **version_fields) -> AiAppVersion:
    """Create an AI application and its first version (default 0.0.1); see `ai_app_version_create`.

    Needs model:create. Returns the version, whose import continues in the background.
    """
    require_perm(user, workspace, "model:create")
    name = name_clean(name)
    if request_mode not in RequestMode.values:
        raise ValidationError({"request_mode": [f"Choose {' or '.join(RequestMode.labels)}."]})
    if AiApp.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'An AI application named "{name}" already exists in this workspace.']})
    try:
        with transaction.atomic():
            app = AiApp.objects.create(workspace=workspace, name=name, description=(description or "").strip()[:500],
                                       request_mode=request_mode, created_by=user)
    except IntegrityError:
        raise ValidationError({"name": [f'An AI application named "{name}" already exists in this workspace.']}) from None
    audit_record(actor=user, action="model:create", obj=app)
    return _version_create(user=user, app=app, description=description, **version_fields)


@transaction.atomic
def ai_app_version_create(*, user, app: AiApp, **version_fields) -> AiAppVersion:
    """Add a version to `app` ("Create new version"); the version number defaults to the next patch."""
    require_perm(user, app.workspace, "model:create")
    return _version_create(user=user, app=app, **version_fields)


def _version_create(*, user, app: AiApp, version: str = "", description: str = "",
                    source_type: str = ModelSource.STORAGE, source_uri: str = "", training_job=None,
                    image: str = "", command=None, protocol: str = "http", port: int = 8080, image_copy: bool = False,
                    apis=None, health=None, deploy_types=(DeployType.ONLINE,), docs=None,
                    start_params=None) -> AiAppVersion:
    errors: dict[str, list[str]] = {}
    version = (version or "").strip() or next_version(app)
    if not VERSION_RE.match(version):
        errors["version"] = ["A version looks like 0.0.1: three whole numbers separated by dots."]
    elif app.versions.filter(version=version).exists():
        errors["version"] = [f'Version {version} of "{app.name}" already exists.']
    if source_type not in ModelSource.values:
        errors["source_type"] = [f"Choose one of: {', '.join(ModelSource.labels)}."]
    if errors:
        raise ValidationError(errors)
    deploy_types = _clean_deploy_types(deploy_types)
    docs = _clean_docs(docs)
    fields: dict[str, Any] = dict(source_type=source_type, deploy_types=deploy_types, docs=docs,
                                  description=(description or "").strip()[:500],
                                  start_params=start_params_clean(start_params, app.request_mode))
    report = None
    if source_type in (ModelSource.STORAGE, ModelSource.TRAINING):
        if source_type == ModelSource.TRAINING:
            source_uri, fields["training_job_id"], fields["training_job_name"] = _training_source(user, training_job)
            field = "training_job"
        else:
            field = "source_uri"
        source_uri = (source_uri or "").strip()
        if not source_uri:
            raise ValidationError({field: ["Choose the folder that holds the model/ folder."]})
        if any(ch.isspace() for ch in source_uri):
            raise ValidationError({field: ["The path must not contain spaces."]})
        from apps.storage.selectors import storage_path_resolve

        try:
            source = storage_path_resolve(user, source_uri, "storage:view", must_exist=True, kind="folder")
        except ValidationError as exc:
            raise ValidationError({field: exc.messages}) from None
        report = importing.package_inspect(source)
        if not report.ok:
            raise importing.report_errors(report, field)
        config = report.config
        fields.update(source_uri=source.uri, config=config, warnings=report.warnings + report.hints,
                      model_type=config["model_type"], runtime=config["runtime"],
                      model_algorithm=config["model_algorithm"], health=config.get("health", {}),
                      size_bytes=report.size_bytes)
    else:
        if source_type == ModelSource.IMAGE:
            image = (image or "").strip()
            if not IMAGE_RE.match(image) or len(image) > 500:
                raise ValidationError({"image": ["Give an image reference such as registry.local/team/server:1.0."]})
            fields.update(image=image, image_copy=bool(image_copy))
            source_uri = (source_uri or "").strip()
            if source_uri:
                fields["source_uri"] = _image_model_folder(user, source_uri).uri
        command = _clean_command(command or [])
        if source_type == ModelSource.COMMAND and not command:
            raise ValidationError({"command": ["Give the command that starts the server (it listens on $PORT)."]})
        if protocol not in ("http", "https"):
            raise ValidationError({"protocol": ["Choose http or https."]})
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValidationError({"port": ["The port is a whole number from 1 to 65535."]})
        config, warnings = _clean_custom_config(apis=apis, health=health)
        fields.update(command=command, protocol=protocol, port=port, config=config, warnings=warnings,
                      model_type="Image", runtime="", model_algorithm=config["model_algorithm"],
                      health=config.get("health", {}))
    try:
        with transaction.atomic():
            row = AiAppVersion.objects.create(app=app, workspace=app.workspace, version=version, created_by=user,
                                              status=ModelStatus.IMPORTING, **fields)
    except IntegrityError:
        raise ValidationError({"version": [f'Version {version} of "{app.name}" already exists.']}) from None
    AiApp.objects.filter(pk=app.pk).update(updated_at=timezone.now())
    event_add(obj=row, message="Start model import.")
    for warning in row.warnings:
        event_add(obj=row, message=warning, level=EventLevel.WARNING)
    audit_record(actor=user, action="model:create", obj=row, workspace=app.workspace,
                 detail={"app": app.name, "version": version, "source": source_type})
    transaction.on_commit(lambda: _import_later(row.pk))
    return row


def _import_later(version_id: int) -> None:
    from .tasks import ai_app_version_import

    ai_app_version_import.apply_async(args=[version_id], queue=settings.ATELIER_CONTROL_QUEUE)


def _set_status(version: AiAppVersion, status: str, *, reason: str = "", event: str = "",
                level: str = EventLevel.INFO) -> None:
    AiAppVersion.objects.filter(pk=version.pk).update(status=status, status_reason=reason[:1000],
                                                      updated_at=timezone.now())
    version.status, version.status_reason = status, reason[:1000]
    if event:
        event_add(obj=version, message=event, level=level)
    _publish_version(version)


def ai_app_version_import(*, version_id: int) -> str:
    """Copy the package into its snapshot, build its dependency environment, mark it Normal.

    Idempotent: a version already past importing/building is left alone. Failures end in
    Import failed / Build failed with the reason as an event.
    """
    version = AiAppVersion.objects.select_related("app").filter(pk=version_id).first()
    if version is None or version.status not in (ModelStatus.IMPORTING, ModelStatus.BUILDING):
        return "skipped"
    if version.status == ModelStatus.BUILDING and version.package_uri:
        # A rebuild after the dependencies were edited: the snapshot is already in place.
        return _build_environment(version, importing.env_specs(version.config))
    if version.source_type in (ModelSource.STORAGE, ModelSource.TRAINING):
        source = parse(version.source_uri)
        target = importing.snapshot_path(source, version.app.name, version.app_id, version.version)
        try:
            report = importing.package_inspect(source)
            if not report.ok:
                raise ValidationError([m for _w, m in report.problems])
            importing.package_delete(target.uri)
            files, size = importing.package_copy(source, target)
        except ValidationError as exc:
            with transaction.atomic():
                _set_status(version, ModelStatus.FAILED, reason="; ".join(exc.messages),
                            event=f"Failed to import the model. {'; '.join(exc.messages)}", level=EventLevel.ERROR)
            return "failed"
        except Exception as exc:  # storage trouble: reported, never a silent half-import
            logger.exception("import of model version %s failed", version_id)
            with transaction.atomic():
                _set_status(version, ModelStatus.FAILED, reason=str(exc),
                            event="Failed to copy model file due to storage exception. Please check your "
                                  f"storage access right. ({exc})", level=EventLevel.ERROR)
            return "failed"
        with transaction.atomic():
            AiAppVersion.objects.filter(pk=version.pk).update(package_uri=target.uri, size_bytes=size,
                                                              config=report.config)
            version.package_uri, version.size_bytes, version.config = target.uri, size, report.config
            event_add(obj=version, message=f"Model file imported successfully. ({files} files to {target.uri})")
            event_add(obj=version, message="Model size calculated successfully.")
        specs = importing.env_specs(report.config)
        if specs:
            return _build_environment(version, specs)
    elif version.source_type == ModelSource.IMAGE:
        if not _image_check(version):
            return "failed"
        if version.source_uri and not _image_model_copy(version):
            return "failed"
    with transaction.atomic():
        _set_status(version, ModelStatus.NORMAL, event="Model imported successfully.")
    return "normal"


def _build_environment(version: AiAppVersion, specs: list[str]) -> str:
    from .modelserver.atelier_modelserver.envbuild import BuildError, env_build, env_hash

    if not specs:  # the edit removed every dependency: the base runtime serves it
        with transaction.atomic():
            AiAppVersion.objects.filter(pk=version.pk).update(env_hash="")
            _set_status(version, ModelStatus.NORMAL, event="Model imported successfully.")
        return "normal"
    with transaction.atomic():
        _set_status(version, ModelStatus.BUILDING, event="Start the env image building task.")
    timeout = settings.ATELIER_DEPLOYMENT_BUILD_TIMEOUT_SECONDS
    try:
        result = env_build(settings.ATELIER_DEPLOYMENT_ENV_ROOT, specs, timeout=timeout,
                           pip_args=settings.ATELIER_DEPLOYMENT_PIP_ARGS)
    except BuildError as exc:
        tail = "\n".join(exc.log.strip().splitlines()[-30:])
        timed_out = "limit" in str(exc)
        with transaction.atomic():
            if timed_out:
                message = f"Image building task timeout. The {timeout / 60:g}-minute limit is over."
            else:
                message = "Failed to build the image. For details, view the building log."
            _set_status(version, ModelStatus.BUILD_FAILED, reason=f"{exc}", event=message, level=EventLevel.ERROR)
            event_add(obj=version, message=f"Building log ({', '.join(specs)}):\n{tail}", level=EventLevel.ERROR)
        return "build_failed"
    with transaction.atomic():
        AiAppVersion.objects.filter(pk=version.pk).update(env_hash=env_hash(specs))
        if result.cached:
            event_add(obj=version, message="Use cached env image.")
        else:
            event_add(obj=version, message=f"Image built successfully. ({', '.join(specs)})")
        _set_status(version, ModelStatus.NORMAL, event="Model imported successfully.")
    return "normal"


def _image_model_folder(user, source_uri: str):
    """The storage folder whose `model/` an image version gets at /home/mind/model (optional)."""
    from apps.storage.selectors import storage_path_resolve

    if any(ch.isspace() for ch in source_uri):
        raise ValidationError({"source_uri": ["The path must not contain spaces."]})
    try:
        source = storage_path_resolve(user, source_uri, "storage:view", must_exist=True, kind="folder")
    except ValidationError as exc:
        raise ValidationError({"source_uri": exc.messages}) from None
    if not any(rel.startswith("model/") for rel in importing.package_files(source)):
        raise ValidationError({"source_uri": ["The folder has no model/ folder with files in it; the image "
                                              "finds that folder's files at /home/mind/model."]})
    return source


def _image_model_copy(version: AiAppVersion) -> bool:
    """Snapshot the model folder of an image version, as storage packages are snapshotted."""
    source = parse(version.source_uri)
    target = importing.snapshot_path(source, version.app.name, version.app_id, version.version)
    try:
        importing.package_delete(target.uri)
        files, size = importing.package_copy(source, target)
    except Exception as exc:  # storage trouble (or the folder went away): reported, never a half-import
        logger.exception("model folder copy of version %s failed", version.pk)
        with transaction.atomic():
            _set_status(version, ModelStatus.FAILED, reason=str(exc) or "the model folder could not be copied",
                        event="Failed to copy model file due to storage exception. Please check your "
                              f"storage access right. ({exc})", level=EventLevel.ERROR)
        return False
    with transaction.atomic():
        AiAppVersion.objects.filter(pk=version.pk).update(package_uri=target.uri, size_bytes=size)
        version.package_uri, version.size_bytes = target.uri, size
        event_add(obj=version, message=f"Model file imported successfully. ({files} files to {target.uri})")
    return True


def _image_check(version: AiAppVersion) -> bool:
    """Make sure the image of an image version can run: present here (`docker image inspect`),
    else pulled now. Without image copy a worker without Docker imports the version anyway (the
    pool workers that run it may have Docker; the instance then reports a missing image)."""
    docker = shutil.which("docker")
    if docker is None:
        if not version.image_copy:
            event_add(obj=version, level=EventLevel.WARNING,
                      message="Docker is not installed on the worker that imports models; the image is checked "
                              "when an instance starts.")
            return True
        with transaction.atomic():
            _set_status(version, ModelStatus.FAILED, reason="docker is not installed on the worker",
                        event="Failed to access source image. Docker is not installed on the worker that imports "
                              "models.", level=EventLevel.ERROR)
        return False
    inspect = [docker, "image", "inspect", "--format", "{{.Size}}", version.image]
    error = ""
    try:
        present = subprocess.run(inspect, capture_output=True, text=True, timeout=60)
        if present.returncode != 0:  # only a missing image is pulled (there may be no registry at all)
            done = subprocess.run([docker, "pull", "--quiet", version.image], capture_output=True, text=True,
                                  timeout=3600)
            if done.returncode != 0:
                error = " ".join((done.stderr or done.stdout).split())[-500:] or "no answer from docker"
            else:
                present = subprocess.run(inspect, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        error = f"docker did not answer within {exc.timeout:g} s"
    if error:
        reason = f"Image {version.image} is not on this worker and pulling it failed: {error}"
        with transaction.atomic():
            _set_status(version, ModelStatus.FAILED, reason=reason,
                        event=f"Failed to access source image. Check whether the image exists. ({reason})",
                        level=EventLevel.ERROR)
        return False
    size = int(present.stdout.strip() or 0) if present.stdout.strip().isdigit() else 0
    if size:
        AiAppVersion.objects.filter(pk=version.pk).update(size_bytes=size)
        version.size_bytes = size
    event_add(obj=version, message="Source image size calculated successfully.")
    return True


@transaction.atomic
def ai_app_version_dependencies_update(*, user, version: AiAppVersion, dependencies: list) -> AiAppVersion:
    """Edit the pip dependencies of a version whose build failed and rebuild it (model:update)."""
    require_perm(user, version.workspace, "model:update")
    if version.status != ModelStatus.BUILD_FAILED:
        raise ValidationError({"dependencies": ["Runtime dependencies can be edited only after a failed build."]})
    raw = dict(version.config, dependencies=dependencies)
    try:
        config, _warnings = config_parse(raw)
    except ConfigError as exc:
        raise ValidationError({"dependencies": [f"{w}: {m}" for w, m in exc.problems]}) from None
    if config["dependencies"] == version.config.get("dependencies"):
        event_add(obj=version, message="Model running dependencies not updated.")
        return version
    AiAppVersion.objects.filter(pk=version.pk).update(config=config)
    version.config = config
    if version.package_uri:
        # The model server reads dependencies from the snapshot's config.json: keep it in step.
        importing.config_dependencies_write(version.package_uri, config["dependencies"])
    _set_status(version, ModelStatus.BUILDING, event="Model running dependencies updated. Rebuild the image.")
    audit_record(actor=user, action="model:update", obj=version, detail={"dependencies": importing.env_specs(config)})
    transaction.on_commit(lambda: _import_later(version.pk))
    return version


@transaction.atomic
def ai_app_update(*, user, app: AiApp, description: str) -> AiApp:
    """Change the application's description (model:update)."""
    require_perm(user, app.workspace, "model:update")
    app.description = (description or "").strip()[:500]
    app.save(update_fields=["description", "updated_at"])
    audit_record(actor=user, action="model:update", obj=app)
    return app


@transaction.atomic
def ai_app_version_update(*, user, version: AiAppVersion, description: str) -> AiAppVersion:
    """Change a version's description (model:update); event "Model description updated."."""
    require_perm(user, version.workspace, "model:update")
    version.description = (description or "").strip()[:500]
    version.save(update_fields=["description", "updated_at"])
    event_add(obj=version, message="Model description updated.")
    audit_record(actor=user, action="model:update", obj=version)
    return version


def _deployed_in(versions) -> list[str]:
    return sorted(set(ServiceVersion.objects.filter(model_version__in=versions)
                      .values_list("service__name", flat=True)))


@transaction.atomic
def ai_app_version_delete(*, user, version: AiAppVersion) -> None:
    """Delete a version and its snapshot (model:delete); refused while a service deploys it."""
    require_perm(user, version.workspace, "model:delete")
    services = _deployed_in([version])
    if services:
        raise ValidationError(f"Version {version.version} is deployed in service{'s' if len(services) > 1 else ''} "
                              f"{', '.join(services)}; delete those services first.")
    label, uri = version.label, version.package_uri
    app = version.app
    version.delete()
    audit_record(actor=user, action="model:delete", object_repr=label, workspace=app.workspace,
                 detail={"app": app.name})
    transaction.on_commit(lambda: importing.package_delete(uri))


@transaction.atomic
def ai_app_delete(*, user, app: AiApp) -> None:
    """Delete an AI application with all its versions (model:delete); refused while any is deployed."""
    require_perm(user, app.workspace, "model:delete")
    versions = list(app.versions.all())
    services = _deployed_in(versions)
    if services:
        raise ValidationError(f'"{app.name}" has versions deployed in service{"s" if len(services) > 1 else ""} '
                              f"{', '.join(services)}; delete those services first.")
    uris = [v.package_uri for v in versions if v.package_uri]
    name, workspace = app.name, app.workspace
    app.delete()
    audit_record(actor=user, action="model:delete", object_repr=name, workspace=workspace,
                 detail={"versions": len(versions)})
    transaction.on_commit(lambda: [importing.package_delete(uri) for uri in uris])


def health_clean(raw: dict) -> dict:
    """Validate a health-check form (seed-06 §2.5) with the package rules; raises on `health`."""
    problems: list = []
    health = health_parse(raw, problems, [])
    if problems:
        raise ValidationError({"health": [f"{w}: {m}" for w, m in problems]})
    return health
