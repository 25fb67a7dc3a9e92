"""Build ``report.html`` from a run directory (``nas-prune run`` writes one; ``nas-prune report DIR``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from nas_prune._io import describe_error, read_json
from nas_prune.errors import InvalidFileError
from nas_prune.report._figures import distill_figure, gates_figure, latency_check_figure, pareto_figure, widths_figure
from nas_prune.report._html import render_page

__all__ = ["report_warnings", "write_report"]


def _artifact(run_dir: Path, summary: dict[str, Any], key: str) -> Path | None:
    rel = summary.get("artifacts", {}).get(key)
    if not rel:
        return None
    path = run_dir / rel
    return path if path.exists() else None


def _fmt_ms(v: Any) -> str:
    return f"{v:.3f} ms" if isinstance(v, (int, float)) else "-"


def _fmt_pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "-"


def _gate_values(path: Path) -> tuple[dict[str, list[float]], dict[str, float], list[str]]:
    """Gate values per ratio, the non-zero fraction each ratio reached, and the ratios it missed."""
    from nas_prune.gates import Gates

    gates = Gates.load(path)
    out: dict[str, list[float]] = {}
    for ratio, per_gene in gates.values.items():
        out[str(ratio)] = [float(v) for vals in per_gene.values() for v in vals]
    reached: dict[str, float] = {}
    missed: list[str] = []
    for ratio in gates.ratios:
        runs = [r for r in gates.runs if r.ratio == ratio]
        reached[str(ratio)] = max(r.nonzero_fraction for r in runs)
        if not all(r.met_ratio for r in runs):
            missed.append(f"r = {ratio:g} kept {reached[str(ratio)]:.2f} of the gates non-zero")
    return out, reached, missed


def _chosen_fraction(space_obj: dict[str, Any], channels: dict[str, Any]) -> float | None:
    genes = [g for g in space_obj.get("genes", []) if len(g.get("choices", [])) > 1]
    total = sum(int(g["width"]) for g in genes)
    return sum(int(channels.get(g["name"], g["width"])) for g in genes) / total if total else None


def report_warnings(run_dir: Path, summary: dict[str, Any]) -> list[str]:
    """One line per thing the reader must not miss: gates short of their ratio, a missed budget."""
    out: list[str] = []
    gates_path = _artifact(run_dir, summary, "gates")
    if gates_path:
        _, _, missed = _gate_values(gates_path)
        if missed:
            out.append("The channel gates did not reach their target ratio (" + "; ".join(missed) + "): their "
                       "histograms and priors describe wider networks than asked. Learn them longer or with a larger "
                       "penalty (nas-prune gates --epochs N --gamma G).")
    check = summary.get("pruningnet_check")
    if isinstance(check, dict) and check.get("ordered") is False:
        scores = " / ".join(f"{s:.3f}" for s in check.get("scores", []))
        out.append(f"The PruningNet scores uniform widths {check.get('widths')} at {scores}: a wider network does "
                   "not score higher, so the search ranked candidates unreliably. Train it longer (--pnet-epochs).")
    final, budget = summary.get("final", {}), summary.get("budget_ms")
    if summary.get("feasible") is False:
        ratio = summary.get("latency_ratio")
        out.append(f"The final network misses the latency budget: measured {_fmt_ms(final.get('measured_latency_ms'))} "
                   f"against {_fmt_ms(budget)}" + (f" ({ratio:.3f}x the teacher's, budget {summary.get('budget')})"
                                                   if isinstance(ratio, (int, float)) else "")
                   + ". Search again with a tighter budget, or re-profile the latency table on this machine.")
    search_best = (summary.get("search") or {}).get("predicted_ms")
    if isinstance(search_best, (int, float)) and isinstance(budget, (int, float)) and search_best > budget:
        out.append(f"The search's pick is predicted over budget ({search_best:.4f} ms > {budget:.4f} ms).")
    return out


def write_report(run_dir: str | os.PathLike[str], *, output: str | os.PathLike[str] | None = None) -> Path:
    """Write ``run_dir/report.html`` from the run's ``summary.json`` and artefacts.

    Each figure is drawn when its data exists (a run stopped early still gets a report of what it has).

    Raises:
        InvalidFileError: ``run_dir`` has no readable ``summary.json``.
    """
    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json", what="run summary")
    if not isinstance(summary, dict):
        raise InvalidFileError(f"run summary {run_dir / 'summary.json'} is not an object: re-run nas-prune run")
    try:
        return _render(run_dir, summary, output)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidFileError(
            f"run summary {run_dir / 'summary.json'} or an artefact it names is damaged "
            f"({describe_error(exc, 100)}): re-run 'nas-prune run --out {run_dir}'"
        ) from None


def build_figures(run_dir: Path, summary: dict[str, Any]) -> list[go.Figure]:
    """The report's plotly figures, from the artefacts ``summary`` names (missing ones are skipped)."""
    teacher, final = summary.get("teacher", {}), summary.get("final", {})
    budget = summary.get("budget_ms")
    figures: list[go.Figure] = []

    trials_path = _artifact(run_dir, summary, "trials")
    if trials_path:
        trials = read_json(trials_path, what="search trials")
        chosen = None
        search = summary.get("search", {})
        # The trials' latencies are predicted on the search's clock (the reference timed when the
        # budget was set); the star must use the same clock, not the final check's.
        chosen_ms = search.get("predicted_ms", final.get("predicted_latency_ms"))
        if chosen_ms is not None and search.get("pnet_accuracy") is not None:
            chosen = {"latency_ms": chosen_ms, "accuracy": search["pnet_accuracy"]}
        t_lat = {"latency_ms": summary.get("teacher_predicted_latency_ms")}
        figures.append(pareto_figure(trials, budget_ms=budget, chosen=chosen, teacher=t_lat))
    space_path, arch_path = _artifact(run_dir, summary, "space"), _artifact(run_dir, summary, "arch")
    chosen_fraction = None
    if space_path and arch_path:
        space_obj = read_json(space_path, what="space file")
        arch_obj = read_json(arch_path, what="architecture")
        genes = [g for g in space_obj.get("genes", []) if len(g.get("choices", [])) > 1]
        figures.append(widths_figure(genes, arch_obj.get("channels", {})))
        chosen_fraction = _chosen_fraction(space_obj, arch_obj.get("channels", {}))
    gates_path = _artifact(run_dir, summary, "gates")
    if gates_path:
        values, reached, _ = _gate_values(gates_path)
        figures.append(gates_figure(values, reached=reached, chosen_fraction=chosen_fraction))
    check_path = _artifact(run_dir, summary, "latency_check")
    if check_path:
        rows = read_json(check_path, what="latency check")
        if rows:
            figures.append(latency_check_figure(rows))
    metrics_path = _artifact(run_dir, summary, "distill_metrics")
    if metrics_path:
        metrics = read_json(metrics_path, what="distillation metrics")
        curve = metrics.get("curve") or metrics.get("history") or []
        if curve:
            # The curve is validation accuracy: draw the teacher's validation accuracy beside it
            # when the metrics have it, else its test accuracy, labelled so.
            t_val = (metrics.get("teacher") or {}).get("val_accuracy")
            last = max((c.get("epoch", 0) for c in curve), default=0)
            figures.append(distill_figure({metrics.get("method", "student"): curve},
                                          teacher_accuracy=t_val if t_val is not None else teacher.get("accuracy"),
                                          teacher_split="validation" if t_val is not None else "test",
                                          final={"epoch": last, "accuracy": final.get("accuracy")}))
    return figures


