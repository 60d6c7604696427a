"""Model packages in storage: the layout check at create time, the snapshot copy at import, and
the dependency environment build (seed-06 §2.4, §8.1, checklist items 2–4).

The package rules themselves live in the model server's `config` module, so the console and
the server apply the same ones.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath, parse
from apps.core.storage import NotFound, get_storage

from .modelserver.atelier_modelserver.config import PackageReport, dependency_specs, package_check

# Files never copied into a snapshot: interpreter caches carry nothing a version needs.
SKIP_PARTS = ("__pycache__",)


def package_files(root: StoragePath) -> dict[str, int]:
    """{path relative to `root`: size} of every file below `root` (caches left out)."""
    prefix = f"{root.key}/" if root.key else ""
    files = {}
    for info in get_storage().walk(root):
        rel = info.key[len(prefix):]
        if any(part in SKIP_PARTS for part in rel.split("/")):
            continue
        files[rel] = info.size
    return files


def package_inspect(root: StoragePath) -> PackageReport:
    """The layout check over a package folder in storage (reads only config.json)."""
    storage = get_storage()

    def read(rel: str) -> bytes:
        with storage.open(StoragePath(root.bucket, f"{root.key}/{rel}" if root.key else rel)) as handle:
            return handle.read(4 * 1024 * 1024)

    try:
        files = package_files(root)
    except NotFound:
        files = {}
    return package_check(files, read, max_file_bytes=settings.ATELIER_DEPLOYMENT_MAX_MODEL_FILE_BYTES)


def report_errors(report: PackageReport, field: str) -> ValidationError:
    """The report's problems as a ValidationError on `field` ("config.json: apis[0].url: …")."""
    messages = [message if where == "package" else f"{where}: {message}" for where, message in report.problems]
    return ValidationError({field: messages})


def snapshot_path(source: StoragePath, app_name: str, app_id: int, version: str) -> StoragePath:
    """Where a version's copy lives: in the source's bucket, under atelier-models/ (the run engine
    stages run inputs from the user's buckets only)."""
    return StoragePath(source.bucket, f"atelier-models/{app_name}-{app_id}/{version}")


def package_copy(source: StoragePath, target: StoragePath) -> tuple[int, int]:
    """Copy every package file from `source` to `target`; returns (files, bytes)."""
    storage = get_storage()
    files = package_files(source)
    total = 0
    for rel in files:
        with storage.open(StoragePath(source.bucket, f"{source.key}/{rel}" if source.key else rel)) as handle:
            total += storage.save(StoragePath(target.bucket, f"{target.key}/{rel}"), handle)
    return len(files), total


def config_dependencies_write(package_uri: str, dependencies: list) -> None:
    """Replace `dependencies` in a snapshot's model/config.json, keeping every other key as written."""
    import io
    import json

    storage = get_storage()
    root = parse(package_uri)
    path = StoragePath(root.bucket, f"{root.key}/model/config.json")
    with storage.open(path) as handle:
        raw = json.loads(handle.read().decode("utf-8-sig"))
    raw["dependencies"] = dependencies
    storage.save(path, io.BytesIO(json.dumps(raw, indent=2, ensure_ascii=False).encode()))


def package_delete(uri: str) -> None:
    if uri:
        get_storage().delete(parse(uri))


def env_specs(config: dict) -> list[str]:
    return dependency_specs(config)
