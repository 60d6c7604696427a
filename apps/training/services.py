"""Writes of the training section: algorithms, experiments, training jobs and their life cycle.

A job is created in Creating, handed to the run engine when its pool has room (Pending while it
waits, in priority order), and follows its runs through the owner callback
`training_job_on_run_change`: the job's status is always recomputed from the runs, so a
repeated or late callback changes nothing.
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.choices import EventLevel
from apps.core.paths import StoragePath, parse
from apps.core.permissions import has_perm, require_perm
from apps.core.services import audit_record, event_add, publish_on_commit

from . import channels as channel_rules
from . import hyperparameters as hp
from .choices import (
    LIVE_JOB_STATUSES,
    PRESET_MODES,
    TERMINAL_JOB_STATUSES,
    Acquisition,
    BootMode,
    Builtin,
    ExperimentChoice,
    LaunchMode,
    ResourceType,
    TrainingStatus,
)
from .codedirs import boot_file_clean, code_dir_stats
from .engines import ENGINE_BY_KEY
from .models import Algorithm, Experiment, TrainingJob

OWNER_TYPE = "training.trainingjob"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NAME_RULE = "1–64 characters: letters, digits, - and _."
# Relative folder names inside the run directory (local code dir, working dir).
LOCAL_DIR_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
MAX_RUNTIME_HOURS = 720
MAX_ENV = 100
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Variables the run engine owns for every node: a user value would break the distributed contract.
ENGINE_ENV = {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "NODE_RANK", "LOCAL_RANK", "CUDA_VISIBLE_DEVICES",
              "PORT", "VC_TASK_INDEX", "VC_WORKER_NUM", "VC_WORKER_HOSTS", "MA_NUM_HOSTS", "MA_NUM_GPUS",
              "MA_CURRENT_IP", "MA_CURRENT_INSTANCE_NAME", "MA_TASK_NAME"}

S = TrainingStatus


def _name_clean(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({field: [f'"{name}" is not a valid name: {NAME_RULE}'] if name
                                      else [f"Give a name: {NAME_RULE}"]})
    return name


def _description_clean(text: str, field: str = "description") -> str:
    text = (text or "").strip()
    if len(text) > 256:
        raise ValidationError({field: [f"The description has {len(text)} characters; at most 256."]})
    return text


def _tags_clean(tags: Any) -> dict[str, str]:
    if tags in (None, ""):
        return {}
    if not isinstance(tags, dict) or len(tags) > 20:
        raise ValidationError({"tags": ["Give at most 20 tags as {key: value}."]})
    clean = {}
    for key, value in tags.items():
        key, value = str(key).strip(), str(value).strip()
        if not NAME_RE.match(key) or len(value) > 128:
            raise ValidationError({"tags": [f'Tag "{key}": keys are {NAME_RULE}; values at most 128 characters.']})
        clean[key] = value
    return clean


# ---------------------------------------------------------------------------------------------
# Algorithms
# ---------------------------------------------------------------------------------------------

ALGORITHM_FIELDS = ("description", "boot_mode", "engine", "engine_version", "image", "builtin", "code_dir",
                    "boot_file", "boot_command", "inputs", "outputs", "hyperparameters", "policies",
                    "resource_types", "multi_card", "distributed", "tags")


def _boot_clean(user, values: dict, *, check_code: bool = True) -> dict:
    """Boot mode rules shared by algorithms and jobs; returns the cleaned boot fields and a warning."""
    mode = values.get("boot_mode") or BootMode.PRESET
    if mode not in BootMode.values:
        raise ValidationError({"boot_mode": [f"Unknown boot mode {mode!r}; use preset, preset_image, custom or "
                                             f"builtin."]})
    image = (values.get("image") or "").strip()[:255]
    if mode == BootMode.PRESET and image:
        mode = BootMode.PRESET_IMAGE  # an image given with a preset framework is that framework's custom image
    out = {"boot_mode": str(mode), "engine": "", "engine_version": "", "image": "", "builtin": "", "code_dir": "",
           "boot_file": "", "boot_command": "", "warning": ""}
    if mode == BootMode.BUILTIN:
        builtin = values.get("builtin") or ""
        if builtin not in Builtin.values:
            raise ValidationError({"builtin": [f"Choose a built-in algorithm: {', '.join(Builtin.values)}."]})
        out["builtin"] = builtin
        out["engine"] = "scikit_learn" if builtin == Builtin.TABULAR else "pytorch"
        out["engine_version"] = ENGINE_BY_KEY[out["engine"]].version
        return out
    code_uri = (values.get("code_dir") or "").strip()
    stats = None
    if code_uri:
        from apps.storage.selectors import storage_path_resolve

        try:
            code_path = storage_path_resolve(user, code_uri, "storage:view", must_exist=True, kind="folder")
        except ValidationError as exc:
            raise ValidationError({"code_dir": exc.messages}) from None
        stats = code_dir_stats(code_path) if check_code else None
        out["code_dir"] = code_path.uri
        out["warning"] = stats.warning if stats else ""
    if mode in PRESET_MODES:
        engine = values.get("engine") or "python"
        if engine not in ENGINE_BY_KEY or not ENGINE_BY_KEY[engine].version:
            raise ValidationError({"engine": [f"Unknown or uninstalled engine {engine!r}."]})
        out["engine"] = engine
        out["engine_version"] = ENGINE_BY_KEY[engine].version
        if not code_uri:
            raise ValidationError({"code_dir": ["A preset-framework algorithm needs a code folder."]})
        out["boot_file"] = boot_file_clean(parse(out["code_dir"]), values.get("boot_file") or "", stats)
        if mode == BootMode.PRESET_IMAGE:
            if not image:
                raise ValidationError({"image": ["A preset framework with a custom image needs the image, "
                                                 "e.g. team/pytorch:2.3."]})
            # The engine's conventions with the user's own image (recorded with the job).
            out["image"] = image
    else:
        command = (values.get("boot_command") or "").strip()
        if not command:
            raise ValidationError({"boot_command": ["Give the boot command, e.g. python ${WORKSPACE}/train.py."]})
        if "\n" in command or "\r" in command:
            raise ValidationError({"boot_command": ["Join several commands with ; or && on one line; newlines are "
                                                    "not supported."]})
        if len(command) > 4096:
            raise ValidationError({"boot_command": ["The boot command has more than 4096 characters."]})
        out["boot_command"] = command
        out["image"] = (values.get("image") or "").strip()[:255]
    return out


def _algorithm_values(user, values: dict) -> dict:
    boot = _boot_clean(user, values)
    warning = boot.pop("warning")
    clean = dict(boot)
    clean["description"] = _description_clean(values.get("description", ""))
    clean["inputs"] = channel_rules.definitions_clean(values.get("inputs"), output=False)
    clean["outputs"] = channel_rules.definitions_clean(values.get("outputs"), output=True)
    names = [c["name"] for c in clean["inputs"]] + [c["name"] for c in clean["outputs"]]
    if len(set(names)) != len(names):
        raise ValidationError({"outputs": ["An input and an output share a parameter name."]})
    clean["hyperparameters"] = hp.definitions_clean(values.get("hyperparameters"))
    clash = set(names) & {d["name"] for d in clean["hyperparameters"]}
    if clash:
        raise ValidationError({"hyperparameters": [f'"{sorted(clash)[0]}" is already a channel name.']})
    policies = values.get("policies") or {}
    if not isinstance(policies, dict):
        raise ValidationError({"policies": ["Give supported policies as an object (empty for none)."]})
    clean["policies"] = policies
    types = values.get("resource_types") or []
    if not isinstance(types, list) or any(t not in ResourceType.values for t in types):
        raise ValidationError({"resource_types": ["Resource types are chosen from cpu and gpu."]})
    clean["resource_types"] = list(dict.fromkeys(types))
    clean["multi_card"] = bool(values.get("multi_card", False))
    clean["distributed"] = bool(values.get("distributed", False))
    clean["tags"] = _tags_clean(values.get("tags"))
    clean["warning"] = warning
    return clean


@transaction.atomic
def algorithm_create(*, user, workspace, name: str, **values) -> Algorithm:
    """Create an algorithm (algorithm:create). The code folder must exist and stay within the limits."""
    require_perm(user, workspace, "algorithm:create")
    name = _name_clean(name)
    clean = _algorithm_values(user, values)
    clean.pop("warning")
    if Algorithm.objects.filter(workspace=workspace, name=name).exists():
        raise ValidationError({"name": [f'An algorithm named "{name}" already exists in this workspace.']})
    algorithm = Algorithm.objects.create(workspace=workspace, created_by=user, name=name, **clean)
    audit_record(actor=user, action="algorithm:create", obj=algorithm)
    return algorithm


@transaction.atomic
def algorithm_update(*, user, algorithm: Algorithm, **values) -> Algorithm:
    """Change anything but the name and id (algorithm:update); fields left out keep their value."""
    require_perm(user, algorithm.workspace, "algorithm:update")
    if "name" in values and values["name"] != algorithm.name:
        raise ValidationError({"name": ["The name of an algorithm cannot be changed."]})
    values.pop("name", None)
    merged = {field: getattr(algorithm, field) for field in ALGORITHM_FIELDS}
    merged.update({k: v for k, v in values.items() if k in ALGORITHM_FIELDS})
    clean = _algorithm_values(user, merged)
    clean.pop("warning")
    for field, value in clean.items():
        setattr(algorithm, field, value)
    algorithm.save()
    audit_record(actor=user, action="algorithm:update", obj=algorithm)
    return algorithm


@transaction.atomic
def algorithm_delete(*, user, algorithm: Algorithm) -> None:
    """Delete an algorithm (algorithm:delete); jobs made from it keep their own copy of its settings."""
    require_perm(user, algorithm.workspace, "algorithm:delete")
    name = algorithm.name
    audit_record(actor=user, action="algorithm:delete", obj=algorithm, object_repr=name)
    algorithm.delete()


def algorithm_initial_from_job(job: TrainingJob) -> dict:
    """"Save as algorithm": the create-algorithm form's values taken from a job."""
    outputs_by_name = {c["name"]: c for c in job.outputs}
    return {
        "name": f"{job.name}-algorithm"[:64], "description": job.description, "boot_mode": job.boot_mode,
        "engine": job.engine, "image": job.image, "builtin": job.builtin, "code_dir": job.code_dir,
        "boot_file": job.boot_file, "boot_command": job.boot_command,
        "inputs": [{"name": c["name"], "description": "", "acquisition": c["acquisition"], "constraint": None}
                   for c in job.inputs],
        "outputs": [{"name": n, "description": "", "acquisition": c["acquisition"]}
                    for n, c in outputs_by_name.items()],
        "hyperparameters": job.hyperparameter_specs or [
            {"name": h["name"], "type": h["type"], "default": h["value"], "constraint": None, "required": False,
             "description": ""} for h in job.hyperparameters],
        "resource_types": ["gpu" if job.flavor.gpus else "cpu"], "multi_card": job.flavor.gpus > 1,
        "distributed": job.node_count > 1, "tags": job.tags,
    }


