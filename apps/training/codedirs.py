"""Code folders of algorithms and jobs: limits, boot files, and uploads into storage (spec seed-05 §2.4)."""
from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath, validate_key, validate_upload_name
from apps.core.storage import StorageError, get_storage

# ModelArts limits on a code folder: entries (files and folders counted), total size, depth.
MAX_ENTRIES = 1000
MAX_BYTES = 5 * 1024 ** 3
MAX_DEPTH = 32
# Above this a warning is shown: the whole folder is copied to every node at every start.
WARN_BYTES = 50 * 1024 ** 2
# An uploaded archive may expand to at most this much (zip bombs).
MAX_ARCHIVE_MEMBERS = MAX_ENTRIES
REQUIREMENT_FILES = ("pip-requirement.txt", "pip-requirements.txt", "requirement.txt", "requirements.txt")


@dataclass(frozen=True)
class CodeDirStats:
    files: int
    folders: int
    bytes: int
    depth: int
    names: frozenset[str]  # keys relative to the folder

    @property
    def entries(self) -> int:
        return self.files + self.folders

    @property
    def warning(self) -> str:
        if self.bytes > WARN_BYTES:
            return (f"The code folder holds {self.bytes / 1024 ** 2:.0f} MiB; keep it under 50 MiB (no training data "
                    f"in it), since it is copied to every node at every start.")
        return ""


def code_dir_stats(path: StoragePath) -> CodeDirStats:
    """Walk the folder and enforce the limits; ValidationError({"code_dir": …}) names the broken one."""
    storage = get_storage()
    if not storage.is_folder(path):
        raise ValidationError({"code_dir": [f"{path.uri} is not a folder (or does not exist)."]})
    files = total = depth = 0
    folders: set[str] = set()
    names = set()
    prefix = f"{path.key}/" if path.key else ""
    for info in storage.walk(path):
        rel = info.key[len(prefix):]
        names.add(rel)
        parts = rel.split("/")
        depth = max(depth, len(parts))
        for end in range(1, len(parts)):
            folders.add("/".join(parts[:end]))
        files += 1
        total += info.size
        if files + len(folders) > MAX_ENTRIES:
            raise ValidationError({"code_dir": [f"{path.uri} holds more than {MAX_ENTRIES} files and folders; "
                                                f"keep only code in it."]})
        if total > MAX_BYTES:
            raise ValidationError({"code_dir": [f"{path.uri} is larger than 5 GB; keep only code in it."]})
    if depth > MAX_DEPTH:
        raise ValidationError({"code_dir": [f"{path.uri} is {depth} levels deep; at most {MAX_DEPTH} are allowed."]})
    if files == 0:
        raise ValidationError({"code_dir": [f"{path.uri} is empty; upload the training code first."]})
    return CodeDirStats(files, len(folders), total, depth, frozenset(names))


def boot_file_clean(code_dir: StoragePath, raw: str, stats: CodeDirStats | None) -> str:
    """The boot file relative to the code folder: given relative or as a full storage path inside it."""
    value = (raw or "").strip()
    if not value:
        raise ValidationError({"boot_file": ["Give the boot file, a .py file inside the code folder."]})
    if value.startswith("storage://"):
        code_prefix = code_dir.uri.rstrip("/") + "/"
        if not value.startswith(code_prefix):
            raise ValidationError({"boot_file": [f"The boot file must lie inside the code folder {code_dir.uri}."]})
        value = value[len(code_prefix):]
    value = value.lstrip("./") if value.startswith("./") else value
    if value.startswith("/") or ".." in value.split("/"):
        raise ValidationError({"boot_file": [f"The boot file must lie inside the code folder {code_dir.uri}."]})
    try:
        validate_key(value, allow_empty=False)
    except ValidationError as exc:
        raise ValidationError({"boot_file": exc.messages}) from None
    if not value.endswith(".py"):
        raise ValidationError({"boot_file": [f'"{value}" is not a Python file; the boot file must end in .py.']})
    if stats is not None and value not in stats.names:
        raise ValidationError({"boot_file": [f"{code_dir.uri}/{value} does not exist."]})
    return value


def code_upload(*, destination: StoragePath, files) -> int:
    """Write uploaded code into `destination`: .zip archives are unpacked, other files saved as they are.

    Returns the number of files written. Refuses archive members that escape the folder, and
    uploads that would break the code-folder limits.
    """
    storage = get_storage()
    written = 0
    pending: list[tuple[str, bytes]] = []
    for upload in files:
        name = posixpath.basename(upload.name or "")
        if name.lower().endswith(".zip"):
            data = upload.read()
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
            except zipfile.BadZipFile:
                raise ValidationError({"code_files": [f'"{name}" is not a valid zip archive.']}) from None
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise ValidationError({"code_files": [f'"{name}" holds more than {MAX_ENTRIES} files.']})
            if sum(m.file_size for m in members) > MAX_BYTES:
                raise ValidationError({"code_files": [f'"{name}" expands to more than 5 GB.']})
            for member in members:
                rel = member.filename.replace("\\", "/").lstrip("/")
                if ".." in rel.split("/") or rel.startswith("__MACOSX/"):
                    if rel.startswith("__MACOSX/"):
                        continue
                    raise ValidationError({"code_files": [f'"{name}": the member {member.filename} leaves the '
                                                          f'folder.']})
                try:
                    validate_key(rel, allow_empty=False)
                except ValidationError as exc:
                    raise ValidationError({"code_files": [f'"{name}": {member.filename}: {exc.messages[0]}']}) from None
                pending.append((rel, archive.read(member)))
        else:
            try:
                validate_upload_name(name)
            except ValidationError as exc:
                raise ValidationError({"code_files": exc.messages}) from None
            pending.append((name, upload.read()))
    if not pending:
        raise ValidationError({"code_files": ["Choose the code to upload (.py files or a .zip archive)."]})
    if len(pending) > MAX_ENTRIES:
        raise ValidationError({"code_files": [f"{len(pending)} files; a code folder holds at most {MAX_ENTRIES}."]})
    try:
        for rel, data in pending:
            storage.save(destination.child(rel) if destination.key else StoragePath(destination.bucket, rel),
                         io.BytesIO(data))
            written += 1
    except StorageError as exc:
        raise ValidationError({"code_files": [str(exc)]}) from None
    return written


def code_dirs_held(bucket: str) -> list[tuple[StoragePath, str]]:
    """The code folders in `bucket` of jobs that are creating, pending or running, each with the reason
    storage gives when a user tries to change it (spec item 24: no code edits then). Every attempt,
    restarts included, copies the folder again, so it must not change under a live job."""
    from apps.core.paths import parse

    from .choices import LIVE_JOB_STATUSES
    from .models import TrainingJob

    held = []
    jobs = (TrainingJob.objects.filter(status__in=LIVE_JOB_STATUSES, code_dir__startswith=f"storage://{bucket}")
            .exclude(code_dir="").only("name", "status", "code_dir").order_by("pk"))
    for job in jobs:
        path = parse(job.code_dir)
        if path.bucket != bucket:  # "storage://data" also starts "storage://data2/…"
            continue
        held.append((path, f'{path.uri} is the code folder of training job "{job.name}", which is '
                           f"{job.get_status_display().lower()}; its code can be edited once the job has ended "
                           "(or after terminating it)."))
    return held
