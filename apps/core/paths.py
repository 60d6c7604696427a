"""The one validator for storage paths and names a user types or uploads.

Rules (spec seed-01 §9 items 1–2): no segment containing \\ : * ? " < > |, no path
starting or ending with "." or "/", no "..", at most 1023 characters; uploaded file
names must not contain "+", a space or a tab. Bucket names follow S3's rules. Each single
name is also capped at 255 bytes, the limit of common filesystems, so a path that passes
here can always be created by the local backend.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

SCHEME = "storage://"
MAX_PATH_LENGTH = 1023
MAX_NAME_BYTES = 255
FORBIDDEN_CHARS = set('\\:*?"<>|')
UPLOAD_FORBIDDEN_CHARS = {"+": "a plus sign", " ": "a space", "\t": "a tab"}
BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Keys made only of printable ASCII segments that pass every rule below (no forbidden or control
# characters, no empty segment, no segment starting or ending with ".", at most 255 characters).
# Bulk runs validate tens of thousands of stored keys; those take this one regex match, anything
# else gets the rule-by-rule checks and their messages.
_KEY_CHARS = "".join(re.escape(chr(c)) for c in range(32, 127) if chr(c) not in '\\:*?"<>|/')
_KEY_EDGE = _KEY_CHARS.replace(re.escape("."), "")
_SEGMENT = rf"[{_KEY_EDGE}](?:[{_KEY_CHARS}]{{0,253}}[{_KEY_EDGE}])?"
SAFE_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


@dataclass(frozen=True)
class StoragePath:
    """A validated `storage://<bucket>/<key>` location; `key` is "" for the bucket root."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"

    def child(self, name: str) -> "StoragePath":
        return StoragePath(self.bucket, f"{self.key}/{name}" if self.key else name)

    @property
    def parent(self) -> "StoragePath":
        return StoragePath(self.bucket, self.key.rpartition("/")[0])

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2] if self.key else self.bucket

    def is_within(self, other: "StoragePath") -> bool:
        """True when self is `other` or lies below it (used to refuse output-inside-input)."""
        if self.bucket != other.bucket:
            return False
        return not other.key or self.key == other.key or self.key.startswith(other.key + "/")

    def __str__(self) -> str:
        return self.uri


def validate_bucket_name(name: str) -> str:
    """3–63 characters: lowercase letters, digits and hyphens, starting and ending alphanumeric."""
    if not BUCKET_NAME_RE.match(name or ""):
        raise ValidationError(
            "A bucket name has 3–63 characters: lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit.",
            code="bucket_name",
        )
    return name


def validate_key(key: str, *, allow_empty: bool = True) -> str:
    """Validate a key (folder or object path inside a bucket) and return it unchanged."""
    if key == "":
        if allow_empty:
            return key
        raise ValidationError("The path is empty.", code="empty")
    if len(key) > MAX_PATH_LENGTH:
        raise ValidationError(
            f"The path has {len(key)} characters; at most {MAX_PATH_LENGTH} are allowed.", code="too_long"
        )
    if SAFE_KEY_RE.fullmatch(key):
        return key
    # Traversal first: "../etc" breaks the edge rule too, but this message says what is wrong.
    if any(segment in {".", ".."} for segment in key.split("/")):
        raise ValidationError('The path must not contain "." or ".." folders.', code="traversal")
    if key[0] in "./" or key[-1] in "./":
        raise ValidationError('A path must not start or end with "." or "/".', code="edge")
    bad = sorted(FORBIDDEN_CHARS.intersection(key))
    if bad:
        raise ValidationError(
            f"The path contains {' '.join(bad)}; these characters are not allowed: \\ : * ? \" < > |",
            code="forbidden_char",
        )
    for segment in key.split("/"):
        if segment == "":
            raise ValidationError("The path contains an empty folder name (//).", code="empty_segment")
        if segment in {".", ".."}:
            raise ValidationError('The path must not contain "." or ".." folders.', code="traversal")
        if segment[0] == "." or segment[-1] == ".":
            raise ValidationError(f'The name "{segment}" must not start or end with ".".', code="edge")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in segment):
            raise ValidationError("The path contains control characters.", code="control_char")
        size = len(segment.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            raise ValidationError(
                f'The name "{segment[:40]}…" is {size} bytes long; one folder or file name may have at most '
                f"{MAX_NAME_BYTES}.",
                code="name_too_long",
            )
    return key


def validate_name(name: str) -> str:
    """A single folder or file name: the key rules plus no "/"."""
    if "/" in name:
        raise ValidationError('A name must not contain "/".', code="slash")
    return validate_key(name, allow_empty=False)


def validate_upload_name(name: str) -> str:
    """File names arriving by upload or sync: the name rules plus no "+", space or tab."""
    for ch, words in UPLOAD_FORBIDDEN_CHARS.items():
        if ch in name:
            raise ValidationError(f'The file name "{name}" contains {words}; rename the file and try again.',
                                  code="upload_name")
    try:
        return validate_name(name)
    except ValidationError as exc:
        # Name the file: in a batch upload the generic rule alone does not say which one failed.
        raise ValidationError(f'The file name "{name}" is not allowed: {exc.messages[0]}', code=exc.code) from None


def parse(uri: str) -> StoragePath:
    """Parse `storage://bucket/key` (or `bucket/key`) into a validated StoragePath."""
    raw = (uri or "").strip()
    if raw.startswith(SCHEME):
        raw = raw[len(SCHEME):]
    elif "://" in raw:
        raise ValidationError(f'Paths start with "{SCHEME}".', code="scheme")
    if raw.startswith("/"):
        raise ValidationError("Absolute paths are not allowed; start with a bucket name.", code="absolute")
    if len(raw) > MAX_PATH_LENGTH:
        raise ValidationError(
            f"The path has {len(raw)} characters; at most {MAX_PATH_LENGTH} are allowed.", code="too_long"
        )
    bucket, _, key = raw.partition("/")
    key = key.rstrip("/")
    validate_bucket_name(bucket)
    validate_key(key)
    return StoragePath(bucket, key)
