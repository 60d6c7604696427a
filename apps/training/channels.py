"""Input and output channels: definitions on algorithms, storage paths on jobs (spec seed-05 §1.3, §2.5).

A channel named `data_url` is staged to `inputs/data_url_0/` (outputs: `outputs/train_url_0/`)
in the run directory and reaches the code as `--data_url=<that path>` or as the environment
variable `data_url`, per its acquisition.
"""
from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from .choices import Acquisition, DataSplit, InputSource

# Channel names become argument and environment variable names, and run-engine channel names.
CHANNEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,61}$")
MAX_CHANNELS = 16
DATA_FORMATS = ("Default", "CarbonData")


def _clean_common(item: Any, field: str, index: int, seen: set[str]) -> dict:
    if not isinstance(item, dict):
        raise ValidationError({field: [f"Channel {index}: give an object with a name."]})
    name = str(item.get("name") or "").strip()
    if not CHANNEL_RE.match(name):
        raise ValidationError({field: [f'Channel {index}: "{name}" is not a valid parameter name (letters, digits and '
                                       f'_, not starting with a digit, at most 62).']})
    if name in seen:
        raise ValidationError({field: [f'The parameter name "{name}" is used twice.']})
    seen.add(name)
    acquisition = item.get("acquisition") or Acquisition.HYPERPARAMETER
    if acquisition not in Acquisition.values:
        raise ValidationError({field: [f"{name}: acquisition is hyperparameter or env, not {acquisition!r}."]})
    description = str(item.get("description") or "")
    if len(description) > 256:
        raise ValidationError({field: [f"{name}: the description has more than 256 characters."]})
    return {"name": name, "description": description, "acquisition": acquisition}


def definitions_clean(raw: Any, *, output: bool) -> list[dict]:
    """Validate an algorithm's input (or output) channel definitions."""
    field = "outputs" if output else "inputs"
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValidationError({field: ["Give a list of channels."]})
    if len(raw) > MAX_CHANNELS:
        raise ValidationError({field: [f"{len(raw)} channels; at most {MAX_CHANNELS}."]})
    seen: set[str] = set()
    clean = []
    for index, item in enumerate(raw, 1):
        channel = _clean_common(item, field, index, seen)
        if not output:
            channel["constraint"] = _constraint_clean(channel["name"], item.get("constraint"))
        clean.append(channel)
    return clean


def _constraint_clean(name: str, raw: Any) -> dict | None:
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, dict):
        raise ValidationError({"inputs": [f"{name}: the input constraint is an object."]})
    source = raw.get("source") or InputSource.STORAGE
    if source not in InputSource.values:
        raise ValidationError({"inputs": [f"{name}: the source is storage or dataset, not {source!r}."]})
    formats = raw.get("data_format") or []
    if not isinstance(formats, list) or any(f not in DATA_FORMATS for f in formats):
        raise ValidationError({"inputs": [f"{name}: data formats are chosen from Default and CarbonData."]})
    split = raw.get("split") or DataSplit.ANY
    if split not in DataSplit.values:
        raise ValidationError({"inputs": [f"{name}: split is any, split_only or unsplit_only."]})
    label_type = str(raw.get("label_type") or "")[:64]
    return {"source": source, "label_type": label_type, "data_format": formats, "split": split}


def local_name(name: str) -> str:
    """The run-engine channel (folder) name of the first path of parameter `name`."""
    return f"{name}_0"