# ---------------------------------------------------------------------------------------------
# Experiments
# ---------------------------------------------------------------------------------------------


def _experiment_touch(experiment: Experiment | None) -> None:
    if experiment is not None:
        Experiment.objects.filter(pk=experiment.pk).update(modified_at=timezone.now())


@transaction.atomic
def experiment_update(*, user, experiment: Experiment, name: str | None = None,
                      description: str | None = None) -> Experiment:
    """Rename or re-describe an experiment (experiment:update); names stay unique per workspace."""
    require_perm(user, experiment.workspace, "experiment:update")
    if name is not None:
        name = _name_clean(name)
        if Experiment.objects.filter(workspace=experiment.workspace, name=name).exclude(pk=experiment.pk).exists():
            raise ValidationError({"name": [f'An experiment named "{name}" already exists.']})
        experiment.name = name
    if description is not None:
        experiment.description = _description_clean(description)
    experiment.modified_at = timezone.now()
    experiment.save()
    audit_record(actor=user, action="experiment:update", obj=experiment)
    return experiment


def experiment_delete(*, user, experiment: Experiment, confirm: str) -> int:
    """Delete an experiment AND every job in it (experiment:delete); `confirm` must be "DELETE".

    Live jobs are stopped first. Returns how many jobs were deleted.
    """
    require_perm(user, experiment.workspace, "experiment:delete")
    if confirm != "DELETE":
        raise ValidationError({"confirm": ['Type DELETE to delete the experiment and all of its jobs.']})
    jobs = list(experiment.jobs.all())
    for job in jobs:
        if job.status in LIVE_JOB_STATUSES:
            _job_stop(job, who=user.get_username())
    with transaction.atomic():
        name, count = experiment.name, len(jobs)
        audit_record(actor=user, action="experiment:delete", obj=experiment, object_repr=name,
                     detail={"jobs": [job.name for job in jobs]})
        experiment.delete()
    return count


