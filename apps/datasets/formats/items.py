"""What readers produce, and the helpers they share (text decoding, path resolution, label names)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath, parse
from apps.core.storage import NotFound, ObjectInfo, get_storage

from ..choices import ErrorCode


# Slotted: an import builds one of each per line, and slots make that and every field read cheaper.
@dataclass(slots=True)
class AnnSpec:
    """One annotation as read from a file; geometry in pixels (see `Annotation`)."""

    label: str = ""
    type: str = ""
    shape: str = "none"
    geometry: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)
    ref_id: str = ""
    source: str = "human"
    annotated_by: str = "human"
    confidence: float | None = None
    hard: bool = False
    hard_coefficient: float | None = None
    created_at: dt.datetime | None = None
    label_kind: str = "class"


@dataclass(slots=True)
class ImportItem:
    """One sample to create. `origin` and `line` are what the error report names."""

    origin: str
    line: int | None = None
    src: StoragePath | None = None  # the file to import (None: inline text)
    size: int | None = None  # bytes, when the listing already knows
    rel: str = ""  # path below the import root: where a copy lands under the dataset's input folder
    text: str = ""
    dedupe: str = ""  # identity for idempotent re-imports when it is not the file itself
    annotations: list[AnnSpec] = field(default_factory=list)
    usage: str = ""
    hard: bool = False
    hard_coefficient: float | None = None
    properties: dict = field(default_factory=dict)
    sample_id: str = ""
    width: int | None = None  # declared by an annotation file (VOC <size>, COCO image)
    height: int | None = None
    probe: bool = True  # decode and thumbnail now; False defers it to a background thumbnails run


class Problem(Exception):
    """A per-item problem raised inside a reader helper; carries the error code."""

    def __init__(self, code: str, message: str, line: int | None = None):
        super().__init__(message)
        self.code, self.message, self.line = code, message, line


def extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > name.rfind("/") else ""


def relative(root: StoragePath, info_key: str) -> str:
    """Key of a walked file relative to the walked folder."""
    return info_key[len(root.key) + 1:] if root.key else info_key


def walk(root: StoragePath) -> Iterator[tuple[StoragePath, ObjectInfo, str]]:
    """(path, info, relative key) for every file below `root`, in key order."""
    for info in get_storage().walk(root):
        yield StoragePath(root.bucket, info.key), info, relative(root, info.key)


def check_size(size: int, limit: int) -> int:
    """`size` (bytes) when it is within `limit`, else Problem(FILE_TOO_LARGE)."""
    if size > limit:
        raise Problem(ErrorCode.FILE_TOO_LARGE, f"The file has {size} bytes; at most {limit} are allowed.")
    return size


def read_bytes(path: StoragePath, *, limit: int | None = None) -> bytes:
    """The whole file; Problem(FILE_TOO_LARGE) past `limit`, Problem(MISSING_SOURCE) when absent."""
    storage = get_storage()
    local = storage.local_path(path)
    try:
        if local is not None:
            size = local.stat().st_size if local.is_file() else None
            if size is None:
                raise NotFound(f"{path.uri} does not exist.")
            if limit is not None:
                check_size(size, limit)
            return local.read_bytes()
        if limit is not None:
            check_size(storage.stat(path).size, limit)
        with storage.open(path) as fh:
            return fh.read()
    except NotFound:
        raise Problem(ErrorCode.MISSING_SOURCE, f"{path.uri} does not exist.") from None


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode UTF-8 (with or without BOM), else GBK; Problem(ENCODING_ERROR) when neither fits."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gbk"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise Problem(ErrorCode.ENCODING_ERROR, "The file is neither UTF-8 nor GBK text.")


def read_label_file(path: StoragePath) -> str:
    """A labeling-result file (XML, JSON, txt), decoded, within the labeling-result size limit."""
    return decode_text(read_bytes(path, limit=settings.ATELIER_DATASET_MAX_LABEL_FILE_BYTES))[0]


def text_lines(text: str, origin: str) -> Iterator[tuple[int, str]]:
    """(line number, line) pairs; over-long lines raise nothing here but are reported by the caller."""
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, line


def check_line(line: str, number: int) -> None:
    limit = settings.ATELIER_DATASET_MAX_TEXT_LINE_BYTES
    size = len(line.encode("utf-8"))
    if size > limit:
        raise Problem(ErrorCode.LINE_TOO_LONG, f"Line {number} has {size} bytes; at most {limit} are allowed.",
                      line=number)


def resolve_source(source: str, base: StoragePath) -> StoragePath:
    """Map a manifest/export source to a storage path.

    Accepted: storage://b/k, s3://b/k and obs://b/k (aliases), file:///b/k and absolute /b/k
    (the first segment is the bucket), and paths relative to `base` (the manifest's folder).
    """
    raw = source.strip()
    for scheme in ("s3://", "obs://"):
        if raw.startswith(scheme):
            raw = "storage://" + raw[len(scheme):]
            break
    if raw.startswith("file://"):
        raw = raw[len("file://"):]
    if raw.startswith("storage://"):
        return parse(raw)
    if raw.startswith("/"):
        return parse("storage://" + raw.lstrip("/"))
    if "://" in raw:
        raise ValidationError(f'The source scheme of "{source[:80]}" is not supported.')
    parts = [p for p in base.key.split("/") if p]
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ValidationError(f'"{source[:80]}" leaves the bucket.')
            parts.pop()
            continue
        parts.append(part)
    return parse(f"storage://{base.bucket}/{'/'.join(parts)}")
