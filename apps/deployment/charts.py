"""Plotly figures of a service's monitoring tab, built here and drawn by plotly.js in the browser.

Figures travel as plain JSON, so static/deployment/monitoring.js only calls `Plotly.react`.
"""
from __future__ import annotations

import json

import plotly.graph_objects as go
from django.conf import settings
import plotly.io as pio

from .monitoring import call_series, resource_series

COLORS = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#db2777", "#475569"]
LAYOUT = dict(
    margin=dict(l=48, r=16, t=36, b=36), height=260, hovermode="x unified",
    paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font=dict(size=12),
    legend=dict(orientation="h", y=-0.2),
)


def _plain(fig: go.Figure) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def _figure(title: str, yaxis: str, traces: list, *, empty: str = "No data in this time range") -> dict:
    fig = go.Figure(traces)
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), yaxis=dict(title=yaxis, rangemode="tozero"),
                      **LAYOUT)
    if not traces or not any(any(v for v in (t.y or []) if v) for t in traces):
        fig.update_layout(annotations=[dict(text=empty, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                                            font=dict(size=13, color="#667085"))],
                          xaxis=dict(showticklabels=bool(traces)), yaxis=dict(showticklabels=bool(traces)))
    return _plain(fig)


def monitoring_figures(service, *, minutes: int = 60, calls: bool = True) -> list[dict]:
    """[{"key", "title", "figure"}]: calls, failures and latency per version; CPU and memory per instance.

    WebSocket services get no call charts (their frames are not counted, seed-06 §5.7).
    """
    charts = []
    if calls:
        series = call_series(service, minutes=minutes)
        x = [at.isoformat() for at in series["minutes"]]
        versions = sorted(series["versions"].items())
        charts.append({"key": "calls", "title": "Calls per minute", "figure": _figure(
            "Calls per minute", "calls/min",
            [go.Bar(x=x, y=data["success"], name=f"{label} · success", marker_color=COLORS[i % len(COLORS)])
             for i, (label, data) in enumerate(versions)]
            + [go.Bar(x=x, y=data["failed"], name=f"{label} · failed", marker_color="#dc2626", opacity=0.6)
               for label, data in versions if any(data["failed"])])})
        charts[-1]["figure"]["layout"]["barmode"] = "stack"
        charts.append({"key": "latency", "title": "Latency", "figure": _figure(
            "Latency (mean and 95th percentile)", "ms",
            [go.Scatter(x=x, y=data["latency_ms"], name=f"{label} · mean", mode="lines+markers", connectgaps=False,
                        line=dict(color=COLORS[i % len(COLORS)], width=2))
             for i, (label, data) in enumerate(versions)]
            + [go.Scatter(x=x, y=data["p95_ms"], name=f"{label} · p95", mode="lines", connectgaps=False,
                          line=dict(color=COLORS[i % len(COLORS)], width=1, dash="dot"))
               for i, (label, data) in enumerate(versions)])})
    usage = resource_series(service, minutes=minutes)
    for key, title in (("cpu_usage", "CPU usage"), ("mem_usage", "Memory usage"), ("gpu_util", "GPU usage"),
                       ("gpu_mem_usage", "GPU memory usage")):
        if key.startswith("gpu") and not usage[key]:
            continue  # no instance has a GPU
        traces = [go.Scatter(x=[t.isoformat() for t, _v in points], y=[v for _t, v in points], name=label,
                             mode="lines", line=dict(color=COLORS[i % len(COLORS)], width=2))
                  for i, (label, points) in enumerate(sorted(usage[key].items()))]
        charts.append({"key": key, "title": title, "figure": _figure(
            title, "%", traces, empty=f"No samples yet: instances report every {settings.ATELIER_DEPLOYMENT_METRIC_SECONDS} s")})
    return charts
