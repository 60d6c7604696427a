"""Pipeline events printed by the code inside a run, recorded as events of the run.

A line on stdout/stderr of the form

    ATELIER_EVENT {"message": "Python dependencies installed, file: requirements.txt", "seconds": 3.2}

becomes an event of the run, prefixed with the node (`[worker-0]`) and, when `seconds` is given,
the step's duration in the ModelArts wording (`[耗时: 3 秒]`) with its English equivalent. The
training launcher uses it for the per-node steps (pre-check, code, dependencies, pre-start hook)
so they appear on the Events tab and not only in the log. Optional keys: `"level"` (info,
warning, error), `"exit_code"`, and `"runtime_clock"`: `"hold"` (preparation starts: the
maximum runtime does not run) then `"start"` (preparation is over: the maximum runtime counts
from here). The training launcher holds the clock before its pre-check and starts it when the
user's code starts. Each is honoured once per attempt and never after "start", and a hold ends
by itself after the maximum runtime, so no output can stretch a run beyond twice its limit.
In the log, the line is replaced by the readable `[atelier] …` form of the same text (a
platform line the viewer can hide).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

EVENT_PREFIX = "ATELIER_EVENT "
MAX_MESSAGE = 400
# A run that prints events in a loop must not flood the events table: later ones stay in the log only.
MAX_EVENTS_PER_ATTEMPT = 200
LEVELS = ("info", "warning", "error")


class EventLineError(ValueError):
    """The line starts with the event prefix but breaks the format; the message says how."""


@dataclass(frozen=True)
class RunEventLine:
    message: str
    level: str = "info"
    seconds: float | None = None
    exit_code: int | None = None
    clock: str = ""  # "", "hold" or "start"

    @property
    def text(self) -> str:
        """The event text without the node prefix: `[耗时: 3 秒] <message> (3 s)` or just the message."""
        text = self.message
        if self.exit_code is not None:
            text = f"{text}, exit code {self.exit_code}"
        if self.seconds is None:
            return text
        whole = int(self.seconds + 0.5)  # half up: 12.5 s reads "13 秒", as people round
        return f"[耗时: {whole} 秒] {text} (took {whole} s)"


def event_line_parse(line: str) -> RunEventLine | None:
    """The event on `line`, None when it is not an event line, EventLineError when malformed."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        record = json.loads(line[len(EVENT_PREFIX):])
    except ValueError:
        raise EventLineError("the text after ATELIER_EVENT is not valid JSON") from None
    if not isinstance(record, dict):
        raise EventLineError("the text after ATELIER_EVENT must be a JSON object")
    message = record.get("message")
    if not isinstance(message, str) or not message.strip():
        raise EventLineError('"message" must be non-empty text')
    message = " ".join(message.split())[:MAX_MESSAGE]
    level = record.get("level", "info")
    if level not in LEVELS:
        raise EventLineError(f'"level" must be one of {", ".join(LEVELS)}')
    seconds = record.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not math.isfinite(seconds) or seconds < 0):
        raise EventLineError('"seconds" must be a number >= 0')
    exit_code = record.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
        raise EventLineError('"exit_code" must be a whole number')
    clock = record.get("runtime_clock") or ""
    if clock not in ("", "hold", "start"):
        raise EventLineError('"runtime_clock" must be "hold" or "start"')
    return RunEventLine(message=message, level=level, seconds=seconds, exit_code=exit_code, clock=clock)
