from __future__ import annotations

import random

import pytest

from nas_prune._io import write_json
from nas_prune.errors import InvalidFileError
from nas_prune.report import pareto_front, write_report
from nas_prune.report._screenshot import find_chromium, screenshot


def test_pareto_front_keeps_only_undominated():
    pts = [(1.0, 0.5), (2.0, 0.7), (1.5, 0.4), (3.0, 0.69), (0.5, 0.3), (2.5, 0.9)]
    assert pareto_front(pts) == [4, 0, 1, 5]


def fake_run(tmp_path, tiny_space):
    rng = random.Random(0)
    tiny_space.save(tmp_path / "space.json")
    arch = tiny_space.sample(1)
    arch.save(tmp_path / "arch.json")
    trials = [{"number": i, "latency_ms": rng.uniform(0.05, 0.2), "accuracy": rng.uniform(0.7, 0.95),
               "feasible": rng.random() < 0.5, "flops": 1000, "params": 100} for i in range(30)]
    write_json(tmp_path / "trials.json", trials)
    write_json(tmp_path / "latency_check.json", [{"predicted_ms": 0.1, "measured_ms": 0.105}, {"predicted_ms": 0.2, "measured_ms": 0.19}])
    write_json(tmp_path / "metrics.json", {"method": "kd", "curve": [{"epoch": e, "val_accuracy": 0.5 + e / 40} for e in range(1, 9)]})
    summary = {
        "model": "tiny", "data": "digits", "budget_ms": 0.12, "feasible": True, "speedup": 1.9,
        "teacher": {"accuracy": 0.97, "params": 5000, "flops": 90000, "measured_latency_ms": 0.2},
        "final": {"accuracy": 0.95, "params": 2500, "flops": 40000, "measured_latency_ms": 0.105, "predicted_latency_ms": 0.11},
        "search": {"pnet_accuracy": 0.9},
        "artifacts": {"space": "space.json", "arch": "arch.json", "trials": "trials.json",
                      "latency_check": "latency_check.json", "distill_metrics": "metrics.json"},
        "stage_seconds": {"teacher": 3.0},
    }
    write_json(tmp_path / "summary.json", summary)
    return tmp_path


def test_report_has_every_figure(tmp_path, tiny_space):
    run = fake_run(tmp_path, tiny_space)
    html = write_report(run).read_text()
    for title in ("Pareto front", "Channels per gene", "predicted vs measured", "Distillation"):
        assert title in html
    assert "plotly" in html and "<script" in html  # plotly.js inlined: opens offline
    assert "1.90x" in html


