"""The command a training node runs: the in-run launcher (`builtin/launch.py`) and its JSON spec.

The launcher implements the execution contract inside the run (it needs the master address
and the run directory, known only there): code folder placement, environment variables,
pre-check, requirements, pre-start hook, `--param=value` arguments, then exec of the code.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from .choices import PRESET_MODES, BootMode
from .hyperparameters import as_argument
from .models import TrainingJob

# The launcher ships with Atelier: workers run the same installation as the console, at the same path.
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
LAUNCHER = BUILTIN_DIR / "launch.py"
SPEC_VERSION = 1


def platform_env() -> dict[str, str]:
    """Variables every job gets whose values come from the console's configuration."""
    env = {"MA_APIGW_ENDPOINT": settings.ATELIER_TRAINING_API_ENDPOINT}
    if settings.ATELIER_TRAINING_PIP_INDEX_URL:
        from urllib.parse import urlparse

        env["MA_PIP_URL"] = settings.ATELIER_TRAINING_PIP_INDEX_URL
        env["MA_PIP_HOST"] = urlparse(settings.ATELIER_TRAINING_PIP_INDEX_URL).hostname or ""
    if settings.ATELIER_STORAGE_BACKEND == "s3":
        endpoint = settings.ATELIER_S3_ENDPOINT_URL
        env["S3_ENDPOINT"] = endpoint
        env["S3_USE_HTTPS"] = "1" if endpoint.startswith("https://") or not endpoint else "0"
        env["S3_VERIFY_SSL"] = "1" if env["S3_USE_HTTPS"] == "1" else "0"
    return env


def launch_spec(job: TrainingJob) -> dict:
    """Everything the launcher needs, as JSON-ready data."""
    if job.boot_mode == BootMode.BUILTIN:
        boot = {"kind": "builtin", "name": job.builtin}
    elif job.boot_mode in PRESET_MODES:
        boot = {"kind": "file", "path": job.boot_file}
    else:
        boot = {"kind": "command", "command": job.boot_command}
    code = None
    if job.code_dir and job.boot_mode != BootMode.BUILTIN:
        segment = job.code_dir.rstrip("/").rpartition("/")[2] or job.code_dir.removeprefix("storage://")
        code = {"input": "code", "folder": segment}
    return {
        "version": SPEC_VERSION,
        "job": {"id": job.pk, "name": job.name},
        "code": code,
        "boot": boot,
        "engine": job.engine,
        "local_code_dir": job.local_code_dir,
        "working_dir": job.working_dir,
        "install_requirements": job.boot_mode in PRESET_MODES,
        "inputs": [{"name": c["name"], "local": c["local"], "acquisition": c["acquisition"]} for c in job.inputs],
        "outputs": [{"name": c["name"], "local": c["local"], "acquisition": c["acquisition"],
                     "predownload": bool(c.get("predownload"))} for c in job.outputs],
        "hyperparameters": [[h["name"], as_argument(h["value"])] for h in job.hyperparameters],
        "distributed": {"mode": job.launch_mode},
        "precheck": {
            "root_bytes": settings.ATELIER_TRAINING_PRECHECK_ROOT_BYTES,
            "shm_bytes": settings.ATELIER_TRAINING_PRECHECK_SHM_BYTES,
            "cache_bytes": settings.ATELIER_TRAINING_PRECHECK_CACHE_BYTES,
        },
        "platform_env": platform_env(),
        "user_env": dict(job.env),
        "mounts": list(job.mounts),
        "run_as_uid": job.run_as_uid if job.boot_mode == BootMode.CUSTOM else None,
    }


def launch_command(job: TrainingJob) -> list[str]:
    """argv of every node: the worker's python (first on the run's PATH) running the launcher."""
    return ["python", str(LAUNCHER), json.dumps(launch_spec(job), separators=(",", ":"), sort_keys=True)]
