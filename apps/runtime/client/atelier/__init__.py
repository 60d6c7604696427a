"""Helpers for code running inside an Atelier run (the engine puts this package on PYTHONPATH).

    from atelier import log_metric
    log_metric("loss", 0.25, step=10)

Each call prints one metric line on standard output, which the worker turns into a stored
metric and a live chart point:

    ATELIER_METRIC {"name": "loss", "value": 0.25, "step": 10}

`name`: 1–100 characters; `value`: a finite number; `step`: a whole number >= 0, or left out
to continue from the last step of that name (0 for the first). Any program can print the
same line itself; this module only saves writing it by hand. Standard library only.

    from atelier import log_event
    log_event("Dataset cached", seconds=12.5)

prints an event line, ``ATELIER_EVENT {"message": "Dataset cached", "seconds": 12.5}``, which
becomes an event of the run (`[worker-0] [耗时: 13 秒] Dataset cached (took 13 s)` on a training
job's Events tab); see apps/runtime/runevents.py for the rules.
"""
from __future__ import annotations

import json
import math
import os
import sys

__all__ = ["log_metric", "log_metrics", "log_event", "restart_count", "METRIC_PREFIX", "EVENT_PREFIX"]

METRIC_PREFIX = "ATELIER_METRIC "
EVENT_PREFIX = "ATELIER_EVENT "


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Report one value of metric `name` (at `step`, if given)."""
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise ValueError("metric name must be text of 1-100 characters")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"metric {name!r}: value must be a finite number, not {value!r}")
    record: dict = {"name": name, "value": float(value)}
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"metric {name!r}: step must be a whole number >= 0, not {step!r}")
        record["step"] = step
    # One write with the newline, flushed, so lines from threads never interleave mid-line.
    sys.stdout.write(METRIC_PREFIX + json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log_metrics(values: dict[str, float], step: int | None = None) -> None:
    """Report several metrics at the same step."""
    for name, value in values.items():
        log_metric(name, value, step)


def log_event(message: str, *, seconds: float | None = None, level: str = "info") -> None:
    """Record a step of the run as an event (`level` info, warning or error; `seconds` its duration)."""
    if not isinstance(message, str) or not message.strip():
        raise ValueError("event message must be non-empty text")
    if level not in ("info", "warning", "error"):
        raise ValueError(f"event level must be info, warning or error, not {level!r}")
    record: dict = {"message": message, "level": level}
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds < 0:
            raise ValueError(f"event seconds must be a number >= 0, not {seconds!r}")
        record["seconds"] = seconds
    sys.stdout.write(EVENT_PREFIX + json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def restart_count() -> int:
    """How many times this run was restarted (0 on the first attempt): resume from a checkpoint if > 0."""
    return int(os.environ.get("ATELIER_RESTART_COUNT", "0") or 0)