def test_report_without_summary_is_clear_error(tmp_path):
    with pytest.raises(InvalidFileError, match="summary.json"):
        write_report(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Debian's chromium is not installed")
def test_report_renders_in_chromium(tmp_path, tiny_space):
    from PIL import Image, ImageStat

    run = fake_run(tmp_path, tiny_space)
    png = screenshot(write_report(run), tmp_path / "report.png", height=1600)
    img = Image.open(png).convert("RGB")
    assert img.size == (1200, 1600)
    # the plots were drawn: the page is far from a blank or single-colour image
    assert max(ImageStat.Stat(img).stddev) > 20
    colours = img.resize((300, 400)).getcolors(maxcolors=100000)
    assert colours is not None and len(colours) > 50


def test_chosen_star_sits_on_the_search_clock(tmp_path, tiny_space):
    """Trials are predicted when the budget was set; the star uses that prediction, not the final check's."""
    from nas_prune.report._build import build_figures

    run = fake_run(tmp_path, tiny_space)
    summary = __import__("json").loads((run / "summary.json").read_text())
    summary["search"]["predicted_ms"] = 0.1234
    write_json(run / "summary.json", summary)
    pareto = build_figures(run, summary)[0]  # the search figure comes first
    star = next(t for t in pareto.data if t.name == "chosen")
    assert list(star.x) == [0.1234] and list(star.y) == [90.0]


def _with_gates(run, tiny_space, *, met):
    from nas_prune.gates import GateRun, Gates

    widths = {g.name: g.width for g in tiny_space.searchable_genes}
    runs = tuple(GateRun(ratio=r, seed=0, gates={g: tuple([0.9] * w) for g, w in widths.items()}, val_accuracy=0.3,
                         nonzero_fraction=1.0 if not met else r, epoch=1, met_ratio=met) for r in (0.3, 0.7))
    Gates(tiny_space.id, widths, runs).save(run / "gates.json")
    summary = __import__("json").loads((run / "summary.json").read_text())
    summary["artifacts"]["gates"] = "gates.json"
    return summary


def test_report_warns_when_gates_miss_their_ratio_or_the_budget_is_missed(tmp_path, tiny_space):
    from nas_prune.report._build import report_warnings

    run = fake_run(tmp_path, tiny_space)
    summary = _with_gates(run, tiny_space, met=True)
    write_json(run / "summary.json", summary)
    assert report_warnings(run, summary) == [] and "role='alert'" not in write_report(run).read_text()
    summary = _with_gates(run, tiny_space, met=False)
    summary.update(feasible=False, latency_ratio=0.61, budget="0.5x")
    write_json(run / "summary.json", summary)
    warnings = report_warnings(run, summary)
    assert len(warnings) == 2
    assert "did not reach their target ratio (r = 0.3 kept 1.00" in warnings[0] and "--epochs" in warnings[0]
    assert "misses the latency budget: measured 0.105 ms against 0.120 ms (0.610x" in warnings[1]
    html = write_report(run).read_text()
    assert html.count("role='alert'") == 2 and "MISSED: 1.00 non-zero" in html
    # A PruningNet whose scores do not grow with the width is called out too.
    summary["pruningnet_check"] = {"widths": [0.25, 0.5, 0.75, 1.0], "scores": [0.5, 0.6, 0.58, 0.55],
                                   "ordered": False}
    warnings = report_warnings(run, summary)
    assert len(warnings) == 3 and "0.500 / 0.600 / 0.580 / 0.550" in warnings[1] and "--pnet-epochs" in warnings[1]
    summary["pruningnet_check"]["ordered"] = True
    assert len(report_warnings(run, summary)) == 2


def test_chosen_network_is_marked_in_every_figure_and_splits_are_named(tmp_path, tiny_space):
    from nas_prune.report._build import build_figures

    run = fake_run(tmp_path, tiny_space)
    write_json(run / "latency_check.json", [{"label": "chosen", "predicted_ms": 0.1, "measured_ms": 0.105},
                                            {"label": "searched 1", "predicted_ms": 0.2, "measured_ms": 0.19}])
    summary = _with_gates(run, tiny_space, met=True)
    summary["teacher_predicted_latency_ms"] = 0.2125
    write_json(run / "summary.json", summary)
    figures = build_figures(run, summary)
    assert len(figures) == 5
    for fig in figures:
        names = " ".join(str(t.name) for t in fig.data)
        notes = " ".join(str(a.text) for a in fig.layout.annotations)
        assert "chosen" in names + notes, fig.layout.title.text
    search, widths, gates, check, distill = figures
    assert "validation" in search.layout.yaxis.title.text
    assert "(validation)" in " ".join(t.name for t in distill.data) and "teacher (test)" in distill.layout.annotations[0].text
    assert "0.2125" in write_report(run).read_text()  # the teacher's predicted latency is shown, not "-"


def test_over_budget_trials_without_accuracy_are_drawn_apart(tmp_path, tiny_space):
    from nas_prune.report import pareto_figure

    trials = [{"number": 0, "latency_ms": 0.1, "accuracy": 0.8, "feasible": True},
              {"number": 1, "latency_ms": 0.3, "accuracy": None, "feasible": False},
              {"number": 2, "latency_ms": 0.25, "accuracy": 0.0, "feasible": False}]
    fig = pareto_figure(trials, budget_ms=0.2)
    unscored = next(t for t in fig.data if "not evaluated" in t.name)
    assert list(unscored.x) == [0.3, 0.25]
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.x) == [0.1]


def test_the_headline_is_the_measured_ratio_and_every_ms_card_is_on_the_final_checks_clock(tmp_path, tiny_space):
    """The default run once showed 'budget 0.395 ms' beside 'final latency 0.395 ms' from two clocks."""
    import json

    from nas_prune.report._build import _cards

    run = fake_run(tmp_path, tiny_space)
    summary = json.loads((run / "summary.json").read_text())
    summary.update(budget="0.5x", latency_ratio=0.419, latency_ratio_interval=[0.413, 0.426], limit_ratio=0.5,
                   latency_ratio_rounds=30, budget_ms=0.395)  # budget_ms: set when the teacher timed 0.79 ms
    summary["teacher"]["measured_latency_ms"] = 0.95  # the final check's teacher: the machine ran slower then
    summary["final"]["measured_latency_ms"] = 0.398
    summary["search"]["predicted_ms"] = 0.36
    summary["final"]["predicted_latency_ms"] = 0.438  # the same network, rescaled to the final check's clock
    summary["teacher_predicted_latency_ms"] = 0.8
    cards = _cards(summary, summary["teacher"], summary["final"])
    assert cards[0] == ("latency vs teacher, measured (95% interval)", "0.419x [0.413, 0.426]", "ok")
    assert cards[1] == ("budget", "0.500x the teacher (0.5x)", "")
    ms = [v for _, v, _ in cards if "ms" in v]
    assert ms == ["0.950 ms / 0.398 ms, budget 0.475 ms"]  # 0.5 x 0.95: the budget at the same teacher timing
    write_json(run / "summary.json", summary)
    html = write_report(run).read_text()
    assert "0.395" not in "".join(v for _, v, _ in cards)  # the budget on the search's clock: no card
    assert "budget 0.395 ms (latency table's clock)" in html  # ... only the scatter, whose axis is on that clock
    row = html[html.index("predicted latency (ms), latency table&#x27;s clock"):][:200]
    assert "0.8000" in row and "0.3600" in row and "0.4380" not in row  # the teacher's and the pick's, one clock
