"""Plotly figures of an edge node's monitoring (CPU, memory, disk and GPU use over time), in the
shape the service Monitoring tab uses ([{"key", "title", "figure"}]), drawn by
static/deployment/monitoring.js."""
from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
from django.conf import settings
from django.utils import timezone

from ..charts import COLORS, _figure

# The range select of the node page: key → hours. Samples come every ATELIER_EDGE_SAMPLE_SECONDS.
RANGES = {"24h": 24, "12h": 12, "3h": 3}
DEFAULT_RANGE = "24h"


def node_figures(node, *, hours: int = RANGES[DEFAULT_RANGE]) -> list[dict]:
    """The node's samples of the last `hours` as charts; GPU charts only when a sample reported GPUs."""
    end = timezone.now()
    start = end - timedelta(hours=hours)
    samples = list(node.samples.filter(at__gte=start).order_by("at"))
    x = [s.at.isoformat() for s in samples]
    empty = f"No samples yet: the agent sends one every {max(1, settings.ATELIER_EDGE_SAMPLE_SECONDS // 60)} min"

    def line(name, values, i):
        return go.Scatter(x=x, y=values, name=name, mode="lines+markers", marker=dict(size=4),
                          line=dict(color=COLORS[i % len(COLORS)], width=2))

    charts = [{"key": key, "title": title, "figure": _figure(
        title, "%", [line(title, [getattr(s, field) for s in samples], i)] if samples else [], empty=empty)}
        for i, (key, title, field) in enumerate((("cpu", "CPU usage", "cpu_percent"),
                                                  ("memory", "Memory usage", "memory_percent"),
                                                  ("disk", "Disk usage", "disk_percent")))]
    gpus = sorted({g.get("index") for s in samples for g in (s.gpus or []) if isinstance(g, dict)},
                  key=lambda v: (v is None, v))
    for key, title, field in (("gpu_util", "GPU usage", "util"), ("gpu_memory", "GPU memory usage", "memory")):
        if not gpus:
            break
        traces = []
        for i, index in enumerate(gpus):
            by_time = {s.at.isoformat(): g.get(field) for s in samples for g in (s.gpus or [])
                       if isinstance(g, dict) and g.get("index") == index}
            traces.append(go.Scatter(x=x, y=[by_time.get(at) for at in x], name=f"GPU {index}", mode="lines",
                                     connectgaps=False, line=dict(color=COLORS[i % len(COLORS)], width=2)))
        charts.append({"key": key, "title": title, "figure": _figure(title, "%", traces, empty=empty)})
    # The whole chosen window on the x axis: with a few samples plotly would otherwise zoom in on
    # them and label the axis in milliseconds.
    for chart in charts:
        chart["figure"]["layout"].setdefault("xaxis", {}).update(
            type="date", range=[start.isoformat(), end.isoformat()])
    return charts


def node_accelerators(node, *, hours: int = RANGES[DEFAULT_RANGE]) -> dict:
    """{"gpus": GPU indexes the node's recent samples reported, "npus": []} for the page's notes in
    place of empty charts. The agent reads GPUs with nvidia-smi and reads no NPU metrics, so a node
    never reports NPUs and the page says so rather than drawing an empty NPU chart."""
    since = timezone.now() - timedelta(hours=hours)
    gpus = {g.get("index") for gpus in node.samples.filter(at__gte=since).values_list("gpus", flat=True)
            for g in (gpus or []) if isinstance(g, dict)}
    return {"gpus": sorted(gpus, key=lambda v: (v is None, v)), "npus": []}
