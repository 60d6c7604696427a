"""Naming and path rules of the Data section (spec §4.5, §4.2, §9.2, §12)."""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath

DATASET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
VERSION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SPEECH_LABEL_RE = re.compile(r"^[\w.\-\u4e00-\u9fff]{1,256}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# Characters the output location must not contain (spec V4), on top of the storage path rules.
OUTPUT_FORBIDDEN = set("~'@$%^&*{}[];+=<> ")
MAX_LABEL_NAME = 1024

DATASET_NAME_MESSAGE = (
    "A dataset name has 1–64 characters: letters, digits, underscores or hyphens, and starts with a letter."
)
OUTPUT_INSIDE_INPUT_MESSAGE = "output location cannot be the same as or a sub-directory of the import path"


def validate_dataset_name(name: str) -> str:
    if not DATASET_NAME_RE.match(name or ""):
        raise ValidationError(DATASET_NAME_MESSAGE, code="dataset_name")
    return name


def validate_version_name(name: str) -> str:
    if not VERSION_NAME_RE.match(name or ""):
        raise ValidationError("A version name has 1–64 letters, digits, hyphens or underscores.", code="version_name")
    return name


def validate_description(text: str) -> str:
    if len(text or "") > 256:
        raise ValidationError(f"The description has {len(text)} characters; at most 256 are allowed.",
                              code="description")
    return text


def validate_label_name(name: str, *, speech: bool = False) -> str:
    """1–1024 visible characters (speech segmentation: 1–256 of letters, digits, CJK, `._-`)."""
    if speech:
        if not SPEECH_LABEL_RE.match(name or ""):
            raise ValidationError(
                f'The label "{name[:40]}" must have 1–256 characters: letters, digits, Chinese characters, ".", "_" '
                'or "-".', code="label_name")
        return name
    if not name or not name.strip():
        raise ValidationError("A label name cannot be empty.", code="label_name")
    if len(name) > MAX_LABEL_NAME:
        raise ValidationError(f"A label name has at most {MAX_LABEL_NAME} characters; this one has {len(name)}.",
                              code="label_name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValidationError(f'The label "{name[:40]}" contains control characters.', code="label_name")
    return name


def validate_color(color: str) -> str:
    if not COLOR_RE.match(color or ""):
        raise ValidationError(f'"{color}" is not a colour; write it as #rrggbb.', code="color")
    return color.lower()


def validate_output_location(output: StoragePath, input_: StoragePath | None) -> None:
    """The output folder: no special characters or spaces, and never the input folder or below it."""
    bad = sorted(OUTPUT_FORBIDDEN.intersection(output.key))
    if bad:
        shown = " ".join("space" if ch == " " else ch for ch in bad)
        raise ValidationError(
            f"The output location contains {shown}; use letters, digits, underscores, hyphens and dots only "
            "(not ~'@$%^&*{}[];+=<> or spaces).", code="output_chars")
    if input_ is not None and output.is_within(input_):
        raise ValidationError(OUTPUT_INSIDE_INPUT_MESSAGE, code="output_inside_input")
