"""Metric lines printed by runs, and the worker-side buffer that stores and streams them.

The line format (documented for users in `apps/runtime/client/atelier/__init__.py`):

    ATELIER_METRIC {"name": "loss", "value": 0.25, "step": 10}

The prefix starts the line; the rest is one JSON object. Lines that look like metrics but
are malformed stay in the log and are reported once per run as a warning event.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from django.db.models import Max
from django.utils import timezone

METRIC_PREFIX = "ATELIER_METRIC "
MAX_NAME = 100


class MetricLineError(ValueError):
    """The line starts with the metric prefix but breaks the format; the message says how."""


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    step: int | None


def metric_line_parse(line: str) -> MetricPoint | None:
    """The metric on `line`, None when the line is not a metric line, MetricLineError when malformed."""
    if not line.startswith(METRIC_PREFIX):
        return None
    try:
        record = json.loads(line[len(METRIC_PREFIX):])
    except ValueError:
        raise MetricLineError("the text after ATELIER_METRIC is not valid JSON") from None
    if not isinstance(record, dict):
        raise MetricLineError("the text after ATELIER_METRIC must be a JSON object")
    name = record.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        raise MetricLineError(f'"name" must be text of 1-{MAX_NAME} characters')
    value = record.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetricLineError(f'metric "{name}": "value" must be a finite number')
    step = record.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise MetricLineError(f'metric "{name}": "step" must be a whole number >= 0')
    return MetricPoint(name, float(value), step)


class MetricSink:
    """Collects a run's points, writes them in batches and sends them to live charts.

    Steps left out continue from the last step of that name (restarts included).
    """

    def __init__(self, run, publisher):
        from .models import Metric

        self.run = run
        self.publisher = publisher
        self.pending: list = []
        self.last_step: dict[str, int] = {}
        if run.attempt > 1:  # a first attempt has no points yet: skip the query on the start path
            for name, step in Metric.objects.filter(run=run).values_list("name").order_by().annotate(last=Max("step")):
                self.last_step[name] = step
        self.error_reported = False

    def add(self, point: MetricPoint) -> None:
        from .models import Metric

        step = point.step if point.step is not None else self.last_step.get(point.name, -1) + 1
        self.last_step[point.name] = step
        self.pending.append(Metric(run_id=self.run.pk, name=point.name, step=step, value=point.value,
                                   created_at=timezone.now()))

    def flush(self) -> None:
        from .models import Metric

        if not self.pending:
            return
        batch, self.pending = self.pending, []
        Metric.objects.bulk_create(batch, batch_size=500)  # sets ids (PostgreSQL, SQLite >= 3.35)
        self.publisher.send({"kind": "metric", "points": [metric_point_payload(m) for m in batch]})


def metric_point_payload(metric) -> dict:
    """A point as live charts receive it; `id` lets a viewer drop points it already has."""
    return {"id": metric.pk, "name": metric.name, "step": metric.step, "value": metric.value}
