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

The steps the engine performs itself (input staging, rendezvous, process start and end, success,
output upload) are `PipelineStep`s worded by the run's owner; see "Pipeline steps" below.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

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
        return with_duration(text, self.seconds)


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


# ---------------------------------------------------------------------------------------------
# Pipeline steps the engine itself performs on a node
# ---------------------------------------------------------------------------------------------
#
# Staging inputs, the process's end and the final output upload happen in the run engine, not in
# the code inside the run, yet an owner documents them in its own words (training: "训练输入
# (参数名称: x) 下载完成"). The engine stays generic: it describes each step as a `PipelineStep`
# (a `kind` plus parameters) and asks the run's owner for the text through a renderer that the
# owning app registers in `AppConfig.ready()` for its `owner_type`, exactly like run callbacks:
#
#     pipeline_wording_register("training.trainingjob", training_pipeline_text)
#
# A renderer returns the text (without the `[worker-N]` node prefix, which the engine adds to
# every step), "" to record no event for that step, or None to use the generic English wording
# below. Runs without an owner, or whose owner registered nothing, get the generic wording.

STEP_INPUT_STARTED = "input_started"        # channel, uri, preload (an output restored before the run)
STEP_INPUT_DONE = "input_done"              # channel, uri, preload, files, bytes, seconds
STEP_INPUT_FAILED = "input_failed"          # channel, uri, preload, error, seconds
STEP_PROCESS_ENDED = "process_ended"        # exit_code, seconds (since the process started)
STEP_OUTPUT_STARTED = "output_started"      # the final upload of all output channels begins
STEP_OUTPUT_DONE = "output_done"            # channel, uri, files, bytes (this attempt), seconds
STEP_OUTPUT_FAILED = "output_failed"        # channel, uri, error, seconds
# Status steps: their text is also the run's status event (never empty; "" from an owner means the
# generic wording), recorded with the node prefix only on multi-node runs, as the engine always did.
STEP_NODES_WAITING = "nodes_waiting"        # a multi-node run waits for its peers
STEP_NODES_READY = "nodes_ready"            # nodes, address (the master's host:port)
STEP_PROCESS_STARTED = "process_started"    # pid
STEP_SUCCEEDED = "succeeded"                # exit_code (0)
STATUS_STEP_KINDS = (STEP_NODES_WAITING, STEP_NODES_READY, STEP_PROCESS_STARTED, STEP_SUCCEEDED)
STEP_KINDS = (STEP_INPUT_STARTED, STEP_INPUT_DONE, STEP_INPUT_FAILED, STEP_PROCESS_ENDED, STEP_OUTPUT_STARTED,
              STEP_OUTPUT_DONE, STEP_OUTPUT_FAILED, *STATUS_STEP_KINDS)


@dataclass(frozen=True)
class PipelineStep:
    """One step of a node's pipeline as the engine saw it; `level` is the event level it suggests."""

    kind: str
    channel: str = ""  # the input/output folder name of the run (its `inputs`/`outputs` entry)
    uri: str = ""
    preload: bool = False
    files: int = 0
    bytes: int = 0
    seconds: float | None = None
    exit_code: int | None = None
    error: str = ""
    pid: int | None = None
    nodes: int = 0
    address: str = ""

    @property
    def level(self) -> str:
        if self.kind in (STEP_INPUT_FAILED, STEP_OUTPUT_FAILED):
            return "error"
        if self.kind == STEP_PROCESS_ENDED and self.exit_code:
            return "warning"
        return "info"


_WORDINGS: dict[str, Callable[[Any, PipelineStep], str | None]] = {}


def pipeline_wording_register(owner_type: str, render: Callable[[Any, PipelineStep], str | None]) -> None:
    """Word the pipeline steps of runs whose `owner_type` is this with `render(run, step)` (one per type)."""
    existing = _WORDINGS.get(owner_type)
    if existing is not None and existing is not render:
        raise ValueError(f"owner type {owner_type!r} already words its pipeline steps")
    _WORDINGS[owner_type] = render


def with_duration(text: str, seconds: float | None) -> str:
    """`[耗时: 3 秒] <text> (took 3 s)`, the ModelArts duration wording with its English equivalent."""
    if seconds is None:
        return text
    whole = int(seconds + 0.5)  # half up: 12.5 s reads "13 秒", as people round
    return f"[耗时: {whole} 秒] {text} (took {whole} s)"


def _count(files: int, size: int) -> str:
    from .logstream import human_bytes

    return f"{files} file{'s' if files != 1 else ''}, {human_bytes(size)}"


def pipeline_step_generic(step: PipelineStep) -> str:
    """The engine's own English wording of a step (runs whose owner words nothing)."""
    what = "output (preload)" if step.preload else "input"
    if step.kind == STEP_INPUT_STARTED:
        return f"Downloading {what} {step.channel} from {step.uri}."
    if step.kind == STEP_INPUT_DONE:
        counted = _count(step.files, step.bytes)
        return f"{what.capitalize()} {step.channel} downloaded: {counted} in {step.seconds or 0:.1f} s."
    if step.kind == STEP_INPUT_FAILED:
        return ""  # the run's failure event already says "Downloading input x from … failed: …"
    if step.kind == STEP_PROCESS_ENDED:
        return with_duration(f"Process ended, exit code {step.exit_code}", step.seconds)
    if step.kind == STEP_OUTPUT_STARTED:
        return "Uploading outputs."
    if step.kind == STEP_OUTPUT_DONE:
        return with_duration(f"Output {step.channel} uploaded: {_count(step.files, step.bytes)}", step.seconds)
    if step.kind == STEP_OUTPUT_FAILED:
        return with_duration(f"Uploading output {step.channel} failed: {step.error}", step.seconds)
    if step.kind == STEP_NODES_WAITING:
        return "Waiting for the other nodes."
    if step.kind == STEP_NODES_READY:
        return f"All {step.nodes} nodes started; master {step.address}."
    if step.kind == STEP_PROCESS_STARTED:
        return f"Process started (pid {step.pid})."
    if step.kind == STEP_SUCCEEDED:
        return "Succeeded: the process exited with code 0."
    raise ValueError(f"unknown pipeline step {step.kind!r}")


def pipeline_step_text(run, step: PipelineStep) -> str:
    """The event text of `step` of `run` (no node prefix): the owner's wording, else the generic one.

    A status step (STATUS_STEP_KINDS) always has text: it is the run's status event as well.

    A renderer that raises is logged and the generic wording is used: wording must never stop a run.
    """
    render = _WORDINGS.get(getattr(run, "owner_type", "") or "")
    if render is not None:
        try:
            text = render(run, step)
        except Exception:
            logger.exception("wording pipeline step %s of run %s failed", step.kind, getattr(run, "pk", None))
            text = None
        if text is not None and (text or step.kind not in STATUS_STEP_KINDS):
            return text
    return pipeline_step_generic(step)
