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