# ---------------------------------------------------------------------------------------------
# Training jobs: creation
# ---------------------------------------------------------------------------------------------


def job_name_suggest() -> str:
    """The auto-generated default name of the create form (`job-` and 8 hex digits)."""
    return f"job-{secrets.token_hex(4)}"


def _env_clean(env: Any) -> dict[str, str]:
    if env in (None, ""):
        return {}
    if not isinstance(env, dict) or len(env) > MAX_ENV:
        raise ValidationError({"env": [f"Give at most {MAX_ENV} environment variables as {{NAME: value}}."]})
    clean = {}
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise ValidationError({"env": [f"{name!r} is not a valid variable name (letters, digits, _; not "
                                           f"starting with a digit)."]})
        if name in ENGINE_ENV or name.startswith("ATELIER_"):
            raise ValidationError({"env": [f"{name} is set by the platform for every node and cannot be "
                                           f"overridden."]})
        if isinstance(value, (dict, list)) or value is None or "\x00" in str(value) or len(str(value)) > 32768:
            raise ValidationError({"env": [f"{name}: the value must be text of at most 32768 characters."]})
        clean[name] = str(value)
    return clean


def _local_dir_clean(value: str, field: str, default: str = "") -> str:
    value = (value or "").strip().strip("/") or default
    if value and (not LOCAL_DIR_RE.match(value) or ".." in value.split("/") or len(value) > 255):
        raise ValidationError({field: [f'"{value}" must be a relative folder below the run directory (letters, '
                                       f'digits, . _ -; no "..").']})
    return value


def _channels_for_job(user, definitions: list[dict], given: Any, *, output: bool) -> list[dict]:
    """Match the job's paths to the channel definitions; every defined channel needs a path."""
    field = "outputs" if output else "inputs"
    if given in (None, ""):
        given = []
    if isinstance(given, dict):
        given = [{"name": k, "uri": v} if not isinstance(v, dict) else {"name": k, **v} for k, v in given.items()]
    if not isinstance(given, list):
        raise ValidationError({field: ["Give a list of {name, uri} channels."]})
    by_name: dict[str, dict] = {}
    for item in given:
        if not isinstance(item, dict) or not item.get("name"):
            raise ValidationError({field: ["Each channel is an object with a name and a uri."]})
        by_name[str(item["name"])] = item
    # A job without an algorithm defines its channels inline.
    defs = definitions or channel_rules.definitions_clean(
        [{"name": n, "acquisition": i.get("acquisition") or Acquisition.HYPERPARAMETER} for n, i in by_name.items()],
        output=output)
    unknown = set(by_name) - {d["name"] for d in defs}
    if unknown:
        raise ValidationError({field: [f'"{sorted(unknown)[0]}" is not a channel of the algorithm.']})
    from apps.storage.selectors import storage_path_resolve

    out = []
    for definition in defs:
        name = definition["name"]
        uri = str((by_name.get(name) or {}).get("uri") or "").strip()
        if not uri:
            raise ValidationError({field: [f"{name}: give a storage path."]})
        try:
            if output:
                path = storage_path_resolve(user, uri, "storage:create", kind="folder")
            else:
                path = storage_path_resolve(user, uri, "storage:view", must_exist=True)
        except ValidationError as exc:
            raise ValidationError({field: [f"{name}: {message}" for message in exc.messages]}) from None
        channel = {"name": name, "acquisition": definition["acquisition"], "uri": path.uri,
                   "local": channel_rules.local_name(name)}
        if output:
            channel["predownload"] = bool((by_name.get(name) or {}).get("predownload", False))
        out.append(channel)
    return out


def _pool_capacity_check(pool, flavor, node_count: int) -> None:
    """Refuse what the pool can never serve: a disabled pool, a flavor it lacks, more nodes than it has."""
    from apps.runtime.choices import JobType, NodeStatus, PoolStatus
    from apps.runtime.models import WorkerNode

    errors: dict[str, list[str]] = {}
    if pool.status != PoolStatus.ENABLED:
        errors["pool"] = [f'Pool "{pool.name}" is disabled.']
    elif JobType.TRAINING not in pool.job_types:
        errors["pool"] = [f'Pool "{pool.name}" does not accept training jobs.']
    if not flavor.pools.filter(pk=pool.pk).exists():
        errors["flavor"] = [f'Pool "{pool.name}" does not offer flavor "{flavor.name}".']
    if errors:
        raise ValidationError(errors)
    # Registered workers, not only those with a fresh heartbeat: this is about what the pool can ever serve.
    capable = [n for n in WorkerNode.objects.filter(pools=pool, status=NodeStatus.ONLINE)
               if n.cpus >= flavor.cpus and n.memory_mb >= flavor.memory_mb and n.gpu_count >= flavor.gpus]
    if node_count > 1 and len(capable) < node_count:
        raise ValidationError({"node_count": [
            f"{node_count} nodes requested, but pool {pool.name} has {len(capable)} online worker"
            f"{'s' if len(capable) != 1 else ''} that can serve {flavor.name}; one node runs per worker."]})


def _int_clean(value: Any, field: str, low: int, high: int, message: str) -> int:
    if isinstance(value, bool):
        raise ValidationError({field: [message]})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: [message]}) from None
    if str(value).strip() not in (str(number), f"+{number}") and not isinstance(value, int):
        raise ValidationError({field: [message]})
    if not low <= number <= high:
        raise ValidationError({field: [message]})
    return number


