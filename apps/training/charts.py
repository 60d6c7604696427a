"""Plotly figures of the training pages, built in Python and rendered by plotly.js from our static files."""
from __future__ import annotations

import plotly.graph_objects as go


def _layout(fig: go.Figure, title: str, ytitle: str = "") -> dict:
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=300, margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      xaxis_title="step", yaxis_title=ytitle, legend={"orientation": "h", "y": -0.25},
                      template="plotly_white")
    return fig.to_plotly_json()


def metric_figures(series_by_label: dict[str, dict[str, list[tuple[int, float]]]]) -> list[dict]:
    """One figure per metric name, one trace per label (a job or a node): overlaid curves."""
    names = sorted({name for series in series_by_label.values() for name in series})
    figures = []
    for name in names:
        fig = go.Figure()
        for label, series in series_by_label.items():
            points = series.get(name, [])
            fig.add_trace(go.Scatter(x=[s for s, _ in points], y=[v for _, v in points], mode="lines+markers",
                                     name=label))
        figures.append({"name": name, "figure": _layout(fig, name)})
    return figures


def usage_figure(samples) -> dict:
    """cpuUsage / memUsage / gpuUtil / gpuMemUsage of the machine that ran a node."""
    fig = go.Figure()
    times = [s.at.isoformat() for s in samples]
    fig.add_trace(go.Scatter(x=times, y=[s.cpu_percent for s in samples], name="cpuUsage"))
    fig.add_trace(go.Scatter(x=times, y=[s.memory_percent for s in samples], name="memUsage"))
    if any(s.gpu_percent is not None for s in samples):
        fig.add_trace(go.Scatter(x=times, y=[s.gpu_percent for s in samples], name="gpuUtil"))
        fig.add_trace(go.Scatter(x=times, y=[s.gpu_memory_percent for s in samples], name="gpuMemUsage"))
    data = _layout(fig, "Resource usage (%)", "%")
    data["layout"]["xaxis"]["title"] = {"text": "time"}
    return data
