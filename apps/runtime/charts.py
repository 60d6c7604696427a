"""Plotly figures of the Resources pages, built here and drawn by plotly.js in the browser.

Figures travel as plain JSON (`plotly.io.to_json`), so the page's scripts only call
`Plotly.react` and extend traces with live points.
"""
from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio

# The console's palette for series (matches the accent and status colours of atelier.css).
COLORS = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#db2777", "#475569"]
LAYOUT = dict(
    margin=dict(l=48, r=16, t=36, b=36), height=260, hovermode="x unified",
    paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font=dict(size=12),
    legend=dict(orientation="h", y=-0.2),
)


def _plain(fig: go.Figure) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def metric_figure(name: str, points: list[tuple[int, float]], index: int = 0) -> dict:
    """One metric of a run: value by step."""
    fig = go.Figure(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                               name=name, line=dict(color=COLORS[index % len(COLORS)], width=2),
                               marker=dict(size=4)))
    fig.update_layout(title=dict(text=name, x=0, font=dict(size=14)), xaxis_title="step", **LAYOUT)
    return _plain(fig)


def metric_figures(series: dict[str, list[tuple[int, float]]]) -> list[dict]:
    """[{"name", "figure"}] in name order, one chart per metric (scales differ: loss vs accuracy)."""
    return [{"name": name, "figure": metric_figure(name, points, i)} for i, (name, points) in enumerate(series.items())]


# The monitoring charts: (sample attribute, title, y-axis title).
NODE_SERIES = [
    ("cpu_percent", "CPU use", "% of all cores"),
    ("memory_percent", "Memory use", "% of RAM"),
    ("gpu_percent", "GPU utilisation", "% (mean over GPUs)"),
    ("gpu_memory_percent", "GPU memory", "% (mean over GPUs)"),
]


def node_figures(samples_by_node) -> list[dict]:
    """One chart per resource with a line per worker node: [{"key", "title", "figure"}]."""
    charts = []
    for attr, title, unit in NODE_SERIES:
        fig = go.Figure()
        for i, (node, samples) in enumerate(samples_by_node):
            points = [(s.at.isoformat(), getattr(s, attr)) for s in samples if getattr(s, attr) is not None]
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[round(p[1], 1) for p in points], mode="lines",
                                     name=node.hostname, line=dict(color=COLORS[i % len(COLORS)], width=2)))
        fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), yaxis=dict(title=unit, range=[0, 100]),
                          **LAYOUT)
        charts.append({"key": attr, "title": title, "figure": _plain(fig)})
    return charts
