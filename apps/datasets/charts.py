"""Plotly figures of the Data section, built in Python and drawn by static/datasets/charts.js."""
from __future__ import annotations

import plotly.graph_objects as go


def _layout(fig: go.Figure, *, x_title: str, y_title: str, barmode: str = "overlay") -> dict:
    fig.update_layout(barmode=barmode, margin={"l": 48, "r": 16, "t": 16, "b": 40}, height=280,
                      xaxis_title=x_title, yaxis_title=y_title, legend={"orientation": "h", "y": -0.25},
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig.to_plotly_json()


def histogram_figure(series: dict[str, list[float]], *, x_title: str, y_title: str) -> dict:
    """Overlaid histograms, one per named series (versions compared on one axis)."""
    fig = go.Figure()
    for name, values in series.items():
        fig.add_trace(go.Histogram(x=values, name=name, opacity=0.6 if len(series) > 1 else 0.9, nbinsx=30))
    return _layout(fig, x_title=x_title, y_title=y_title)


def version_compare(versions) -> dict:
    """Samples per label for each version, side by side (the version comparison)."""
    fig = go.Figure()
    labels = sorted({name for v in versions for name in (v.stats or {}).get("labels", {})})
    for version in versions:
        counts = (version.stats or {}).get("labels", {})
        fig.add_trace(go.Bar(x=labels, y=[counts.get(name, 0) for name in labels], name=version.name))
    return _layout(fig, x_title="Label", y_title="Samples", barmode="group")
