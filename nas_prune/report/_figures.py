"""The report's plotly figures, one function per figure, each from plain data."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

__all__ = [
    "pareto_figure",
    "widths_figure",
    "gates_figure",
    "latency_check_figure",
    "distill_figure",
    "pareto_front",
]

_LAYOUT = dict(template="plotly_white", height=440, margin=dict(l=60, r=30, t=60, b=60))
_FEASIBLE, _INFEASIBLE, _FRONT, _CHOSEN = "#2b7bba", "#c8c8c8", "#e4572e", "#17a34a"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower latency and higher accuracy), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_figure(trials: Sequence[Mapping[str, Any]], *, budget_ms: float | None,
                  chosen: Mapping[str, Any] | None = None, teacher: Mapping[str, Any] | None = None) -> go.Figure:
    """Accuracy vs predicted latency of every searched candidate, the Pareto front and the budget."""
    fig = go.Figure()
    feas = [t for t in trials if t.get("feasible", True)]
    infeas = [t for t in trials if not t.get("feasible", True)]

    def hover(t: Mapping[str, Any]) -> str:
        return f"trial {t.get('number')}<br>{t.get('flops', 0) / 1e6:.2f} MFLOPs<br>{t.get('params', 0) / 1e3:.0f} k params"

    if infeas:
        fig.add_scatter(x=[t["latency_ms"] for t in infeas], y=[100 * t["accuracy"] for t in infeas],
                        mode="markers", name="over budget", marker=dict(color=_INFEASIBLE, size=7),
                        text=[hover(t) for t in infeas], hoverinfo="x+y+text")
    fig.add_scatter(x=[t["latency_ms"] for t in feas], y=[100 * t["accuracy"] for t in feas], mode="markers",
                    name="within budget", marker=dict(color=_FEASIBLE, size=8, opacity=0.75),
                    text=[hover(t) for t in feas], hoverinfo="x+y+text")
    pts = [(t["latency_ms"], t["accuracy"]) for t in trials]
    front = [trials[i] for i in pareto_front(pts)]
    fig.add_scatter(x=[t["latency_ms"] for t in front], y=[100 * t["accuracy"] for t in front],
                    mode="lines+markers", name="Pareto front", line=dict(color=_FRONT, width=2, shape="hv"),
                    marker=dict(size=9, color=_FRONT))
    if chosen:
        fig.add_scatter(x=[chosen["latency_ms"]], y=[100 * chosen["accuracy"]], mode="markers", name="chosen",
                        marker=dict(symbol="star", size=18, color=_CHOSEN, line=dict(width=1, color="black")))
    if budget_ms is not None:
        fig.add_vline(x=budget_ms, line=dict(color="black", dash="dash"),
                      annotation_text=f"budget {budget_ms:.3f} ms", annotation_position="top left")
    if teacher and teacher.get("latency_ms"):
        fig.add_vline(x=teacher["latency_ms"], line=dict(color="#888", dash="dot"),
                      annotation_text="unpruned", annotation_position="bottom right")
    fig.update_layout(title="Search: PruningNet accuracy vs predicted latency", xaxis_title="predicted latency (ms)",
                      yaxis_title="PruningNet accuracy (%)", legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return fig


def widths_figure(genes: Sequence[Mapping[str, Any]], chosen: Mapping[str, int]) -> go.Figure:
    """Chosen channels per gene against the original widths (genes in network order)."""
    names = [g["name"] for g in genes]
    full = [g["width"] for g in genes]
    kept = [chosen.get(g["name"], g["width"]) for g in genes]
    ratio = [k / f for k, f in zip(kept, full)]
    fig = go.Figure()
    fig.add_bar(x=names, y=full, name="original", marker_color="#d9d9d9")
    fig.add_bar(x=names, y=kept, name="chosen", marker_color=_FEASIBLE,
                text=[f"{100 * r:.0f}%" for r in ratio], textposition="outside", cliponaxis=False)
    fig.update_layout(title="Channels per gene: chosen vs original", barmode="overlay", xaxis_title="gene (network order)",
                      yaxis_title="channels", xaxis=dict(tickangle=-45), **{**_LAYOUT, "height": 480})
    return fig


def gates_figure(values: Mapping[str, Sequence[float]]) -> go.Figure:
    """Histogram of learned gate values, one trace per target ratio."""
    fig = go.Figure()
    for label, vals in values.items():
        fig.add_histogram(x=list(vals), name=f"r = {label}", opacity=0.6, xbins=dict(start=0, end=1.0001, size=0.04))
    fig.update_layout(title="Channel gates learned from random weights", barmode="overlay",
                      xaxis_title="gate value (0 = pruned)", yaxis_title="channels", **_LAYOUT)
    return fig


def latency_check_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Predicted vs measured latency of validated architectures, with the +-10% band."""
    xs = [r["predicted_ms"] for r in rows]
    ys = [r["measured_ms"] for r in rows]
    lo, hi = min(xs + ys) * 0.9, max(xs + ys) * 1.1
    fig = go.Figure()
    fig.add_scatter(x=[lo, hi], y=[lo * 1.1, hi * 1.1], mode="lines", line=dict(color="#bbb", dash="dot"), name="+10%")
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#555"), name="exact")
    fig.add_scatter(x=[lo, hi], y=[lo * 0.9, hi * 0.9], mode="lines", line=dict(color="#bbb", dash="dot"), name="-10%")
    fig.add_scatter(x=xs, y=ys, mode="markers", name="architecture", marker=dict(size=9, color=_FEASIBLE),
                    text=[r.get("label", "") for r in rows])
    fig.update_layout(title="Latency table: predicted vs measured", xaxis_title="predicted (ms)",
                      yaxis_title="measured (ms)", **_LAYOUT)
    return fig


def distill_figure(curves: Mapping[str, Sequence[Mapping[str, float]]], *, teacher_accuracy: float | None = None) -> go.Figure:
    """Validation accuracy per epoch of each distillation run (and the teacher's as a line)."""
    fig = go.Figure()
    for label, curve in curves.items():
        pts = [c for c in curve if "val_accuracy" in c]
        fig.add_scatter(x=[c["epoch"] for c in pts], y=[100 * c["val_accuracy"] for c in pts],
                        mode="lines+markers", name=label)
    if teacher_accuracy is not None:
        fig.add_hline(y=100 * teacher_accuracy, line=dict(color="#888", dash="dot"),
                      annotation_text="teacher", annotation_position="bottom right")
    fig.update_layout(title="Distillation: student validation accuracy", xaxis_title="epoch",
                      yaxis_title="accuracy (%)", **_LAYOUT)
    return fig
