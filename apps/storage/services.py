"""Storage writes: buckets, folders and files. Each checks the action permission and is audited.

Paths arrive validated (`StoragePath`); each service still looks the bucket up through the
user's workspaces, so an outsider gets Http404 whatever the caller did. Failures the user can
fix raise ValidationError (a dict keyed by form field where one applies) and change nothing.
"""
from __future__ import annotations

import contextlib
from typing import BinaryIO, Callable, Iterable, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat

from apps.core.paths import StoragePath, parse, validate_bucket_name, validate_key, validate_upload_name
from apps.core.permissions import require_perm
from apps.core.services import audit_record
from apps.core.storage import ObjectInfo, StorageError, get_storage

from .models import Bucket
from .selectors import bucket_get_for_user, folder_is_empty


# Platform-owned storage (run logs, …) lives in buckets with this prefix that no user may claim,
# or a user could create one before the platform first writes to it and read what lands there.
RESERVED_PREFIX = "atelier-"


class Upload(Protocol):
    """What `object_upload` reads: Django's UploadedFile fits, and so does any named stream."""

    name: str
    size: int | None

    def read(self, size: int = -1) -> bytes: ...


# Other apps hold folders that must not change under them (training: the code folder of a job that
# is creating, pending or running). A guard gets a bucket name and returns the folders it holds there,
# each with why; storage never imports the apps that hold paths.
WriteGuard = Callable[[str], Iterable[tuple[StoragePath, str]]]
_WRITE_GUARDS: list[WriteGuard] = []


def storage_write_guard_register(guard: WriteGuard) -> None:
    """Refuse user writes and deletes the guard objects to (called from an AppConfig.ready)."""
    if guard not in _WRITE_GUARDS:
        _WRITE_GUARDS.append(guard)


def _write_allowed(path: StoragePath, field: str | None = None, *, deleting: bool = False) -> None:
    """ValidationError (code "locked") with the guard's reason when `path` lies in a held folder or,
    for a delete, holds one (deleting a parent folder would delete the held one too)."""
    for guard in _WRITE_GUARDS:
        for held, reason in guard(path.bucket):
            if path.is_within(held) or (deleting and held.is_within(path)):
                raise ValidationError({field: [reason]} if field else reason, code="locked")


@contextlib.contextmanager
def _storage_errors(field: str | None = None):
    """Backend refusals (a file where a folder should be, …) become the user's validation error."""
    try:
        yield
    except StorageError as exc:
        raise ValidationError({field: [str(exc)]} if field else str(exc)) from exc


def _bucket_for(user, path: StoragePath, action: str) -> Bucket:
    bucket = bucket_get_for_user(user, path.bucket)
    require_perm(user, bucket.workspace, action)
    return bucket


@transaction.atomic
def bucket_create(*, user, workspace, name: str) -> Bucket:
    """Create an empty bucket in `workspace` (needs storage:create there); names are platform-unique."""
    if workspace is None:
        raise ValidationError({"name": ["Buckets belong to a workspace; join or choose one first."]})
    require_perm(user, workspace, "storage:create")
    name = (name or "").strip()
    try:
        validate_bucket_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None
    if name.startswith(RESERVED_PREFIX) or name == getattr(settings, "ATELIER_RUNTIME_LOG_BUCKET", None):
        raise ValidationError({"name": [f'Bucket names starting with "{RESERVED_PREFIX}" are reserved for the '
                                         "platform's own data; choose another."]})
    if Bucket.objects.filter(name=name).exists():
        raise ValidationError({"name": [f'The bucket name "{name}" is taken; bucket names are unique across '
                                         "the platform, so choose another."]})
    storage = get_storage()
    root = StoragePath(name, "")
    # Data left under this name outside Atelier must never be handed to a new owner.
    if storage.exists(root) and not folder_is_empty(root):
        raise ValidationError({"name": [f'Storage already holds data under "{name}" that belongs to no bucket; '
                                         "choose another name or ask an administrator to remove it."]})
    try:
        with transaction.atomic():
            bucket = Bucket.objects.create(workspace=workspace, name=name, created_by=user)
    except IntegrityError:  # a concurrent create won the name between the check and the insert
        raise ValidationError({"name": [f'The bucket name "{name}" is taken; choose another.']}) from None
    storage.bucket_create(name)
    audit_record(actor=user, action="bucket:create", obj=bucket)
    return bucket


@transaction.atomic
def bucket_delete(*, user, bucket: Bucket, recursive: bool = False) -> None:
    """Delete a bucket (needs storage:delete). A bucket holding anything needs `recursive=True`,
    which deletes every folder and file in it first."""
    bucket = bucket_get_for_user(user, bucket.name)
    require_perm(user, bucket.workspace, "storage:delete")
    root = StoragePath(bucket.name, "")
    _write_allowed(root, deleting=True)
    if not recursive and not folder_is_empty(root):
        raise ValidationError(f'The bucket "{bucket.name}" is not empty; confirm deleting it with everything in it.',
                              code="not_empty")
    # Storage first: if it fails the row stays, so the data is never left without an owner.
    get_storage().bucket_delete(bucket.name)
    audit_record(actor=user, action="bucket:delete", obj=bucket, detail={"recursive": recursive})
    bucket.delete()


