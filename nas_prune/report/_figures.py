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
_STAR = dict(symbol="star", size=18, color=_CHOSEN, line=dict(width=1, color="black"))


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
    feas = [t for t in trials if t.get("feasible", True) and t.get("accuracy") is not None]
    infeas = [t for t in trials if not t.get("feasible", True)]

    def hover(t: Mapping[str, Any]) -> str:
        return f"trial {t.get('number')}<br>{t.get('flops', 0) / 1e6:.2f} MFLOPs<br>{t.get('params', 0) / 1e3:.0f} k params"

    scored = [t for t in infeas if (t.get("accuracy") or 0) > 0]
    unscored = [t for t in infeas if t not in scored]  # over budget: never evaluated, no accuracy
    if scored:
        fig.add_scatter(x=[t["latency_ms"] for t in scored], y=[100 * t["accuracy"] for t in scored],
                        mode="markers", name="over budget", marker=dict(color=_INFEASIBLE, size=7),
                        text=[hover(t) for t in scored], hoverinfo="x+y+text")
    if unscored:
        fig.add_scatter(x=[t["latency_ms"] for t in unscored], y=[0.0] * len(unscored), mode="markers",
                        name="over budget (not evaluated, drawn at 0)",
                        marker=dict(color=_INFEASIBLE, size=7, symbol="line-ns-open"),
                        text=[hover(t) for t in unscored], hoverinfo="x+text")
    fig.add_scatter(x=[t["latency_ms"] for t in feas], y=[100 * t["accuracy"] for t in feas], mode="markers",
                    name="within budget", marker=dict(color=_FEASIBLE, size=8, opacity=0.75),
                    text=[hover(t) for t in feas], hoverinfo="x+y+text")
    pts = [(t["latency_ms"], t["accuracy"]) for t in feas]
    front = [feas[i] for i in pareto_front(pts)]
    fig.add_scatter(x=[t["latency_ms"] for t in front], y=[100 * t["accuracy"] for t in front],
                    mode="lines+markers", name="Pareto front", line=dict(color=_FRONT, width=2, shape="hv"),
                    marker=dict(size=9, color=_FRONT))
    if chosen:
        fig.add_scatter(x=[chosen["latency_ms"]], y=[100 * chosen["accuracy"]], mode="markers", name="chosen",
                        marker=_STAR)
    if budget_ms is not None:
        fig.add_vline(x=budget_ms, line=dict(color="black", dash="dash"),
                      annotation_text=f"budget {budget_ms:.3f} ms (latency table's clock)",
                      annotation_position="top left")
    if teacher and teacher.get("latency_ms"):
        fig.add_vline(x=teacher["latency_ms"], line=dict(color="#888", dash="dot"),
                      annotation_text="unpruned", annotation_position="bottom right")
    fig.update_layout(title="Search: PruningNet validation accuracy vs predicted latency",
                      xaxis_title="predicted latency (ms, the search's calibration)",
                      yaxis_title="PruningNet validation accuracy (%)", legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return fig


def widths_figure(genes: Sequence[Mapping[str, Any]], chosen: Mapping[str, int]) -> go.Figure:
    """Chosen channels per gene against the original widths (genes in network order)."""
    names = [g["name"] for g in genes]
    full = [g["width"] for g in genes]
    kept = [chosen.get(g["name"], g["width"]) for g in genes]
    ratio = [k / f for k, f in zip(kept, full)]
    fig = go.Figure()
    fig.add_bar(x=names, y=full, name="original", marker_color="#d9d9d9")
    fig.add_bar(x=names, y=kept, name="chosen network", marker_color=_CHOSEN,
                text=[f"{100 * r:.0f}%" for r in ratio], textposition="outside", cliponaxis=False)
    fig.update_layout(title="Channels per gene: the chosen network vs the original", barmode="overlay", xaxis_title="gene (network order)",
                      yaxis_title="channels", xaxis=dict(tickangle=-45), **{**_LAYOUT, "height": 480})
    return fig


def gates_figure(values: Mapping[str, Sequence[float]], *, reached: Mapping[str, float] | None = None,
                 chosen_fraction: float | None = None) -> go.Figure:
    """Histogram of learned gate values, one trace per target ratio.

    Args:
        values: Gate values per target ratio (label -> values).
        reached: Non-zero fraction each ratio's gates reached (label -> fraction); a ratio whose
            gates stayed above it is labelled "missed".
        chosen_fraction: Fraction of all channels the chosen network keeps (noted above the plot).
    """
    fig = go.Figure()
    for label, vals in values.items():
        name = f"r = {label}"
        if reached and label in reached:
            frac = reached[label]
            name += f" (reached {frac:.2f})" if frac <= float(label) + 1e-9 else f" (MISSED: {frac:.2f} non-zero)"
        fig.add_histogram(x=list(vals), name=name, opacity=0.6, xbins=dict(start=0, end=1.0001, size=0.04))
    if chosen_fraction is not None:  # a fraction of channels, not a gate value: noted beside the axes
        fig.add_annotation(text=f"chosen network keeps {100 * chosen_fraction:.0f}% of the searchable channels",
                           xref="paper", yref="paper", x=1.0, y=1.08, showarrow=False, font=dict(color=_CHOSEN))
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
    others = [r for r in rows if r.get("label") != "chosen"]
    fig.add_scatter(x=[r["predicted_ms"] for r in others], y=[r["measured_ms"] for r in others], mode="markers",
                    name="searched architectures", marker=dict(size=9, color=_FEASIBLE),
                    text=[r.get("label", "") for r in others])
    for r in rows:
        if r.get("label") == "chosen":
            fig.add_scatter(x=[r["predicted_ms"]], y=[r["measured_ms"]], mode="markers", name="chosen", marker=_STAR)
    fig.update_layout(title="Latency table: predicted vs measured", xaxis_title="predicted (ms)",
                      yaxis_title="measured (ms)", **_LAYOUT)
    return fig


def distill_figure(curves: Mapping[str, Sequence[Mapping[str, float]]], *, teacher_accuracy: float | None = None,
                   teacher_split: str = "validation", final: Mapping[str, float] | None = None) -> go.Figure:
    """Validation accuracy per epoch of each distillation run of the chosen network.

    Args:
        curves: Per run, the epochs' ``val_accuracy``.
        teacher_accuracy: The teacher's accuracy, a dotted line labelled with ``teacher_split``.
        teacher_split: ``"validation"`` (comparable with the curve) or ``"test"``.
        final: ``{"epoch": ..., "accuracy": ...}``: the chosen network's final test accuracy (a star).
    """
    fig = go.Figure()
    for label, curve in curves.items():
        pts = [c for c in curve if "val_accuracy" in c]
        fig.add_scatter(x=[c["epoch"] for c in pts], y=[100 * c["val_accuracy"] for c in pts],
                        mode="lines+markers", name=f"chosen network, {label} (validation)")
    if final is not None and final.get("accuracy") is not None:
        fig.add_scatter(x=[final["epoch"]], y=[100 * final["accuracy"]], mode="markers",
                        name="chosen network, final (test)", marker=_STAR)
    if teacher_accuracy is not None:
        fig.add_hline(y=100 * teacher_accuracy, line=dict(color="#888", dash="dot"),
                      annotation_text=f"teacher ({teacher_split})", annotation_position="bottom right")
    fig.update_layout(title="Distillation of the chosen network: validation accuracy per epoch", xaxis_title="epoch",
                      yaxis_title="accuracy (%)", **_LAYOUT)
    return fig
