"""Run logs: the worker appends lines to the run's log file and streams them; readers get them back.

Every line has a sequence number: its 1-based line number in the log file. The worker writes
a batch to the file (flushed) *before* publishing it to the channel group
`runtime.run.<pk>` as ``{"kind": "log", "first": <seq of the first line>, "lines": [...]}``.
A viewer that joins the group first and reads the file second therefore misses nothing:
a line published before it joined is already in the file. It drops live lines it already
has (seq ≤ what it read) and fills a gap (a batch the channel layer dropped) from the file.

When the storage backend is not a local directory (S3), the worker keeps the file in the run
directory, uploads it every ATELIER_RUNTIME_UPLOAD_SECONDS and at the end, and mirrors the
batches into a Redis stream so readers can serve the lines the upload has not caught up with.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings

from apps.core.paths import StoragePath, parse
from apps.core.storage import NotFound, get_storage

logger = logging.getLogger(__name__)

# A published batch carries at most this many lines / bytes, so one channel message stays small.
BATCH_LINES = 1000
BATCH_BYTES = 256 * 1024
# A longer line is cut into pieces of this many characters (each its own log line).
MAX_LINE_CHARS = 16 * 1024
# Redis stream entries kept per run while its log is uploaded periodically (batches, not lines).
TAIL_ENTRIES = 5000
TRUNCATION_NOTICE = "[atelier] The log reached its size limit of {cap}; further output of this run is not kept."


def human_bytes(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.4g} {unit}"
        size /= 1024
    return f"{size} bytes"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _tail_key(run_id: int) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:runtime:logtail:{run_id}"


class _Prefix:
    """The first `size` bytes of a file object, as a stream (a snapshot of a growing log)."""

    def __init__(self, fh, size: int):
        self.fh, self.left = fh, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.fh.read(self.left if n is None or n < 0 else min(n, self.left))
        self.left -= len(data)
        return data


def _count_complete_lines(path: Path) -> tuple[int, int, bool]:
    """(complete lines, size in bytes, ends with a newline) of a file; a missing file is empty."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0, 0, True
    lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines, size, last == b"\n"


class LogWriter:
    """Worker side of one run's log: numbering, the size cap, the file and the live stream."""

    def __init__(self, run, *, publisher, run_dir: Path):
        self.run = run
        self.publisher = publisher
        self.storage_path = parse(run.log_uri)
        storage = get_storage()
        direct = storage.local_path(self.storage_path)
        self.direct = direct is not None
        if self.direct:
            self.path = direct
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self.path = run_dir / ".atelier" / "run.log"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:  # continue the log of an earlier attempt that ran elsewhere
                storage.download_to(self.storage_path, self.path)
            except (NotFound, OSError, Exception):  # noqa: B014 - S3 raises botocore errors
                self.path.write_bytes(b"")
        self.seq, self.bytes, complete = _count_complete_lines(self.path)
        self.fh = open(self.path, "ab")
        if not complete:  # an earlier writer died mid-line: end that line so numbering stays exact
            self.fh.write(b"\n")
            self.seq += 1
            self.bytes += 1
        self.cap = settings.ATELIER_RUNTIME_LOG_CAP_BYTES
        self.truncated = bool(run.log_truncated) or self.bytes >= self.cap
        self.pending: list[str] = []
        self.pending_bytes = 0
        self.dropped = 0
        self.redis = None if self.direct else _redis()
        self.uploaded_bytes = self.bytes
        self.last_upload = time.monotonic()
        self.uploader: threading.Thread | None = None

    def add(self, line: str) -> None:
        """Queue one line (without its newline); long lines are cut, lines past the cap dropped."""
        if len(line) > MAX_LINE_CHARS:
            for start in range(0, len(line), MAX_LINE_CHARS):
                self.add(line[start:start + MAX_LINE_CHARS])
            return
        if self.truncated:
            self.dropped += 1
            return
        size = (len(line) if line.isascii() else len(line.encode("utf-8", "replace"))) + 1
        notice = TRUNCATION_NOTICE.format(cap=human_bytes(self.cap))
        if self.bytes + self.pending_bytes + size + len(notice) + 1 > self.cap:
            self.pending.append(notice)
            self.pending_bytes += len(notice) + 1
            self.truncated = True
            self.dropped += 1
            return
        self.pending.append(line)
        self.pending_bytes += size

    def add_many(self, lines: list[str], *, ascii_size: int | None = None) -> None:
        """Queue many lines; `ascii_size` (their bytes with newlines, when all ASCII) skips per-line sizing."""
        if (ascii_size is not None and not self.truncated
                and self.bytes + self.pending_bytes + ascii_size + 256 <= self.cap
                and max(map(len, lines)) <= MAX_LINE_CHARS):
            self.pending.extend(lines)
            self.pending_bytes += ascii_size
            return
        for line in lines:
            self.add(line)

    @property
    def has_pending(self) -> bool:
        return bool(self.pending)

    def flush(self) -> None:
        """Append queued lines to the file, then publish them (file first: see the module docstring)."""
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        self.fh.write(("\n".join(lines) + "\n").encode("utf-8", "replace"))
        self.fh.flush()
        self.bytes += self.pending_bytes
        self.pending_bytes = 0
        first = self.seq + 1
        self.seq += len(lines)
        start = 0
        while start < len(lines):
            end, size = start, 0
            while end < len(lines) and end - start < BATCH_LINES and (size < BATCH_BYTES or end == start):
                size += len(lines[end]) + 1
                end += 1
            payload = {"kind": "log", "first": first + start, "lines": lines[start:end]}
            if self.redis is not None:
                try:
                    self.redis.xadd(_tail_key(self.run.pk), {"b": json.dumps(payload)}, maxlen=TAIL_ENTRIES,
                                    approximate=True)
                except redis.RedisError:
                    logger.warning("log tail mirror for run %s failed", self.run.pk, exc_info=True)
            self.publisher.send(payload)
            start = end

    def maybe_upload(self) -> None:
        """Upload the flushed part of the file every ATELIER_RUNTIME_UPLOAD_SECONDS, in the
        background (S3 has no append: each upload replaces the object with a longer prefix)."""
        if self.direct or self.bytes == self.uploaded_bytes:
            return
        now = time.monotonic()
        if now - self.last_upload < settings.ATELIER_RUNTIME_UPLOAD_SECONDS:
            return
        if self.uploader is not None and self.uploader.is_alive():
            return
        self.last_upload = now
        size = self.bytes  # everything up to here is whole lines already written and flushed
        self.uploader = threading.Thread(target=self._upload_prefix, args=(size,), daemon=True,
                                         name=f"log-upload-{self.run.pk}")
        self.uploader.start()

    def _upload_prefix(self, size: int) -> None:
        try:
            with open(self.path, "rb") as fh:
                get_storage().save(self.storage_path, _Prefix(fh, size))
            self.uploaded_bytes = size
        except Exception:  # the next round (or the final upload) tries again; the mirror has the lines
            logger.warning("periodic log upload of run %s failed", self.run.pk, exc_info=True)

    def upload(self) -> None:
        """Copy the whole file to storage (only when storage is not the local directory itself)."""
        if not self.direct:
            if self.uploader is not None:
                self.uploader.join()
            get_storage().upload_from(self.path, self.storage_path)

    def close(self) -> None:
        self.flush()
        self.fh.close()
        self.upload()
        if self.redis is not None:
            try:  # the uploaded file now has every line; keep the mirror briefly for late readers
                self.redis.expire(_tail_key(self.run.pk), 3600)
            except redis.RedisError:
                pass


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass
class LogSlice:
    """Lines `first` … `first + len(lines) - 1` of a run's log; `total` complete lines exist."""

    first: int
    lines: list[str]
    total: int