@transaction.atomic
def folder_create(*, user, parent: StoragePath, name: str) -> StoragePath:
    """Create folder `name` under `parent` (needs storage:create). Each "/" in `name` starts a
    nested level, so "a/b/c" creates three folders. Refuses a name that already exists."""
    bucket = _bucket_for(user, parent, "storage:create")
    name = name or ""
    if not name.strip():
        raise ValidationError({"name": ["Enter a folder name."]})
    try:
        validate_key(name, allow_empty=False)
        path = parse(parent.child(name).uri)  # the whole path's length counts, not just the name's
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None
    _write_allowed(path, "name")
    storage = get_storage()
    if storage.is_folder(path):
        raise ValidationError({"name": [f'A folder named "{name}" already exists in {parent.uri}.']})
    with _storage_errors("name"):
        storage.mkdir(path)
    audit_record(actor=user, action="folder:create", workspace=bucket.workspace, object_repr=path.uri)
    return path


class _LimitedReader:
    """Fails the write once more than `limit` bytes arrive, whatever size the client declared."""

    def __init__(self, inner: BinaryIO, *, limit: int, name: str):
        self.inner, self.limit, self.name, self.count = inner, limit, name, 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise ValidationError(upload_too_large_message(self.name))
        return data


def upload_too_large_message(name: str) -> str:
    """The refusal for a file over ATELIER_MAX_UPLOAD_BYTES (also used by the views' early cut-off)."""
    limit = settings.ATELIER_MAX_UPLOAD_BYTES
    return (f'The file "{name}" is larger than the upload limit of {filesizeformat(limit)} '
            f"({limit} bytes).")


def _upload_check(file: Upload) -> None:
    try:
        validate_upload_name(file.name or "")
    except ValidationError as exc:
        raise ValidationError({"files": exc.messages}) from None
    if file.size is not None and file.size > settings.ATELIER_MAX_UPLOAD_BYTES:
        raise ValidationError({"files": [upload_too_large_message(file.name)]})


@transaction.atomic
def object_upload(*, user, folder: StoragePath, file: Upload) -> ObjectInfo:
    """Store one uploaded file in `folder` (needs storage:create), replacing a file of the same name.

    Refuses names with "+", a space or a tab (and every path rule), files over
    ATELIER_MAX_UPLOAD_BYTES and a name taken by a folder; a refused upload writes nothing.
    """
    bucket = _bucket_for(user, folder, "storage:create")
    _upload_check(file)
    try:
        path = parse(folder.child(file.name).uri)
    except ValidationError as exc:
        raise ValidationError({"files": [f'The file name "{file.name}" is not allowed here: {exc.messages[0]}']}) \
            from None
    _write_allowed(path, "files")
    storage = get_storage()
    replaced = storage.exists(path)
    with _storage_errors("files"):
        try:
            written = storage.save(path, _LimitedReader(file, limit=settings.ATELIER_MAX_UPLOAD_BYTES,
                                                        name=file.name))
        except ValidationError as exc:
            raise ValidationError({"files": exc.messages}) from None
    audit_record(actor=user, action="object:upload", workspace=bucket.workspace, object_repr=path.uri,
                 detail={"size": written, "replaced": replaced})
    return storage.stat(path)


def objects_upload(*, user, folder: StoragePath, files: Iterable[Upload]) -> list[ObjectInfo]:
    """Upload several files into `folder`: every name and size is checked before the first byte
    is written, so one bad file refuses the whole batch."""
    files = list(files)
    if not files:
        raise ValidationError({"files": ["Choose at least one file to upload."]})
    _bucket_for(user, folder, "storage:create")
    _write_allowed(folder, "files")  # refuse the batch before its first file is written
    seen: set[str] = set()
    for file in files:
        _upload_check(file)
        if file.name in seen:
            raise ValidationError({"files": [f'The file "{file.name}" is in the batch twice.']})
        seen.add(file.name)
    return [object_upload(user=user, folder=folder, file=file) for file in files]


@transaction.atomic
def object_delete(*, user, path: StoragePath) -> None:
    """Delete one file (needs storage:delete)."""
    bucket = _bucket_for(user, path, "storage:delete")
    _write_allowed(path, deleting=True)
    storage = get_storage()
    if not path.key or storage.is_folder(path):
        raise ValidationError(f"{path.uri} is a folder; delete it as a folder.", code="not_file")
    if not storage.exists(path):
        raise ValidationError(f"{path.uri} does not exist.", code="missing")
    storage.delete(path)
    audit_record(actor=user, action="object:delete", workspace=bucket.workspace, object_repr=path.uri)


@transaction.atomic
def folder_delete(*, user, path: StoragePath, recursive: bool = False) -> None:
    """Delete a folder (needs storage:delete); one holding anything needs `recursive=True`,
    which deletes everything below it. The bucket root is deleted with `bucket_delete`."""
    bucket = _bucket_for(user, path, "storage:delete")
    if not path.key:
        raise ValidationError("This is the bucket itself; delete the bucket instead.", code="bucket_root")
    storage = get_storage()
    if not storage.is_folder(path):
        raise ValidationError(f"{path.uri} is not a folder.", code="not_folder")
    _write_allowed(path, deleting=True)
    if not recursive and not folder_is_empty(path):
        raise ValidationError(f'The folder "{path.key}" is not empty; confirm deleting it with everything in it.',
                              code="not_empty")
    storage.delete(path)
    audit_record(actor=user, action="folder:delete", workspace=bucket.workspace, object_repr=path.uri,
                 detail={"recursive": recursive})
