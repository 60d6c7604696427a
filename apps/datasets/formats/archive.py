"""Safe extraction of uploaded zip archives.

Each entry is checked on its own and a bad one is reported and skipped, never extracted:
`..` or absolute names (zip-slip), symbolic links, names breaking the upload rules, and
entries whose declared size or compression ratio marks a zip bomb. Sizes are enforced
while reading too, since the declared size can lie.
"""
from __future__ import annotations

import stat
import zipfile
from typing import Callable

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath, validate_upload_name
from apps.core.storage import get_storage

from ..choices import ErrorCode

# A ratio above this between uncompressed and compressed size is treated as a zip bomb.
MAX_RATIO = 200
CHUNK = 1024 * 1024


class _LimitedReader:
    def __init__(self, inner, limit: int, name: str):
        self.inner, self.limit, self.name, self.read_bytes = inner, limit, name, 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(CHUNK if size is None or size < 0 else size)
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise ValueError(f"{self.name} expands past {self.limit} bytes.")
        return data


def extract_zip(fileobj, target: StoragePath, report: Callable[[str, str, str], None]) -> list[StoragePath]:
    """Extract the safe entries of a zip into `target`; `report(entry, code, message)` gets each refusal."""
    storage = get_storage()
    total_limit = settings.ATELIER_DATASET_MAX_UPLOAD_BYTES
    written_total = 0
    written: list[StoragePath] = []
    try:
        archive = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        report("(archive)", ErrorCode.UNSAFE_ARCHIVE_ENTRY, f"The file is not a readable zip archive: {exc}.")
        return written
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                report(name, ErrorCode.UNSAFE_ARCHIVE_ENTRY, "Symbolic links are not extracted from archives.")
                continue
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                report(name, ErrorCode.UNSAFE_ARCHIVE_ENTRY, "Absolute paths are not extracted from archives.")
                continue
            parts = name.replace("\\", "/").split("/")
            if ".." in parts:
                report(name, ErrorCode.UNSAFE_ARCHIVE_ENTRY, 'Entries with ".." would leave the upload folder.')
                continue
            parts = [p for p in parts if p not in ("", ".")]
            if any(p.startswith(".") for p in parts) or parts[0] == "__MACOSX":
                continue  # hidden files and macOS resource forks are not data
            try:
                for part in parts:
                    validate_upload_name(part)
            except ValidationError as exc:
                report(name, ErrorCode.INVALID_NAME, exc.messages[0])
                continue
            limit = settings.ATELIER_DATASET_MAX_SAMPLE_BYTES
            if info.file_size > limit:
                report(name, ErrorCode.FILE_TOO_LARGE, f"The entry expands to {info.file_size} bytes; at most {limit}.")
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > CHUNK:
                report(name, ErrorCode.UNSAFE_ARCHIVE_ENTRY,
                       f"The entry compresses {info.file_size // max(info.compress_size, 1)}:1, the mark of a zip bomb.")
                continue
            if written_total + info.file_size > total_limit:
                report(name, ErrorCode.FILE_TOO_LARGE, f"The upload would pass {total_limit} bytes in total.")
                continue
            path = StoragePath(target.bucket, "/".join(p for p in [target.key, *parts] if p))
            try:
                with archive.open(info) as member:
                    size = storage.save(path, _LimitedReader(member, min(limit, info.file_size), name))
            except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
                report(name, ErrorCode.UNSAFE_ARCHIVE_ENTRY, f"The entry could not be extracted: {exc}")
                continue
            written_total += size
            written.append(path)
    return written