def training_job_create(
    *,
    user,
    workspace,
    name: str,
    pool,
    flavor,
    description: str = "",
    algorithm: Algorithm | None = None,
    experiment: str = ExperimentChoice.NEW,
    experiment_name: str = "",
    experiment_description: str = "",
    experiment_id: int | None = None,
    boot_mode: str = BootMode.PRESET,
    engine: str = "python",
    image: str = "",
    builtin: str = "",
    code_dir: str = "",
    boot_file: str = "",
    boot_command: str = "",
    local_code_dir: str = "user-job-dir",
    working_dir: str = "",
    inputs: Any = None,
    outputs: Any = None,
    hyperparameters: Any = None,
    env: Any = None,
    node_count: int = 1,
    priority: int = 1,
    auto_restart: int = 0,
    max_runtime_hours: int | None = None,
    launch_mode: str = LaunchMode.MODELARTS,
    tags: Any = None,
    run_as_uid: Any = None,
    custom_flavor: Any = None,
    mounts: Any = None,
    persist_logs: bool = False,
    log_path: str = "",
    notify_channel: str = "",
    notify_target: str = "",
    notify_events: Any = None,
) -> TrainingJob:
    """Validate and save a job in Creating, then hand it to the run engine once its pool has room.

    Needs trainjob:create (and priority 3 needs trainjob:set_high_priority). With `algorithm`,
    the algorithm's boot settings, channels and hyperparameter definitions are used and the
    corresponding arguments are ignored. Every refusal names the field and the rule.
    Optional sections (see job_options.py): `run_as_uid` (custom-command jobs), `custom_flavor`
    ({cpus, memory_mb, gpus} ≤ the pool's largest node; replaces `flavor`), `mounts` (host folders),
    `persist_logs` + `log_path`, and `notify_channel`/`notify_target`/`notify_events`.
    """
    from . import job_options

    require_perm(user, workspace, "trainjob:create")
    errors: dict[str, list[str]] = {}

    def collect(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
            return None

    name = collect(_name_clean, name)
    description = collect(_description_clean, description)
    if name and TrainingJob.objects.filter(workspace=workspace, name=name).exists():
        errors.setdefault("name", []).append(f'A training job named "{name}" already exists in this workspace.')
    node_count = collect(_int_clean, node_count, "node_count", 1, 64, "Give a whole number of nodes from 1 to 64.")
    priority = collect(_int_clean, priority, "priority", 1, 3, "Priority is 1, 2 or 3.")
    if priority == 3 and not has_perm(user, workspace, "trainjob:set_high_priority"):
        errors.setdefault("priority", []).append("Priority 3 needs the set_high_priority permission.")
    auto_restart = collect(_int_clean, auto_restart or 0, "auto_restart", 0, 3,
                           "Auto-restart is off (0) or a count from 1 to 3.")
    if max_runtime_hours not in (None, ""):
        max_runtime_hours = collect(_int_clean, max_runtime_hours, "max_runtime_hours", 1, MAX_RUNTIME_HOURS,
                                    f"Auto-stop: give a whole number of hours from 1 to {MAX_RUNTIME_HOURS}.")
    else:
        max_runtime_hours = None
    if launch_mode not in LaunchMode.values:
        errors.setdefault("launch_mode", []).append("Launch mode is modelarts or torchrun.")
    local_code_dir = collect(_local_dir_clean, local_code_dir, "local_code_dir", "user-job-dir")
    working_dir = collect(_local_dir_clean, working_dir, "working_dir")
    env = collect(_env_clean, env)
    tags = collect(_tags_clean, tags)
    if algorithm is not None:
        if algorithm.workspace_id != workspace.pk:
            errors.setdefault("algorithm", []).append("The algorithm belongs to another workspace.")
        source = {f: getattr(algorithm, f) for f in ("boot_mode", "engine", "image", "builtin", "code_dir",
                                                      "boot_file", "boot_command")}
        input_defs, output_defs, hp_defs = algorithm.inputs, algorithm.outputs, algorithm.hyperparameters
    else:
        source = {"boot_mode": boot_mode, "engine": engine, "image": image, "builtin": builtin, "code_dir": code_dir,
                  "boot_file": boot_file, "boot_command": boot_command}
        input_defs, output_defs, hp_defs = [], [], []
        if boot_mode == BootMode.BUILTIN and builtin in Builtin.values:
            from .builtins import builtin_definitions

            input_defs, output_defs, hp_defs = builtin_definitions(builtin)
    boot = collect(_boot_clean, user, source) or {}
    boot.pop("warning", None)
    job_inputs = collect(_channels_for_job, user, input_defs, inputs, output=False) or []
    collect(job_options.dataset_inputs_check, user, input_defs, job_inputs)
    job_outputs = collect(_channels_for_job, user, output_defs, outputs, output=True) or []
    for out in job_outputs:
        for inp in job_inputs:
            if parse(out["uri"]).is_within(parse(inp["uri"])) or parse(inp["uri"]).is_within(parse(out["uri"])):
                errors.setdefault("outputs", []).append(
                    f'{out["name"]}: the output {out["uri"]} overlaps the input {inp["uri"]}; use separate folders.')
    channel_names = {c["name"] for c in job_inputs + job_outputs}
    values = collect(hp.values_clean, hp_defs, hyperparameters) or []
    clash = channel_names & {v["name"] for v in values}
    if clash:
        errors.setdefault("hyperparameters", []).append(f'"{sorted(clash)[0]}" is already a channel name.')
    uid = None  # only custom-command jobs choose their uid; other modes run as the worker's account
    if boot.get("boot_mode") == BootMode.CUSTOM:
        uid = collect(job_options.run_as_uid_clean, run_as_uid, pool=pool)
    custom = collect(job_options.custom_flavor_clean, custom_flavor, pool=pool) or {}
    if custom and not errors:
        flavor = job_options.custom_flavor_resolve(custom, pool)
    mounts = collect(job_options.mounts_clean, mounts, local_code_dir=local_code_dir or "user-job-dir") or []
    log_path = collect(job_options.log_path_clean, user, bool(persist_logs), log_path) or ""
    notify = collect(job_options.notification_clean, notify_channel, notify_target, notify_events or [],
                     gpus=custom.get("gpus", flavor.gpus) if custom else flavor.gpus) or ("", "", [])
    if node_count and "pool" not in errors:
        collect(_pool_capacity_check, pool, flavor, node_count)
    if node_count and node_count > 1 and algorithm is not None and not algorithm.distributed:
        errors.setdefault("node_count", []).append(
            f'Algorithm "{algorithm.name}" does not support distributed training; use 1 node.')
    if algorithm is not None and algorithm.resource_types:
        kind = ResourceType.GPU if flavor.gpus else ResourceType.CPU
        if kind not in algorithm.resource_types:
            errors.setdefault("flavor", []).append(
                f'Algorithm "{algorithm.name}" runs on {", ".join(algorithm.resource_types).upper()} only; '
                f'{flavor.name} is a {kind.upper()} flavor.')
    target = None
    if experiment == ExperimentChoice.NEW:
        exp_name = collect(_name_clean, experiment_name, "experiment_name")
        exp_desc = collect(_description_clean, experiment_description, "experiment_description")
        if exp_name and Experiment.objects.filter(workspace=workspace, name=exp_name).exists():
            errors.setdefault("experiment_name", []).append(f'An experiment named "{exp_name}" already exists; '
                                                            f'choose "existing experiment" to add the job to it.')
    elif experiment == ExperimentChoice.EXISTING:
        target = Experiment.objects.filter(workspace=workspace, pk=experiment_id).first() if experiment_id else None
        if target is None:
            errors.setdefault("experiment_id", []).append("Choose an experiment of this workspace.")
    elif experiment != ExperimentChoice.NONE:
        errors.setdefault("experiment", []).append("Experiment is new, existing or none.")
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        if experiment == ExperimentChoice.NEW:
            target = Experiment.objects.create(workspace=workspace, created_by=user, name=exp_name,
                                               description=exp_desc)
            audit_record(actor=user, action="experiment:create", obj=target)
        job = TrainingJob.objects.create(
            workspace=workspace, created_by=user, name=name, description=description, experiment=target,
            algorithm=algorithm, local_code_dir=local_code_dir, working_dir=working_dir, inputs=job_inputs,
            outputs=job_outputs, hyperparameters=values, hyperparameter_specs=hp_defs, env=env, launch_mode=launch_mode,
            pool=pool, flavor=flavor, node_count=node_count, priority=priority, auto_restart=auto_restart,
            max_runtime_hours=max_runtime_hours, tags=tags, status=S.CREATING, run_as_uid=uid,
            custom_flavor=custom, mounts=mounts, persist_logs=bool(persist_logs), log_path=log_path,
            notify_channel=notify[0], notify_target=notify[1], notify_events=notify[2], **boot,
        )
        _experiment_touch(target)
        event_add(obj=job, message="训练作业创建成功 / Training job created.")
        audit_record(actor=user, action="trainjob:create", obj=job,
                     detail={"pool": pool.name, "flavor": flavor.name, "nodes": node_count, "priority": priority})
        pool_id = pool.pk
        transaction.on_commit(lambda: training_jobs_dispatch(pool_ids=[pool_id]))
    return job


# ---------------------------------------------------------------------------------------------
# Scheduling: the priority queue in front of the run engine
# ---------------------------------------------------------------------------------------------


def _room(pool, flavor, node_count: int) -> tuple[bool, str]:
    """Can `node_count` nodes of `flavor` start in `pool` now (free slots and GPUs), else why not."""
    from django.db.models import Count, Q

    from apps.runtime.choices import ACTIVE_STATUSES, RunStatus
    from apps.runtime.models import Run
    from apps.runtime.scheduling import nodes_online, placement_for

    placement = placement_for(flavor, pool, node_count)
    if not placement.ok:
        return False, placement.reason
    nodes = (nodes_online().filter(pools=pool)
             .annotate(active=Count("runs", filter=Q(runs__status__in=ACTIVE_STATUSES))))
    free = {n.pk: n.slots - n.active for n in nodes
            if n.cpus >= flavor.cpus and n.memory_mb >= flavor.memory_mb and n.gpu_count >= flavor.gpus}
    # Runs already handed to the engine but not yet claimed will take slots first.
    waiting = Run.objects.filter(pool=pool, status=RunStatus.QUEUED).count()
    if node_count == 1:
        ok = sum(max(0, f) for f in free.values()) > waiting
    else:
        ok = sum(1 for f in free.values() if f > 0) >= node_count and waiting == 0
    return (True, "") if ok else (False, f"Waiting for free capacity in pool {pool.name}.")


def training_jobs_dispatch(*, pool_ids: list[int] | None = None) -> int:
    """Hand waiting jobs to the run engine, highest priority first, then oldest; returns how many.

    Per pool, jobs are taken in order while there is room; the first that does not fit stops
    that pool's queue (strict priority: a big job is not overtaken by smaller later ones).
    """
    started = 0
    if pool_ids is None:  # the periodic pass: restarts waiting too long fail first (see recovery.py)
        from .recovery import training_restart_waits_expire

        training_restart_waits_expire()
    qs = TrainingJob.objects.filter(status__in=[S.CREATING, S.PENDING], run_group__isnull=True,
                                    stop_requested_at__isnull=True).select_related("pool", "flavor", "workspace",
                                                                                     "created_by")
    if pool_ids is not None:
        qs = qs.filter(pool_id__in=pool_ids)
    blocked: set[int] = set()
    position: dict[int, int] = {}
    for job in qs.order_by("-priority", "created_at", "pk"):
        if job.pool_id in blocked:
            position[job.pool_id] = position.get(job.pool_id, 1) + 1
            _job_wait(job, f"Queued (position {position[job.pool_id]} in pool {job.pool.name}); waiting for "
                           f"resources.")
            continue
        ok, reason = _room(job.pool, job.flavor, job.node_count)
        if not ok:
            blocked.add(job.pool_id)
            position[job.pool_id] = 1
            _job_wait(job, f"Queued (position 1 in pool {job.pool.name}): {reason}")
            continue
        if _job_submit(job):
            started += 1
    return started


def _job_wait(job: TrainingJob, reason: str) -> None:
    with transaction.atomic():
        fresh = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if fresh.run_group is not None or fresh.status not in (S.CREATING, S.PENDING):
            return
        first = fresh.status == S.CREATING
        if first or fresh.status_reason != reason:
            TrainingJob.objects.filter(pk=job.pk).update(status=S.PENDING, status_reason=reason)
            if first:
                event_add(obj=fresh, message="训练作业已排队，正在等待资源分配 / Queued, waiting for resources.")
            fresh.status, fresh.status_reason = S.PENDING, reason
            _publish(fresh)


def _job_submit(job: TrainingJob) -> bool:
    """Submit the job's runs (one per node) as its creator; a refusal makes the job Abnormal."""
    from apps.runtime.choices import JobType
    from apps.runtime.services import run_submit

    from .launch_spec import launch_command

    with transaction.atomic():
        fresh = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if fresh.run_group is not None or fresh.status not in (S.CREATING, S.PENDING) or fresh.stop_requested_at:
            return False
        try:
            runs = run_submit(
                user=fresh.created_by, workspace=fresh.workspace, name=f"training {fresh.name}",
                command=launch_command(fresh), flavor=fresh.flavor, pool=fresh.pool, job_type=JobType.TRAINING,
                inputs=_run_inputs(fresh), outputs=_run_outputs(fresh), node_count=fresh.node_count,
                max_restarts=fresh.auto_restart,
                max_runtime_seconds=(fresh.max_runtime_hours * settings.ATELIER_TRAINING_RUNTIME_HOUR_SECONDS
                                     if fresh.max_runtime_hours else None),
                owner_type=OWNER_TYPE, owner_id=str(fresh.pk),
            )
        except (ValidationError, PermissionDenied) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            reason = f"Could not be submitted: {'; '.join(messages)}"
            TrainingJob.objects.filter(pk=fresh.pk).update(status=S.ABNORMAL, status_reason=reason[:500],
                                                           finished_at=timezone.now())
            event_add(obj=fresh, message=f"训练作业创建失败报错 / Training job creation failed: {'; '.join(messages)}",
                      level=EventLevel.ERROR)
            fresh.refresh_from_db()
            _publish(fresh)
            _after_status_change(fresh)
            return False
        now = timezone.now()
        TrainingJob.objects.filter(pk=fresh.pk).update(run_group=runs[0].group, submitted_at=now)
        # Only a job still waiting becomes Pending: its runs may already have started (and the
        # run callback marked it Running) between dispatch and this line.
        TrainingJob.objects.filter(pk=fresh.pk, status__in=[S.CREATING, S.PENDING]).update(
            status=S.PENDING, status_reason="Waiting for a worker.")
        if fresh.status == S.CREATING:
            event_add(obj=fresh, message="训练作业已排队，正在等待资源分配 / Queued, waiting for resources.")
        fresh.refresh_from_db()
        _publish(fresh)
    return True


def _run_inputs(job: TrainingJob) -> list[dict]:
    items = [{"name": c["local"], "uri": c["uri"]} for c in job.inputs]
    if job.code_dir and job.boot_mode != BootMode.BUILTIN:
        items.insert(0, {"name": "code", "uri": job.code_dir})
    return items


def _run_outputs(job: TrainingJob) -> list[dict]:
    # With auto-restart on, outputs are restored before every attempt so the code can resume from its
    # checkpoints; on the first attempt the launcher empties the folders the user did not ask to pre-download.
    restore = job.auto_restart > 0
    return [{"name": c["local"], "uri": c["uri"], "preload": bool(c.get("predownload")) or restore}
            for c in job.outputs]


# ---------------------------------------------------------------------------------------------
# Training jobs: actions
# ---------------------------------------------------------------------------------------------


def _publish(job: TrainingJob) -> None:
    publish_on_commit(job.group_channel, {"kind": "status", "status": job.status,
                                          "label": job.get_status_display(), "reason": job.status_reason})


def _job_runs(job: TrainingJob):
    from apps.runtime.models import Run

    if job.run_group is None:
        return Run.objects.none()
    return Run.objects.filter(group=job.run_group).order_by("node_rank")


def _job_stop(job: TrainingJob, *, who: str) -> None:
    from apps.runtime.choices import LIVE_STATUSES
    from apps.runtime.services import run_transition
    from apps.runtime.choices import RunStatus

    with transaction.atomic():
        fresh = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if fresh.status not in LIVE_JOB_STATUSES:
            raise ValidationError(f"The job is {fresh.get_status_display().lower()}; only Creating, Pending and "
                                  f"Running jobs can be terminated.")
        now = timezone.now()
        TrainingJob.objects.filter(pk=fresh.pk).update(stop_requested_at=now)
        event_add(obj=fresh, message=f"训练作业已被手动终止 / Training job manually terminated by {who}.")
        runs = list(_job_runs(fresh))
        if not runs:
            TrainingJob.objects.filter(pk=fresh.pk).update(status=S.TERMINATED, finished_at=now,
                                                           status_reason=f"Terminated by {who}.")
            fresh.refresh_from_db()
            _publish(fresh)
            _after_status_change(fresh)
            return
        reason = f"Terminated by {who}."
        for run in runs:
            if run.status == RunStatus.QUEUED:
                run_transition(run, RunStatus.STOPPED, reason=reason, event=f"{reason} Removed from the queue.")
            elif run.status in LIVE_STATUSES and run.status != RunStatus.STOPPING:
                run_transition(run, RunStatus.STOPPING, reason=reason, event=reason, stop_requested_at=now)


def training_job_stop(*, user, job: TrainingJob) -> TrainingJob:
    """Terminate a Creating, Pending or Running job (trainjob:stop): SIGTERM, grace period, SIGKILL."""
    require_perm(user, job.workspace, "trainjob:stop")
    _job_stop(job, who=user.get_username())
    audit_record(actor=user, action="trainjob:stop", obj=job)
    job.refresh_from_db()
    return job


@transaction.atomic
def training_job_delete(*, user, job: TrainingJob) -> None:
    """Delete a finished job (trainjob:delete); its output files in storage are kept."""
    require_perm(user, job.workspace, "trainjob:delete")
    if job.status not in TERMINAL_JOB_STATUSES:
        raise ValidationError(f"The job is {job.get_status_display().lower()}; terminate it before deleting it.")
    experiment = job.experiment
    audit_record(actor=user, action="trainjob:delete", obj=job, object_repr=job.name)
    job.delete()
    _experiment_touch(experiment)


@transaction.atomic
def training_job_set_priority(*, user, job: TrainingJob, priority: Any) -> TrainingJob:
    """Change the priority of a Pending job (trainjob:update; 3 needs trainjob:set_high_priority)."""
    require_perm(user, job.workspace, "trainjob:update")
    priority = _int_clean(priority, "priority", 1, 3, "Priority is 1, 2 or 3.")
    if priority == 3 and not has_perm(user, job.workspace, "trainjob:set_high_priority"):
        raise ValidationError({"priority": ["Priority 3 needs the set_high_priority permission."]})
    fresh = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if fresh.status != S.PENDING:
        raise ValidationError({"priority": [f"The priority can only change while the job is Pending; it is "
                                            f"{fresh.get_status_display()}."]})
    old = fresh.priority
    fresh.priority = priority
    fresh.save(update_fields=["priority"])
    event_add(obj=fresh, message=f"Priority changed from {old} to {priority}.")
    audit_record(actor=user, action="trainjob:update", obj=fresh, detail={"priority": [old, priority]})
    pool_id = fresh.pool_id
    transaction.on_commit(lambda: training_jobs_dispatch(pool_ids=[pool_id]))
    return fresh


@transaction.atomic
def training_job_update(*, user, job: TrainingJob, description: str | None = None, **changes) -> TrainingJob:
    """Edit a job's description (trainjob:update). Every other field is fixed once the job exists."""
    require_perm(user, job.workspace, "trainjob:update")
    fixed = sorted(set(changes))
    if fixed:
        message = ("Auto-restart cannot be changed after creation." if "auto_restart" in fixed
                   else f"{fixed[0]} cannot be changed after creation; rebuild the job instead.")
        raise ValidationError({fixed[0]: [message]})
    if description is not None:
        job.description = _description_clean(description)
        job.save(update_fields=["description"])
    audit_record(actor=user, action="trainjob:update", obj=job)
    return job


def training_job_initial_from(job: TrainingJob) -> dict:
    """"Rebuild": every field of the source job for the create form, with the experiment default rule
    (a job in an experiment defaults to that experiment; otherwise to a new one)."""
    return {
        "name": job_name_suggest(), "description": job.description,
        "experiment": ExperimentChoice.EXISTING if job.experiment_id else ExperimentChoice.NEW,
        "experiment_id": job.experiment_id, "algorithm": job.algorithm_id, "boot_mode": job.boot_mode,
        "engine": job.engine, "image": job.image, "builtin": job.builtin, "code_dir": job.code_dir,
        "boot_file": job.boot_file, "boot_command": job.boot_command, "local_code_dir": job.local_code_dir,
        "working_dir": job.working_dir,
        "inputs": [{"name": c["name"], "uri": c["uri"], "acquisition": c["acquisition"]} for c in job.inputs],
        "outputs": [{"name": c["name"], "uri": c["uri"], "acquisition": c["acquisition"],
                     "predownload": c.get("predownload", False)} for c in job.outputs],
        "hyperparameters": {h["name"]: h["value"] for h in job.hyperparameters}, "env": dict(job.env),
        "pool": job.pool_id, "flavor": job.flavor_id, "node_count": job.node_count, "priority": job.priority,
        "auto_restart": job.auto_restart, "max_runtime_hours": job.max_runtime_hours,
        "launch_mode": job.launch_mode, "tags": dict(job.tags), "run_as_uid": job.run_as_uid,
        "custom_flavor": dict(job.custom_flavor), "mounts": list(job.mounts), "persist_logs": job.persist_logs,
        "log_path": job.log_path, "notify_channel": job.notify_channel, "notify_target": job.notify_target,
        "notify_events": list(job.notify_events),
    }


# ---------------------------------------------------------------------------------------------
# Following the runs
# ---------------------------------------------------------------------------------------------


def training_job_on_run_change(change) -> None:
    """Owner callback of the run engine: recompute the job from its runs, then let waiting jobs in."""
    from apps.runtime.choices import RunStatus

    job = TrainingJob.objects.filter(pk=change.owner_id).first()
    if job is None:
        return
    if change.kind == "hang":
        from .recovery import training_job_on_hang

        training_job_on_hang(job, run_id=change.run_id, reason=change.reason)
        # Forwarded by the run engine's hang detector: a warning for subscribers, the job keeps running.
        from .notifications import HANG, training_job_notify

        with transaction.atomic():
            training_job_notify(job, HANG)
        return
    if change.kind == "status" and change.status == RunStatus.QUEUED and change.previous == RunStatus.FAILED:
        _veto_pointless_restart(job, change.run_id)
    training_job_sync(job)
    if change.kind == "status" and (change.previous == RunStatus.QUEUED or change.status in (
            RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.LOST)):
        training_jobs_dispatch(pool_ids=[job.pool_id])


def _node_diagnosis(run) -> dict:
    from apps.runtime.choices import RunStatus
    from apps.runtime.logstream import log_read

    from .diagnosis import TAIL_LINES, diagnose

    if run.status == RunStatus.LOST:
        return diagnose(exit_code=None, lines=[], lost=True).as_dict(run.node_rank)
    tail = log_read(run, after=None, limit=TAIL_LINES)
    # The platform's own lines ("[atelier] …") are not the program's error; its pre-check verdicts are read.
    lines = [line if not line.startswith("[atelier]") or line.startswith("[atelier][ERROR][detect]") else ""
             for line in tail.lines]
    started = run.exit_code is not None
    return diagnose(exit_code=run.exit_code, lines=lines, first_seq=tail.first, started=started,
                    reason=run.status_reason).as_dict(run.node_rank)


def _veto_pointless_restart(job: TrainingJob, run_id: int) -> None:
    """The engine queued a failed group again: stop it when the failure would simply repeat."""
    from apps.runtime.choices import RunStatus
    from apps.runtime.models import Run
    from apps.runtime.services import run_transition

    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return
    # The run row now holds the new attempt; the failed attempt's exit code is in its log and events.
    previous = Run(pk=run.pk, log_uri=run.log_uri, status=RunStatus.FAILED, exit_code=_last_exit_code(run),
                   node_rank=run.node_rank, status_reason="")
    diagnosis = _node_diagnosis(previous)
    if diagnosis["retryable"]:
        if diagnosis["key"] == "precheck":
            from .recovery import restart_isolate_failed_node

            restart_isolate_failed_node(run)
        return
    with transaction.atomic():
        TrainingJob.objects.filter(pk=job.pk).update(failure=diagnosis)
        reason = f"Not restarted: {diagnosis['cause'].rstrip('.')} would fail again."
        for node in Run.objects.filter(group=run.group, status=RunStatus.QUEUED):
            run_transition(node, RunStatus.STOPPED, reason=reason, event=reason)
        event_add(obj=job, message=reason, level=EventLevel.WARNING)


def _last_exit_code(run) -> int | None:
    """The exit code the supervisor logged last ("Process exited with exit code N (…)")."""
    from apps.runtime.logstream import log_read

    for line in reversed(log_read(run, after=None, limit=200).lines):
        match = re.match(r"\[atelier\] Process exited with exit code (-?\d+)", line)
        if match:
            return int(match.group(1))
    return None


def training_job_sync(job: TrainingJob) -> TrainingJob:
    """Set the job's status from its runs (idempotent) and record the job-level events of the change."""
    from apps.runtime.choices import RunStatus as R
    from apps.runtime.services import REASON_MAX_RUNTIME

    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        runs = list(_job_runs(job))
        if not runs or job.is_terminal:
            return job
        statuses = {run.status for run in runs}
        # A re-queued attempt counts once it leaves the queue: until then the restart may still be refused.
        restarts = max([run.auto_restarts for run in runs if run.status != R.QUEUED] or [job.restart_count])
        if job.failure:
            # A refused restart (see _veto_pointless_restart) re-queued the runs but never ran: not a restart.
            restarts = min(restarts, job.restart_count)
        now = timezone.now()
        updates: dict[str, Any] = {}
        events: list[tuple[str, str]] = []
        if restarts > job.restart_count:
            updates["restart_count"] = restarts
            events.append((f"训练作业已重启 / Training job restarted ({restarts}/{job.auto_restart}).", EventLevel.WARNING))
        if statuses & {R.STARTING, R.RUNNING, R.STOPPING}:
            status, reason = S.RUNNING, ""
            if job.started_at is None:
                updates["started_at"] = now
        elif R.QUEUED in statuses:
            status, reason = S.PENDING, runs[0].status_reason
        else:
            updates["finished_at"] = now
            status, reason, level, message = _final_status(job, runs, REASON_MAX_RUNTIME)
            if status in (S.FAILED, S.ABNORMAL) and not job.failure:
                culprit = next((r for r in runs if r.status in (R.FAILED, R.LOST)), runs[0])
                updates["failure"] = _node_diagnosis(culprit)
                reason = f"{reason} {updates['failure']['cause']}".strip()
            events.append((message, level))
        if status != job.status:
            updates["status"] = status
            if status == S.RUNNING:
                events.append(("训练作业开始运行 / Training job started running.", EventLevel.INFO))
        if reason != job.status_reason or "status" in updates:
            # Written with every status change: `job` may predate the submit's "Waiting for a worker."
            # (the runs can report before the submitting transaction's row is re-read).
            updates["status_reason"] = reason[:500]
        if updates:
            TrainingJob.objects.filter(pk=job.pk).update(**updates)
            for message, level in events:
                event_add(obj=job, message=message, level=level)
            job.refresh_from_db()
            _publish(job)
            if "status" in updates:
                _after_status_change(job)
    return job


def _after_status_change(job: TrainingJob) -> None:
    """Side effects of a new status, queued after commit: the subscribed notification, log persistence."""
    from .notifications import event_for_status, training_job_notify
    from .retention import training_job_persist_logs_later

    event = event_for_status(job.status)
    if event is not None:
        training_job_notify(job, event)
    if job.status in TERMINAL_JOB_STATUSES:
        training_job_persist_logs_later(job)


def _final_status(job: TrainingJob, runs, max_runtime_reason: str):
    from apps.runtime.choices import RunStatus as R

    if job.stop_requested_at is not None:
        return S.TERMINATED, "Terminated by a user.", EventLevel.INFO, "训练作业已终止 / Training job terminated."
    if any(r.status_reason == max_runtime_reason for r in runs):
        hours = job.max_runtime_hours
        return (S.TERMINATED, f"Terminated: reached the maximum runtime of {hours} h.", EventLevel.WARNING,
                f"训练作业已被终止（最大运行时长：{hours}h） / Training job terminated (max runtime: {hours}h).")
    if all(r.status == R.SUCCEEDED for r in runs):
        return S.COMPLETED, "", EventLevel.INFO, "训练作业运行成功 / Training job completed."
    if job.failure:  # a restart was refused: the job failed on the attempt before
        return S.FAILED, job.failure.get("cause", ""), EventLevel.ERROR, "训练作业运行失败 / Training job failed."
    culprit = next((r for r in runs if r.status in (R.FAILED, R.LOST)), None)
    if culprit is not None and (culprit.status == R.LOST or culprit.exit_code is None):
        return S.ABNORMAL, "", EventLevel.ERROR, "训练作业异常 / Training job abnormal: a platform error ended it."
    if culprit is not None:
        return S.FAILED, "", EventLevel.ERROR, "训练作业运行失败 / Training job failed."
    return S.TERMINATED, "Stopped.", EventLevel.INFO, "训练作业已终止 / Training job terminated."
