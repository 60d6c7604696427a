"""Typed hyperparameters: definitions on algorithms, values on jobs (spec seed-05 §1.4, §17 item 4).

A definition is {"name", "type", "default", "constraint", "required", "description"}:
`type` String | Integer | Float | Boolean; `constraint` None, {"kind": "range", "min", "max"}
(numbers only, either bound may be None) or {"kind": "enum", "values": [...]}. The default must
satisfy the constraint. Values reach the code as `--name=value` text (booleans as true/false).
"""
from __future__ import annotations

import math
import re
from typing import Any

from django.core.exceptions import ValidationError

from .choices import HyperparameterType as T

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DESCRIPTION_RE = re.compile(r"^[A-Za-z0-9 _\-,.]*$")
MAX_DEFINITIONS = 100
MAX_VALUE_CHARS = 1024
# Names the platform passes itself: a hyperparameter with one of these would collide on the command line.
RESERVED = {"init_method", "rank", "world_size"}


def _fail(message: str):
    raise ValidationError(message)


def value_coerce(kind: str, raw: Any, *, label: str) -> Any:
    """`raw` (text from a form, or a JSON value) as a value of `kind`; ValidationError naming `label`."""
    if kind == T.STRING:
        if isinstance(raw, (dict, list)) or raw is None:
            _fail(f"{label}: give text.")
        text = str(raw)
        if len(text) > MAX_VALUE_CHARS or "\n" in text or "\x00" in text:
            _fail(f"{label}: text of at most {MAX_VALUE_CHARS} characters on one line.")
        return text
    if kind == T.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        _fail(f"{label}: {raw!r} is not a Boolean; use true or false.")
    if kind == T.INTEGER:
        if isinstance(raw, bool):
            _fail(f"{label}: {raw!r} is not an Integer.")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        text = str(raw).strip()
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            _fail(f"{label}: {raw!r} is not an Integer.")
        return int(text)
    if kind == T.FLOAT:
        if isinstance(raw, bool):
            _fail(f"{label}: {raw!r} is not a Float.")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            _fail(f"{label}: {raw!r} is not a Float.")
        if not math.isfinite(value):
            _fail(f"{label}: give a finite number.")
        return value
    _fail(f"{label}: unknown type {kind!r}; use String, Integer, Float or Boolean.")


def value_check(definition: dict, value: Any, *, label: str) -> Any:
    """Coerce `value` to the definition's type and check its constraint; returns the typed value."""
    typed = value_coerce(definition["type"], value, label=label)
    constraint = definition.get("constraint")
    if not constraint:
        return typed
    if constraint["kind"] == "range":
        low, high = constraint.get("min"), constraint.get("max")
        if (low is not None and typed < low) or (high is not None and typed > high):
            bounds = f"{_show(low) if low is not None else '-∞'} to {_show(high) if high is not None else '∞'}"
            _fail(f"{label}: {_show(typed)} is outside the allowed range {bounds}.")
    elif constraint["kind"] == "enum" and typed not in constraint["values"]:
        allowed = ", ".join(_show(v) for v in constraint["values"])
        _fail(f"{label}: {_show(typed)} is not one of the allowed values ({allowed}).")
    return typed


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def as_argument(value: Any) -> str:
    """The text passed on the command line."""
    return _show(value)


