"""Read queries for storage: buckets a user may see, and the check every typed path goes through."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath, parse
from apps.core.permissions import has_perm
from apps.core.scoping import get_for_user
from apps.core.storage import NotFound, get_storage

from .models import Bucket


def buckets_in(workspace):
    """Buckets of one workspace (none when there is no current workspace)."""
    if workspace is None:
        return Bucket.objects.none()
    return Bucket.objects.in_workspace(workspace).select_related("created_by")


def buckets_visible_to(user):
    """Buckets in every workspace where `user` is a member."""
    return Bucket.objects.visible_to(user).select_related("workspace", "created_by")


def bucket_get_for_user(user, name: str) -> Bucket:
    """The bucket called `name` if the user belongs to its workspace, else Http404."""
    return get_for_user(Bucket.objects.select_related("workspace"), user, name=name)


def storage_path_resolve(
    user,
    uri: str,
    action: str = "storage:view",
    *,
    must_exist: bool = False,
    kind: Literal["folder", "file"] | None = None,
) -> StoragePath:
    """Validate a path the user typed and check they may use it; return the `StoragePath`.

    Raises ValidationError with a message for the user when the path breaks a naming rule,
    its bucket is not in one of the user's workspaces (reported as "does not exist", so other
    workspaces' bucket names never leak), their role lacks `action` there, `must_exist` is set
    and nothing is at that path, or `kind` ("folder"/"file") is set and the path holds the
    other kind (a path where nothing exists yet passes a `kind` check).
    """
    path = parse(uri)
    bucket = Bucket.objects.visible_to(user).select_related("workspace").filter(name=path.bucket).first()
    if bucket is None:
        raise ValidationError(f'The bucket "{path.bucket}" does not exist.', code="no_bucket")
    if not has_perm(user, bucket.workspace, action):
        raise ValidationError(
            f'Your role in workspace "{bucket.workspace.name}" does not allow {action}.', code="permission"
        )
    if must_exist or kind:
        storage = get_storage()
        is_folder = storage.is_folder(path)
        is_file = not is_folder and bool(path.key) and storage.exists(path)
        if must_exist and not (is_folder or is_file):
            raise ValidationError(f"{path.uri} does not exist.", code="missing")
        if kind == "folder" and is_file:
            raise ValidationError(f"{path.uri} is a file; choose a folder.", code="not_folder")
        if kind == "file" and (is_folder or not path.key):
            raise ValidationError(f"{path.uri} is a folder; choose a file.", code="not_file")
    return path


@dataclass(frozen=True)
class Entry:
    """One row of a folder listing: a sub-folder (size and modified are None) or a file."""

    kind: Literal["folder", "file"]
    name: str
    path: StoragePath
    size: int | None = None
    modified: datetime | None = None

    @property
    def is_folder(self) -> bool:
        return self.kind == "folder"


SORT_KEYS = {
    "name": lambda e: e.name.lower(),
    "size": lambda e: e.size or 0,
    "modified": lambda e: e.modified.timestamp() if e.modified else 0.0,
}


def folder_entries(path: StoragePath, *, search: str = "", sort: str = "name", descending: bool = False) -> list[Entry]:
    """Folders then files directly under `path`, filtered by a case-insensitive name search.

    `sort` is name, size or modified; folders always stay above files. Raises
    `apps.core.storage.NotFound` when `path` is not a folder.
    """
    listing = get_storage().list(path)
    needle = search.strip().lower()
    folders = [Entry("folder", name, path.child(name)) for name in listing.folders if needle in name.lower()]
    files = [
        Entry("file", info.name, StoragePath(path.bucket, info.key), info.size, info.modified)
        for info in listing.files
        if needle in info.name.lower()
    ]
    key = SORT_KEYS.get(sort, SORT_KEYS["name"])
    # Folders have no size or date: they keep name order whatever the sort column.
    folders.sort(key=SORT_KEYS["name"], reverse=descending and sort == "name")
    files.sort(key=key, reverse=descending)
    return folders + files


def folder_is_empty(path: StoragePath) -> bool:
    """True when nothing (no file, no sub-folder) is below `path`; a missing folder counts as empty."""
    try:
        listing = get_storage().list(path)
    except NotFound:
        return True
    return not listing.folders and not listing.files