def open_log(run):
    """A binary file object over the run's log, or None when there is none yet."""
    path: StoragePath = parse(run.log_uri)
    storage = get_storage()
    local = storage.local_path(path)
    try:
        if local is not None:
            return open(local, "rb")
        return storage.open(path)
    except (FileNotFoundError, NotFound):
        return None
    except Exception:  # S3 object missing or unreachable: the Redis mirror may still have lines
        logger.warning("cannot open log of run %s", run.pk, exc_info=True)
        return None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def log_read(run, *, after: int | None = None, limit: int | None = None) -> LogSlice:
    """Complete lines of the run's log: those after seq `after`, or the last `limit` lines.

    `after=None` with a limit gives the latest part (what a viewer shows first); `after=k`
    gives lines k+1 … (at most `limit`). Lines still only in the Redis mirror are included.
    """
    limit = limit if limit is not None else settings.ATELIER_RUNTIME_LOG_BACKLOG_LINES
    fh = open_log(run)
    lines: list[str] = []
    total = 0
    first = 1
    if fh is not None:
        with fh:
            if after is None:
                window: list[bytes] = []
                rest = b""
                while chunk := fh.read(1 << 20):
                    parts = (rest + chunk).split(b"\n")
                    rest = parts.pop()
                    total += len(parts)
                    window.extend(parts)
                    if len(window) > limit:
                        del window[: len(window) - limit]
                first = total - len(window) + 1
                lines = [_decode(raw) for raw in window]
            else:
                rest = b""
                first = after + 1
                while chunk := fh.read(1 << 20):
                    parts = (rest + chunk).split(b"\n")
                    rest = parts.pop()
                    for raw in parts:
                        total += 1
                        if total > after and len(lines) < limit:
                            lines.append(_decode(raw))
    if not get_storage().local_path(parse(run.log_uri)):
        first, lines, total = _merge_tail(run, first, lines, total, after, limit)
    return LogSlice(first=first, lines=lines, total=total)


def _merge_tail(run, first: int, lines: list[str], total: int, after: int | None, limit: int):
    """Add the mirrored lines past the uploaded file's end (S3 storage while the run is live)."""
    try:
        entries = _redis().xrange(_tail_key(run.pk))
    except redis.RedisError:
        return first, lines, total
    extra_first, extra = None, []
    for _id, fields in entries:
        batch = json.loads(fields[b"b"])
        for offset, text in enumerate(batch["lines"]):
            seq = batch["first"] + offset
            if seq > total and (extra_first is None or seq == extra_first + len(extra)):
                extra_first = extra_first or seq
                extra.append(text)
    if not extra or extra_first != total + 1:
        return first, lines, total
    new_total = total + len(extra)
    if after is None:
        combined = (lines + extra)[-limit:]
        return new_total - len(combined) + 1, combined, new_total
    for offset, text in enumerate(extra):
        if extra_first + offset > after and len(lines) < limit:
            lines.append(text)
    return (after + 1), lines, new_total
