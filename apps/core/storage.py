"""The storage layer: one interface over the local filesystem and S3-compatible stores.

Every section reads and writes user data through `get_storage()`. Callers pass a
validated `StoragePath` (see `apps.core.paths`); backends never see raw user strings.
Folders exist explicitly: locally as directories, on S3 as zero-byte "<key>/" markers,
so an empty folder created in the browser stays visible. Both backends behave the same
(tests/core/test_storage.py runs one suite against each):

* a file and a folder never share a name: writing a file where a folder (or a folder where
  a file) exists, or below a file, raises `StorageError`;
* writing a file creates its missing parent folders, and deleting the file leaves them;
* `walk` yields files in lexicographic key order; names starting with "." are internal
  (partial uploads) and never listed.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from django.conf import settings

from .paths import StoragePath

# Streams copy in 1 MiB chunks: big enough for throughput, small enough to keep memory flat.
CHUNK = 1024 * 1024


class StorageError(Exception):
    """A user-facing storage failure (missing object, existing name); message is shown as is."""


class NotFound(StorageError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    """One file: its key inside the bucket, size in bytes and last modification time (UTC)."""

    key: str
    size: int
    modified: datetime

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]


@dataclass(frozen=True)
class Listing:
    """One folder level: immediate sub-folder names and files."""

    folders: list[str]
    files: list[ObjectInfo]


def _ancestors(path: StoragePath) -> list[StoragePath]:
    """The folders above `path` inside its bucket, outermost first ("a/b/c" → "a", "a/b")."""
    parts = path.key.split("/") if path.key else []
    return [StoragePath(path.bucket, "/".join(parts[:depth])) for depth in range(1, len(parts))]


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, timezone.utc)


class LocalStorage:
    """Buckets are directories under ATELIER_STORAGE_ROOT."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, path: StoragePath) -> Path:
        full = (self.root / path.bucket / path.key).resolve() if path.key else (self.root / path.bucket).resolve()
        # Defence in depth: validated keys cannot escape, but a symlink planted on disk could.
        if full != self.root and self.root not in full.parents:
            raise StorageError("The path leaves the storage root.")
        return full

    def local_path(self, path: StoragePath) -> Path | None:
        """Direct filesystem path, for callers that can use one (workers on the same host)."""
        return self._path(path)

    def bucket_create(self, bucket: str) -> None:
        (self.root / bucket).mkdir(parents=True, exist_ok=True)

    def bucket_delete(self, bucket: str) -> None:
        shutil.rmtree(self.root / bucket, ignore_errors=True)

    def exists(self, path: StoragePath) -> bool:
        return self._path(path).exists()

    def is_folder(self, path: StoragePath) -> bool:
        return self._path(path).is_dir()

    def _refuse_file_ancestors(self, path: StoragePath) -> None:
        for ancestor in _ancestors(path):
            if self._path(ancestor).is_file():
                raise StorageError(f'"{ancestor.key}" is a file, so nothing can be created inside it.')

    def mkdir(self, path: StoragePath) -> None:
        """Create the folder and every missing level above it; an existing folder is kept."""
        target = self._path(path)
        self._refuse_file_ancestors(path)
        if target.exists() and not target.is_dir():
            raise StorageError(f'A file named "{path.name}" already exists here.')
        target.mkdir(parents=True, exist_ok=True)

    def list(self, path: StoragePath) -> Listing:
        folder = self._path(path)
        if not folder.is_dir():
            raise NotFound(f"{path.uri} does not exist.")
        folders, files = [], []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    files.append(ObjectInfo(path.child(entry.name).key, entry.stat().st_size, _mtime(entry.stat())))
        folders.sort()
        files.sort(key=lambda f: f.key)
        return Listing(folders, files)

    def walk(self, path: StoragePath) -> Iterator[ObjectInfo]:
        """Every file at or below `path`, in lexicographic key order (the order S3 lists in)."""
        base = self._path(path)
        if base.is_file():
            yield ObjectInfo(path.key, base.stat().st_size, _mtime(base.stat()))
            return
        if base.is_dir():
            yield from self._walk_dir(base, path)

    def _walk_dir(self, folder: Path, path: StoragePath) -> Iterator[ObjectInfo]:
        with os.scandir(folder) as scan:
            entries = [e for e in scan if not e.name.startswith(".")]
        # A folder "b" sorts as "b/" so its files interleave with siblings exactly as full keys do.
        entries.sort(key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
        for entry in entries:
            child = path.child(entry.name)
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk_dir(Path(entry.path), child)
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat()
                yield ObjectInfo(child.key, stat.st_size, _mtime(stat))

    def stat(self, path: StoragePath) -> ObjectInfo:
        full = self._path(path)
        if not full.is_file():
            raise NotFound(f"{path.uri} does not exist.")
        stat = full.stat()
        return ObjectInfo(path.key, stat.st_size, _mtime(stat))

    def save(self, path: StoragePath, stream: BinaryIO) -> int:
        """Write `stream` to `path` atomically (temp file + rename); returns bytes written.

        If reading the stream raises, nothing is left behind and the exception propagates.
        """
        target = self._path(path)
        if target.is_dir():
            raise StorageError(f'A folder named "{path.name}" already exists here.')
        self._refuse_file_ancestors(path)
        # Levels this call creates, deepest first, so a failed write can take them back.
        created = [p for p in [target.parent, *target.parent.parents] if not p.exists() and self.root in p.parents]
        target.parent.mkdir(parents=True, exist_ok=True)
        # Unique per call: concurrent uploads of one name (threads share a pid) must not collide.
        tmp = target.with_name(f".{target.name}.part-{uuid.uuid4().hex}")
        written = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            for level in created:
                try:
                    level.rmdir()
                except OSError:  # another writer put something there meanwhile: keep it
                    break
            raise
        return written

    def open(self, path: StoragePath, offset: int = 0) -> BinaryIO:
        """The file for reading from byte `offset` (past the end: nothing left to read)."""
        full = self._path(path)
        if not full.is_file():
            raise NotFound(f"{path.uri} does not exist.")
        fh = open(full, "rb")
        if offset:
            fh.seek(offset)
        return fh

    def delete(self, path: StoragePath) -> None:
        """Delete a file, or a folder with everything below it. A missing path is not an error."""
        full = self._path(path)
        if full.is_dir():
            shutil.rmtree(full)
        elif full.exists():
            full.unlink()

    def download_to(self, path: StoragePath, dest: Path) -> None:
        source = self._path(path)
        if not source.is_file():
            raise NotFound(f"{path.uri} does not exist.")
        shutil.copyfile(source, dest)

    def upload_from(self, src: Path, path: StoragePath) -> None:
        with open(src, "rb") as fh:
            self.save(path, fh)


class _CountingReader:
    """Wraps a stream to count the bytes boto3 reads from it."""

    def __init__(self, inner: BinaryIO):
        self.inner, self.count = inner, 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        return data


class S3Storage:
    """Every Atelier bucket is a top-level prefix of one physical S3 bucket."""

    def __init__(self, *, endpoint_url: str, region: str, access_key: str, secret_key: str, bucket: str):
        import boto3
        from botocore.config import Config

        self.physical = bucket
        self.region = region
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(retries={"max_attempts": 3}, s3={"addressing_style": "path"}),
        )
        self._ensured = False

    def _ensure(self) -> None:
        if self._ensured:
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.physical)
        except ClientError:
            # us-east-1 is the one region that rejects an explicit LocationConstraint.
            extra = {} if self.region in ("", "us-east-1") else {
                "CreateBucketConfiguration": {"LocationConstraint": self.region}}
            self.client.create_bucket(Bucket=self.physical, **extra)
        self._ensured = True

    @staticmethod
    def _key(path: StoragePath) -> str:
        return f"{path.bucket}/{path.key}" if path.key else path.bucket

    def local_path(self, path: StoragePath) -> Path | None:
        return None

    def bucket_create(self, bucket: str) -> None:
        self._ensure()
        self.client.put_object(Bucket=self.physical, Key=f"{bucket}/", Body=b"")

    def bucket_delete(self, bucket: str) -> None:
        self.delete(StoragePath(bucket, ""))

    def _head(self, key: str):
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.physical, Key=key)
        except ClientError:
            return None

    def _is_file(self, path: StoragePath) -> bool:
        return bool(path.key) and self._head(self._key(path)) is not None

    def is_folder(self, path: StoragePath) -> bool:
        self._ensure()
        prefix = self._key(path) + "/"
        resp = self.client.list_objects_v2(Bucket=self.physical, Prefix=prefix, MaxKeys=1)
        return resp.get("KeyCount", 0) > 0

    def exists(self, path: StoragePath) -> bool:
        self._ensure()
        return self._is_file(path) or self.is_folder(path)

    def _refuse_file_ancestors(self, path: StoragePath) -> None:
        for ancestor in _ancestors(path):
            if self._is_file(ancestor):
                raise StorageError(f'"{ancestor.key}" is a file, so nothing can be created inside it.')

    def _put_folder_markers(self, path: StoragePath) -> None:
        """Marker objects for `path` and every level above it, so empty folders stay visible."""
        levels = [*_ancestors(path), path] if path.key else []
        for level in levels:
            self.client.put_object(Bucket=self.physical, Key=self._key(level) + "/", Body=b"")

    def mkdir(self, path: StoragePath) -> None:
        """Create the folder and every missing level above it; an existing folder is kept."""
        self._ensure()
        if not path.key:
            self.bucket_create(path.bucket)
            return
        self._refuse_file_ancestors(path)
        if self._is_file(path):
            raise StorageError(f'A file named "{path.name}" already exists here.')
        self._put_folder_markers(path)

    def list(self, path: StoragePath) -> Listing:
        self._ensure()
        prefix = self._key(path) + "/"
        folders, files = [], []
        found = False
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.physical, Prefix=prefix, Delimiter="/"
        ):
            for common in page.get("CommonPrefixes", []):
                found = True
                name = common["Prefix"][len(prefix):].rstrip("/")
                if not name.startswith("."):
                    folders.append(name)
            for obj in page.get("Contents", []):
                found = True
                name = obj["Key"][len(prefix):]
                if obj["Key"] == prefix or name.startswith("."):
                    continue
                files.append(ObjectInfo(obj["Key"][len(path.bucket) + 1:], obj["Size"], obj["LastModified"]))
        if not found:
            raise NotFound(f"{path.uri} does not exist.")
        return Listing(sorted(folders), sorted(files, key=lambda f: f.key))

    def walk(self, path: StoragePath) -> Iterator[ObjectInfo]:
        """Every file at or below `path`, in lexicographic key order."""
        self._ensure()
        head = self._head(self._key(path)) if path.key else None
        if head is not None:
            yield ObjectInfo(path.key, head["ContentLength"], head["LastModified"])
            return
        prefix = self._key(path) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.physical, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(path.bucket) + 1:]
                if obj["Key"].endswith("/") or any(part.startswith(".") for part in key.split("/")):
                    continue
                yield ObjectInfo(key, obj["Size"], obj["LastModified"])

    def stat(self, path: StoragePath) -> ObjectInfo:
        self._ensure()
        head = self._head(self._key(path)) if path.key else None
        if head is None:
            raise NotFound(f"{path.uri} does not exist.")
        return ObjectInfo(path.key, head["ContentLength"], head["LastModified"])

    def save(self, path: StoragePath, stream: BinaryIO) -> int:
        """Upload `stream` to `path`; returns bytes written. A failing stream leaves no object."""
        self._ensure()
        if self.is_folder(path):
            raise StorageError(f'A folder named "{path.name}" already exists here.')
        self._refuse_file_ancestors(path)
        counting = _CountingReader(stream)
        # upload_fileobj aborts its multipart upload when reading raises, so no partial object appears.
        self.client.upload_fileobj(counting, self.physical, self._key(path))
        parent = path.parent
        if parent.key and self._head(self._key(parent) + "/") is None:
            self._put_folder_markers(parent)
        return counting.count

    def open(self, path: StoragePath, offset: int = 0) -> BinaryIO:
        """The object's body from byte `offset` (a ranged GET: the bytes before it are not sent;
        past the end: nothing left to read)."""
        from botocore.exceptions import ClientError

        self._ensure()
        if not path.key:
            raise NotFound(f"{path.uri} does not exist.")
        ranged = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            return self.client.get_object(Bucket=self.physical, Key=self._key(path), **ranged)["Body"]
        except ClientError as exc:
            if offset and exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return io.BytesIO(b"")  # the object exists and ends before `offset`
            raise NotFound(f"{path.uri} does not exist.") from exc

    def delete(self, path: StoragePath) -> None:
        """Delete a file, or a folder with everything below it. A missing path is not an error."""
        self._ensure()
        key = self._key(path)
        if path.key:
            self.client.delete_object(Bucket=self.physical, Key=key)
        batch = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.physical, Prefix=key + "/"):
            for obj in page.get("Contents", []):
                batch.append({"Key": obj["Key"]})
                if len(batch) == 1000:  # S3's DeleteObjects limit
                    self.client.delete_objects(Bucket=self.physical, Delete={"Objects": batch})
                    batch = []
        if batch:
            self.client.delete_objects(Bucket=self.physical, Delete={"Objects": batch})

    def download_to(self, path: StoragePath, dest: Path) -> None:
        with contextlib.closing(self.open(path)) as body, open(dest, "wb") as out:
            shutil.copyfileobj(body, out, CHUNK)

    def upload_from(self, src: Path, path: StoragePath) -> None:
        with open(src, "rb") as fh:
            self.save(path, fh)


@functools.cache
def get_storage() -> LocalStorage | S3Storage:
    """The configured backend (cached per process; tests call `get_storage.cache_clear()`)."""
    if settings.ATELIER_STORAGE_BACKEND == "s3":
        return S3Storage(
            endpoint_url=settings.ATELIER_S3_ENDPOINT_URL,
            region=settings.ATELIER_S3_REGION,
            access_key=settings.ATELIER_S3_ACCESS_KEY,
            secret_key=settings.ATELIER_S3_SECRET_KEY,
            bucket=settings.ATELIER_S3_BUCKET,
        )
    if settings.ATELIER_STORAGE_BACKEND != "local":
        raise StorageError(f"Unknown ATELIER_STORAGE_BACKEND {settings.ATELIER_STORAGE_BACKEND!r}; use local or s3.")
    return LocalStorage(settings.ATELIER_STORAGE_ROOT)