def definitions_clean(raw: Any) -> list[dict]:
    """Validate an algorithm's hyperparameter definitions; raise ValidationError({"hyperparameters": …})."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValidationError({"hyperparameters": ["Give a list of hyperparameter definitions."]})
    if len(raw) > MAX_DEFINITIONS:
        raise ValidationError({"hyperparameters": [f"{len(raw)} hyperparameters; at most {MAX_DEFINITIONS}."]})
    clean, seen = [], set()
    try:
        for index, item in enumerate(raw, 1):
            if not isinstance(item, dict):
                _fail(f"Hyperparameter {index}: give an object with name, type and default.")
            name = str(item.get("name") or "").strip()
            if not NAME_RE.match(name):
                _fail(f'Hyperparameter {index}: "{name}" is not a valid name (1–64 letters, digits, _ or -).')
            if name in RESERVED:
                _fail(f"Hyperparameter {name}: the platform passes --{name} itself for distributed jobs.")
            if name in seen:
                _fail(f'Hyperparameter "{name}" is defined twice.')
            seen.add(name)
            kind = item.get("type") or T.STRING
            if kind not in T.values:
                _fail(f"Hyperparameter {name}: unknown type {kind!r}; use String, Integer, Float or Boolean.")
            description = str(item.get("description") or "")
            if len(description) > 256 or not DESCRIPTION_RE.match(description):
                _fail(f"Hyperparameter {name}: the description may hold only letters, digits, spaces, "
                      f"- _ , . (at most 256 characters).")
            constraint = _constraint_clean(name, kind, item.get("constraint"))
            definition = {"name": name, "type": kind, "constraint": constraint,
                          "required": bool(item.get("required", False)), "description": description}
            default = item.get("default")
            if default in (None, "") and kind != T.STRING:
                _fail(f"Hyperparameter {name}: give a default value.")
            definition["default"] = value_check(definition, "" if default is None else default,
                                                label=f"Hyperparameter {name} default")
            clean.append(definition)
    except ValidationError as exc:
        raise ValidationError({"hyperparameters": exc.messages}) from None
    return clean


def _constraint_clean(name: str, kind: str, raw: Any) -> dict | None:
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, dict) or raw.get("kind") not in ("range", "enum"):
        _fail(f'Hyperparameter {name}: a constraint is {{"kind": "range", "min", "max"}} or '
              f'{{"kind": "enum", "values": [...]}}.')
    if raw["kind"] == "range":
        if kind not in (T.INTEGER, T.FLOAT):
            _fail(f"Hyperparameter {name}: a range only applies to Integer and Float.")
        low = None if raw.get("min") in (None, "") else value_coerce(kind, raw["min"], label=f"{name} minimum")
        high = None if raw.get("max") in (None, "") else value_coerce(kind, raw["max"], label=f"{name} maximum")
        if low is None and high is None:
            _fail(f"Hyperparameter {name}: give a minimum, a maximum or both.")
        if low is not None and high is not None and low > high:
            _fail(f"Hyperparameter {name}: the minimum {_show(low)} is above the maximum {_show(high)}.")
        return {"kind": "range", "min": low, "max": high}
    values = raw.get("values")
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    if not isinstance(values, list) or not values:
        _fail(f"Hyperparameter {name}: an enumeration needs at least one value.")
    typed = [value_coerce(kind, v, label=f"{name} allowed value") for v in values]
    return {"kind": "enum", "values": list(dict.fromkeys(typed))}


def values_clean(definitions: list[dict], given: Any) -> list[dict]:
    """A job's hyperparameters: defaults of the definitions, overridden by `given`.

    `given` maps name → value (or is a list of {"name", "value"}); a value of None removes an
    optional hyperparameter (a required one cannot be removed). Names without a definition
    are extra String hyperparameters (allowed for jobs without an algorithm definition).
    Returns [{"name", "type", "value"}] in definition order, extras after.
    """
    if given in (None, ""):
        given = {}
    if isinstance(given, list):
        try:
            given = {str(item["name"]): item.get("value") for item in given}
        except (TypeError, KeyError):
            raise ValidationError({"hyperparameters": ['Give hyperparameters as {"name": value} pairs.']}) from None
    if not isinstance(given, dict):
        raise ValidationError({"hyperparameters": ['Give hyperparameters as {"name": value} pairs.']})
    errors: list[str] = []
    out: list[dict] = []
    by_name = {d["name"]: d for d in definitions}
    for definition in definitions:
        name = definition["name"]
        if name in given and given[name] is None:
            if definition["required"]:
                errors.append(f"{name}: this hyperparameter is required and cannot be removed.")
            continue
        raw = given.get(name, definition["default"])
        try:
            out.append({"name": name, "type": definition["type"], "value": value_check(definition, raw, label=name)})
        except ValidationError as exc:
            errors.extend(exc.messages)
    for name, raw in given.items():
        if name in by_name or raw is None:
            continue
        if not NAME_RE.match(name) or name in RESERVED:
            errors.append(f'"{name}" is not a valid hyperparameter name (1–64 letters, digits, _ or -; not '
                          f'init_method, rank or world_size).')
            continue
        try:
            out.append({"name": name, "type": T.STRING, "value": value_coerce(T.STRING, raw, label=name)})
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError({"hyperparameters": errors})
    return out