def _cards(summary: dict[str, Any], teacher: dict[str, Any], final: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The headline first: the final network's latency measured as a ratio to the teacher's (same rounds)
    against the budget's ratio. Milliseconds come from the final check alone (teacher, final and the
    budget at that teacher's timing), so no two cards compare numbers taken on different clocks."""
    feasible = summary.get("feasible")
    verdict = {True: "ok", False: "bad"}.get(feasible, "")
    ratio, iv, limit = summary.get("latency_ratio"), summary.get("latency_ratio_interval"), summary.get("limit_ratio")
    t_ms, f_ms = teacher.get("measured_latency_ms"), final.get("measured_latency_ms")
    cards: list[tuple[str, str, str]] = []
    if isinstance(ratio, (int, float)) and isinstance(limit, (int, float)):
        spread = f" [{iv[0]:.3f}, {iv[1]:.3f}]" if isinstance(iv, list) and len(iv) == 2 else ""
        cards.append(("latency vs teacher, measured (95% interval)", f"{ratio:.3f}x{spread}", verdict))
        cards.append(("budget", f"{limit:.3f}x the teacher ({summary.get('budget', '?')})", ""))
    else:
        cards.append(("budget", _fmt_ms(summary.get("budget_ms")), ""))
    cards.append(("budget met", {True: "yes", False: "no"}.get(feasible, "-"), verdict))
    cards += [("teacher test accuracy", _fmt_pct(teacher.get("accuracy")), ""),
              ("final test accuracy", _fmt_pct(final.get("accuracy")), "")]
    if isinstance(t_ms, (int, float)) and isinstance(f_ms, (int, float)):
        at = f", budget {_fmt_ms(limit * t_ms)}" if isinstance(limit, (int, float)) else ""
        rounds = summary.get("latency_ratio_rounds")
        cards.append(("teacher / final latency, final check" + (f" ({rounds} rounds)" if rounds else ""),
                      f"{_fmt_ms(t_ms)} / {_fmt_ms(f_ms)}{at}", ""))
    if isinstance(summary.get("speedup"), (int, float)):
        cards.append(("speed-up", f"{summary['speedup']:.2f}x", ""))
    return cards


def _render(run_dir: Path, summary: dict[str, Any], output: str | os.PathLike[str] | None) -> Path:
    teacher, final = summary.get("teacher", {}), summary.get("final", {})
    figures = build_figures(run_dir, summary)
    teacher = {**teacher, "predicted_latency_ms": teacher.get("predicted_latency_ms",
                                                              summary.get("teacher_predicted_latency_ms"))}
    cards = _cards(summary, teacher, final)
    # predictions on one clock, the latency table's (the search's): the teacher's and the pick's
    final = {**final, "predicted_latency_ms": (summary.get("search") or {}).get("predicted_ms",
                                                                             final.get("predicted_latency_ms"))}
    table = [["", "teacher", "final"]]
    for key, label in (("accuracy", "test accuracy"), ("params", "parameters"), ("flops", "FLOPs (MACs)"),
                       ("measured_latency_ms", "measured latency (ms), final check"),
                       ("predicted_latency_ms", "predicted latency (ms), latency table's clock")):
        def cell(d: dict[str, Any]) -> str:
            v = d.get(key)
            if v is None:
                return "-"
            return f"{100 * v:.2f}%" if key == "accuracy" else (f"{v:,}" if isinstance(v, int) else f"{v:.4f}")
        table.append([label, cell(teacher), cell(final)])
    cal = summary.get("calibration") or {}
    if cal.get("label"):
        table.append(["latency table", cal["label"], ""])
    for stage, use in (summary.get("data_use") or {}).items():
        table.append([f"data seen by {stage}", str(use), ""])
    stages = summary.get("stage_seconds", {})
    if stages:
        table.append(["", "", ""])
        table.extend([[f"stage {k}", f"{v:.1f} s", ""] for k, v in stages.items()])
    subtitle = f"{summary.get('model', '?')} on {summary.get('data', '?')} · {summary.get('device', '')}"
    return render_page(output or run_dir / "report.html", title="nas-prune report", subtitle=subtitle,
                       cards=cards, table=table, figures=figures, warnings=report_warnings(run_dir, summary))
