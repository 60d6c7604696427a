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


def run_usage_figure(samples, *, title: str) -> dict:
    """cpuUsage / memUsage (and gpuUtil / gpuMemUsage on GPU nodes) of one node's own processes, in % of
    its flavor. `uirevision` keeps legend toggles and zoom when the page refreshes the data."""
    fig = go.Figure()
    times = [s.at.isoformat() for s in samples]
    fig.add_trace(go.Scatter(x=times, y=[s.cpu_percent for s in samples], name="cpuUsage", mode="lines",
                             hovertemplate="%{y:.1f}% cpu<extra></extra>"))
    fig.add_trace(go.Scatter(x=times, y=[s.memory_percent for s in samples], name="memUsage", mode="lines",
                             customdata=[s.memory_mb for s in samples],
                             hovertemplate="%{y:.1f}% memory (%{customdata:.0f} MiB)<extra></extra>"))
    if any(s.gpu_percent is not None for s in samples):
        fig.add_trace(go.Scatter(x=times, y=[s.gpu_percent for s in samples], name="gpuUtil", mode="lines"))
        fig.add_trace(go.Scatter(x=times, y=[s.gpu_memory_percent for s in samples], name="gpuMemUsage",
                                 mode="lines"))
    data = _layout(fig, f"{title}: resource usage (%)", "%")
    data["layout"]["xaxis"]["title"] = {"text": "time"}
    data["layout"]["hovermode"] = "x unified"
    # Legend above the plot, right of the title: below it, it would cover the time axis' title.
    data["layout"]["legend"] = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}
    data["layout"]["margin"]["t"] = 60
    data["layout"]["uirevision"] = title
    return data
