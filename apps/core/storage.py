"""The storage layer: one interface over the local filesystem and S3-compatible stores.

Every section reads and writes user data through `get_storage()`. Callers pass a
validated `StoragePath` (see `apps.core.paths`); backends never see raw user strings.
Folders exist explicitly: locally as directories, on S3 as zero-byte "<key>/" markers,
so an empty folder created in the browser stays visible.
"""
from __future__ import annotations

import functools
import os
import shutil
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

    def mkdir(self, path: StoragePath) -> None:
        target = self._path(path)
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
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat()
                    key = f"{path.key}/{entry.name}" if path.key else entry.name
                    files.append(ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc)))
        folders.sort()
        files.sort(key=lambda f: f.key)
        return Listing(folders, files)

    def walk(self, path: StoragePath) -> Iterator[ObjectInfo]:
        """Every file at or below `path`, in key order."""
        base = self._path(path)
        if base.is_file():
            stat = base.stat()
            yield ObjectInfo(path.key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc))
            return
        bucket_root = self._path(StoragePath(path.bucket, ""))
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                if full.is_symlink():
                    continue
                stat = full.stat()
                yield ObjectInfo(
                    full.relative_to(bucket_root).as_posix(), stat.st_size,
                    datetime.fromtimestamp(stat.st_mtime, timezone.utc),
                )

    def stat(self, path: StoragePath) -> ObjectInfo:
        full = self._path(path)
        if not full.is_file():
            raise NotFound(f"{path.uri} does not exist.")
        stat = full.stat()
        return ObjectInfo(path.key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc))

    def save(self, path: StoragePath, stream: BinaryIO) -> int:
        """Write `stream` to `path` atomically (temp file + rename); returns bytes written."""
        target = self._path(path)
        if target.is_dir():
            raise StorageError(f'A folder named "{path.name}" already exists here.')
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
        written = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return written

    def open(self, path: StoragePath) -> BinaryIO:
        full = self._path(path)
        if not full.is_file():
            raise NotFound(f"{path.uri} does not exist.")
        return open(full, "rb")

    def delete(self, path: StoragePath) -> None:
        """Delete a file, or a folder with everything below it."""
        full = self._path(path)
        if full.is_dir():
            shutil.rmtree(full)
        elif full.exists():
            full.unlink()

    def download_to(self, path: StoragePath, dest: Path) -> None:
        shutil.copyfile(self._path(path), dest)

    def upload_from(self, src: Path, path: StoragePath) -> None:
        with open(src, "rb") as fh:
            self.save(path, fh)


class S3Storage:
    """Every Atelier bucket is a top-level prefix of one physical S3 bucket."""

    def __init__(self, *, endpoint_url: str, region: str, access_key: str, secret_key: str, bucket: str):
        import boto3
        from botocore.config import Config

        self.physical = bucket
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
            self.client.create_bucket(Bucket=self.physical)
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

    def is_folder(self, path: StoragePath) -> bool:
        self._ensure()
        prefix = self._key(path) + "/"
        resp = self.client.list_objects_v2(Bucket=self.physical, Prefix=prefix, MaxKeys=1)
        return resp.get("KeyCount", 0) > 0

    def exists(self, path: StoragePath) -> bool:
        self._ensure()
        return self._head(self._key(path)) is not None or self.is_folder(path)

    def mkdir(self, path: StoragePath) -> None:
        self._ensure()
        if self._head(self._key(path)) is not None:
            raise StorageError(f'A file named "{path.name}" already exists here.')
        # Create every level so "a/b/c" shows as three nested folders even before files arrive.
        parts = path.key.split("/")
        for depth in range(1, len(parts) + 1):
            self.client.put_object(Bucket=self.physical, Key=f"{path.bucket}/{'/'.join(parts[:depth])}/", Body=b"")

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
                folders.append(common["Prefix"][len(prefix):].rstrip("/"))
            for obj in page.get("Contents", []):
                found = True
                if obj["Key"] == prefix:
                    continue
                files.append(ObjectInfo(obj["Key"][len(path.bucket) + 1:], obj["Size"], obj["LastModified"]))
        if not found:
            raise NotFound(f"{path.uri} does not exist.")
        return Listing(sorted(folders), sorted(files, key=lambda f: f.key))

    def walk(self, path: StoragePath) -> Iterator[ObjectInfo]:
        self._ensure()
        head = self._head(self._key(path)) if path.key else None
        if head is not None:
            yield ObjectInfo(path.key, head["ContentLength"], head["LastModified"])
            return
        prefix = self._key(path) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.physical, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    yield ObjectInfo(obj["Key"][len(path.bucket) + 1:], obj["Size"], obj["LastModified"])

    def stat(self, path: StoragePath) -> ObjectInfo:
        self._ensure()
        head = self._head(self._key(path))
        if head is None:
            raise NotFound(f"{path.uri} does not exist.")
        return ObjectInfo(path.key, head["ContentLength"], head["LastModified"])

    def save(self, path: StoragePath, stream: BinaryIO) -> int:
        self._ensure()
        if self.is_folder(path):
            raise StorageError(f'A folder named "{path.name}" already exists here.')

        class _Counting:
            def __init__(self, inner):
                self.inner, self.count = inner, 0

            def read(self, size=-1):
                data = self.inner.read(size)
                self.count += len(data)
                return data

        counting = _Counting(stream)
        self.client.upload_fileobj(counting, self.physical, self._key(path))
        return counting.count

    def open(self, path: StoragePath) -> BinaryIO:
        from botocore.exceptions import ClientError

        self._ensure()
        try:
            return self.client.get_object(Bucket=self.physical, Key=self._key(path))["Body"]
        except ClientError as exc:
            raise NotFound(f"{path.uri} does not exist.") from exc

    def delete(self, path: StoragePath) -> None:
        self._ensure()
        key = self._key(path)
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
        self._ensure()
        self.client.download_file(self.physical, self._key(path), str(dest))

    def upload_from(self, src: Path, path: StoragePath) -> None:
        self._ensure()
        self.client.upload_file(str(src), self.physical, self._key(path))


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
