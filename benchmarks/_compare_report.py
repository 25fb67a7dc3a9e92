"""Verdicts and the two-view figure of ``benchmarks/compare_methods.py`` (private helper).

Both read the result rows only, so ``benchmarks/render.py`` rebuilds the figure from the JSON; rows
of the earlier format (``feasible`` instead of ``in_band``, no ``flops_ratio``) are drawn too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SELECT_METHOD", "figure", "verdicts"]

PEER_FAMILY, OURS_FAMILY = "baseline", "nas-prune"
#: The row of what ``nas-prune run --select finetune`` picks: the one a user gets, so the one the verdict takes.
SELECT_METHOD = "nas-prune-select"
#: nas-prune's best must lead the best peer by this many points beyond the spread (issue 30's bar).
LEAD_POINTS = 0.5


def _in_band(row: dict[str, Any]) -> bool:
    """Whether a row counts (rows of the earlier format: their ``feasible`` flag)."""
    return bool(row.get("in_band", row.get("feasible", False)))


def _finished(row: dict[str, Any]) -> bool:
    """Whether a row has its accuracy (the benchmark writes its picks before it finishes them)."""
    return row.get("accuracy_mean") is not None


def _best(rows: list[dict[str, Any]], family: str) -> dict[str, Any] | None:
    return max((r for r in rows if r["family"] == family), key=lambda r: r["accuracy_mean"], default=None)


def verdict(rows: list[dict[str, Any]], model: str, budget: float) -> dict[str, Any]:
    """nas-prune's pick vs the best peer row among the in-band rows of one model and budget.

    nas-prune's pick is the ``nas-prune-select`` row when there is one (what the run picks without
    seeing the test split); otherwise the best nas-prune row by test accuracy, an oracle over its
    methods (``nas_prune_rule`` says which). The best peer is always that oracle over the peers.

    ``margin_points``: nas-prune's best mean accuracy minus the best peer's (points); ``spread_points``:
    the larger of their seed standard deviations. ``never_below_beyond_spread``: the margin is not
    below minus the spread; ``leads_by_half_point_beyond_spread``: it is at least 0.5 + the spread.
    Both are ``None`` when either side has no finished row in the band (``unfinished``: rows whose picks
    are measured but not finished yet).
    """
    here = [r for r in rows if r["model"] == model and r["budget"] == budget and r["family"] != "teacher"]
    sel = [r for r in here if _in_band(r) and _finished(r)]
    picked = [r for r in sel if r["method"] == SELECT_METHOD]
    ours, peer = (picked[0] if picked else _best(sel, OURS_FAMILY)), _best(sel, PEER_FAMILY)
    rule = ("the run's pick (--select finetune)" if picked else
            "the best nas-prune row by test accuracy (an oracle over nas-prune's methods)")
    v: dict[str, Any] = {"model": model, "budget": budget, "nas_prune_rule": rule,
                         "best_nas_prune": ours and ours["method"], "best_peer": peer and peer["method"],
                         "selected_from": ours and ours.get("selected_from"),
                         "out_of_band": sorted(r["method"] for r in here if not _in_band(r)),
                         "unfinished": sorted(r["method"] for r in here if not _finished(r)),
                         "margin_points": None, "spread_points": None,
                         "never_below_beyond_spread": None, "leads_by_half_point_beyond_spread": None}
    if ours and peer:
        margin = 100 * (ours["accuracy_mean"] - peer["accuracy_mean"])
        spread = 100 * max(ours["accuracy_std"], peer["accuracy_std"])
        v.update(margin_points=margin, spread_points=spread, never_below_beyond_spread=bool(margin >= -spread),
                 leads_by_half_point_beyond_spread=bool(margin >= LEAD_POINTS + spread))
    return v


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`verdict` for every model and budget of ``rows`` (teacher rows excluded)."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        for b in sorted({r["budget"] for r in rows if r["model"] == model and r["family"] != "teacher"}):
            out.append(verdict(rows, model, b))
    return out


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78"]


def _flops_ratio(row: dict[str, Any], teacher: dict[str, Any] | None) -> float | None:
    if "flops_ratio" in row:
        return float(row["flops_ratio"])
    if teacher and row.get("flops") and teacher.get("flops"):
        return float(row["flops"]) / float(teacher["flops"])
    return None


def _accuracy_traces(go: Any, rows: list[dict[str, Any]], method: str, color: str, first: bool) -> list[Any]:
    """Every seed as a small point and the mean (with its std) as a large one, for one method and model."""
    sel = sorted(rows, key=lambda r: r["latency_ratio"])
    seeds_x = [r["latency_ratio"] for r in sel for _ in r.get("accuracies", [r["accuracy_mean"]])]
    seeds_y = [100 * a for r in sel for a in r.get("accuracies", [r["accuracy_mean"]])]
    text = [f"{method}, budget {r['budget']:g}x, measured {r['latency_ratio']:.3f}x, "
            f"{'in band' if _in_band(r) else 'OUT OF BAND'}" for r in sel]
    return [
        go.Scatter(x=seeds_x, y=seeds_y, mode="markers", name=method, legendgroup=method, showlegend=False,
                   marker={"color": color, "size": 5, "opacity": 0.45}, hoverinfo="skip"),
        go.Scatter(x=[r["latency_ratio"] for r in sel], y=[100 * r["accuracy_mean"] for r in sel],
                   error_y={"type": "data", "array": [100 * r["accuracy_std"] for r in sel]},
                   mode="markers", name=method, legendgroup=method, showlegend=first, text=text,
                   marker={"color": color, "size": 11, "symbol": ["circle" if _in_band(r) else "x" for r in sel]},
                   hovertemplate="%{x:.3f}x, %{y:.2f}%<br>%{text}<extra></extra>"),
    ]


def _speed_trace(go: Any, rows: list[dict[str, Any]], teacher: dict[str, Any] | None, method: str, color: str,
                 legend: bool = False) -> Any:
    """Measured speed-up against FLOPs removed (nas-prune's count), one point per budget."""
    pts = [(1 - f, 1 / r["latency_ratio"], r) for r in rows if (f := _flops_ratio(r, teacher)) is not None]
    return go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers", name=method, legendgroup=method,
                      showlegend=legend, text=[f"{method}, budget {p[2]['budget']:g}x" for p in pts],
                      marker={"color": color, "size": 10, "symbol": ["circle" if _in_band(p[2]) else "x" for p in pts]},
                      hovertemplate="FLOPs removed %{x:.2f}, speed-up %{y:.2f}x<br>%{text}<extra></extra>")


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    """Two views per model, self-contained HTML: accuracy vs measured latency ratio; speed-up vs FLOPs removed."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    models = sorted({r["model"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows if r["family"] != "teacher"))
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    titles = [f"{m}: accuracy vs measured latency" for m in models] + [f"{m}: does a FLOPs cut become speed?" for m in models]
    fig = make_subplots(rows=2, cols=len(models), subplot_titles=titles, vertical_spacing=0.14)
    shown: set[str] = set()  # methods already in the legend
    for col, model in enumerate(models, start=1):
        mine = [r for r in rows if r["model"] == model]
        teacher = next((r for r in mine if r["family"] == "teacher"), None)
        for method in methods:
            sel = [r for r in mine if r["method"] == method]
            if not sel:
                continue
            done = [r for r in sel if _finished(r)]  # unfinished picks: speed view only
            for tr in _accuracy_traces(go, done, method, colors[method], first=method not in shown) if done else []:
                fig.add_trace(tr, row=1, col=col)
            legend = method not in shown and not done  # the accuracy view names the method when it can
            shown.add(method)
            fig.add_trace(_speed_trace(go, sel, teacher, method, colors[method], legend), row=2, col=col)
        if teacher:
            fig.add_trace(go.Scatter(x=[1.0], y=[100 * teacher["accuracy_mean"]], mode="markers", name="teacher",
                                     legendgroup="teacher", showlegend=col == 1, marker={"color": "black", "size": 12}),
                          row=1, col=col)
        for b in sorted({r["budget"] for r in mine if r["family"] != "teacher"}):
            fig.add_vrect(x0=0.9 * b, x1=b, fillcolor="grey", opacity=0.12, line_width=0, row=1, col=col)
            fig.add_vline(x=b, line_dash="dot", line_color="grey", row=1, col=col)
        xs = [i / 50 for i in range(0, 48)]
        fig.add_trace(go.Scatter(x=xs, y=[1 / (1 - x) for x in xs], mode="lines", name="speed-up = FLOPs cut",
                                 legendgroup="ideal", showlegend=col == 1, line={"dash": "dash", "color": "grey"}),
                      row=2, col=col)
        fig.update_xaxes(title_text="measured latency / teacher's (shaded: the band [0.9, 1] x budget)", row=1, col=col)
        fig.update_yaxes(title_text="test accuracy (%: seeds small, mean ± std large)", row=1, col=col)
        fig.update_xaxes(title_text="FLOPs removed (1 - flops_ratio, nas-prune's count)", range=[0, 1], row=2, col=col)
        fig.update_yaxes(title_text="measured speed-up (1 / latency ratio)", type="log", row=2, col=col)
    fig.update_layout(title="Every method at the budget it names (x markers: measured outside the band)",
                      height=1000, width=620 * len(models))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True)  # self-contained: viewable offline
