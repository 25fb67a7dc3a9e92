"""benchmarks/compare_methods.py: the closed loop that aims every method at the budget it names,
the verdicts, the rows, and (slow) a tiny end-to-end run that resumes from its cache."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "compare_methods.py"
sys.path.insert(0, str(SCRIPT.parent))

import compare_methods as cm  # noqa: E402

ROW_FIELDS = {"model", "budget", "method", "family", "tool", "latency_ratio", "accuracy_mean", "accuracy_std",
              "flops_ratio", "flops_ratio_tp", "in_band", "measured_interval", "aims"}


# ---------------------------------------------------------------------------- a fake machine
class FakeMachine:
    """Latency ratio = floor + slope x target (affine, as FLOPs at small inputs); counts measure calls."""

    def __init__(self, floor: float = 0.0, slope: float = 1.0) -> None:
        self.floor, self.slope, self.calls, self.measured = floor, slope, [], set()

    def picker(self, start: float, scale: float = 1.0) -> cm.Picker:
        # the "architecture" records its target; a second tool (scale) maps targets to latency differently
        return cm.Picker(start=start, pick=lambda t: ({"w": round(t * scale * 1e6)}, {"seen": t}))

    def measure(self, archs: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
        self.calls.append(sorted(archs))
        out = {}
        for k, ch in archs.items():
            r = self.floor + self.slope * ch["w"] / 1e6
            out[k] = {"ratio": r, "interval": [0.98 * r, 1.02 * r]}
            self.measured.add(k)
        return out


def test_in_band_is_the_budget_it_names() -> None:
    assert cm.in_band(0.30, 0.3) and cm.in_band(0.27, 0.3) and cm.in_band(0.285, 0.3)
    assert not cm.in_band(0.301, 0.3) and not cm.in_band(0.269, 0.3) and not cm.in_band(0.146, 0.3)


def test_first_reaim_scales_the_target_to_the_band_centre() -> None:
    # measured 0.146x for a 0.3x target (the issue's row): the target grows by 0.95 x 0.3 / 0.146
    t = cm.next_target([{"target": 0.3, "ratio": 0.146}], 0.3)
    assert t == pytest.approx(0.3 * cm.AIM * 0.3 / 0.146)


def test_bisection_once_under_and_over_are_known() -> None:
    hist = [{"target": 0.3, "ratio": 0.2}, {"target": 0.5, "ratio": 0.35}, {"target": 0.4, "ratio": 0.31}]
    # last under (0.3) and last over (0.4): the midpoint
    assert cm.next_target(hist, 0.3) == pytest.approx(0.35)


def test_secant_while_on_one_side() -> None:
    # ratio = 0.25 + 0.5 t, both aims over a 0.3x budget: the secant hits the band centre exactly
    hist = [{"target": 0.3, "ratio": 0.4}, {"target": 0.2, "ratio": 0.35}]
    t = cm.next_target(hist, 0.3)
    assert 0.25 + 0.5 * t == pytest.approx(cm.AIM * 0.3)
    # a secant that would move away from the band falls back to scaling
    odd = [{"target": 0.3, "ratio": 0.4}, {"target": 0.2, "ratio": 0.45}]
    assert cm.next_target(odd, 0.3) == pytest.approx(0.2 * cm.AIM * 0.3 / 0.45)


def test_loop_lands_an_affine_tool_in_the_band_and_batches_rounds() -> None:
    # a FLOPs tool on a machine with a latency floor: scaling alone would stay over the band forever
    m = FakeMachine(floor=0.2, slope=0.8)
    pickers = {"flops-tool": m.picker(0.3), "table-tool": m.picker(0.3, scale=0.5)}
    hist, skipped = cm.aim_loop(pickers, m.measure, 0.3)
    assert not skipped
    for name, h in hist.items():
        assert 1 <= len(h) <= 1 + cm.MAX_REAIMS, name
        assert h[-1]["in_band"] and cm.chosen(h, 0.3) is h[-1], (name, [x["ratio"] for x in h])
        assert all(set(x) >= {"target", "arch_key", "ratio", "interval", "in_band", "channels", "seen"} for x in h)
    # every round measured all of its new picks in one call
    assert len(m.calls) == max(len(h) for h in hist.values())
    assert len(m.calls[0]) == 2


def test_loop_stops_at_the_first_in_band_pick() -> None:
    m = FakeMachine()
    hist, _ = cm.aim_loop({"a": m.picker(0.29)}, m.measure, 0.3)
    assert len(hist["a"]) == 1 and hist["a"][0]["in_band"] and len(m.calls) == 1


def test_out_of_reach_ends_out_of_band_with_the_fastest_pick() -> None:
    m = FakeMachine(floor=0.35, slope=0.65)  # nothing measures under 0.35x
    hist, _ = cm.aim_loop({"a": m.picker(0.3)}, m.measure, 0.3, max_reaims=3)
    h = hist["a"]
    assert len(h) <= 4 and not any(x["in_band"] for x in h)
    pick = cm.chosen(h, 0.3)
    assert pick["ratio"] == min(x["ratio"] for x in h) and not pick["in_band"]


def test_chosen_prefers_in_band_then_closest_under() -> None:
    h = [{"ratio": 0.2, "in_band": False}, {"ratio": 0.26, "in_band": False}, {"ratio": 0.33, "in_band": False}]
    assert cm.chosen(h, 0.3)["ratio"] == 0.26
    assert cm.chosen(h + [{"ratio": 0.29, "in_band": True}], 0.3)["ratio"] == 0.29


def test_a_tool_that_cannot_run_is_skipped_with_its_reason() -> None:
    m = FakeMachine()

    def broken(_t: float) -> tuple[dict[str, int], dict[str, Any]]:
        raise cm.MethodSkipped("modelopt does not import")

    hist, skipped = cm.aim_loop({"ok": m.picker(0.3), "broken": cm.Picker(start=0.3, pick=broken)}, m.measure, 0.3)
    assert skipped == {"broken": "modelopt does not import"} and set(hist) == {"ok"}


def test_a_repeated_target_settles_the_method() -> None:
    m = FakeMachine(floor=0.5, slope=0.5)  # out of reach; targets clamp at the picker's low bound
    p = cm.Picker(start=0.01, pick=m.picker(0.01).pick, low=0.01)
    hist, _ = cm.aim_loop({"a": p}, m.measure, 0.3)
    assert len(hist["a"]) == 1


# ---------------------------------------------------------------------------- verdicts
def _row(method: str, family: str, acc: float | None, std: float | None, band: bool,
         budget: float = 0.3) -> dict[str, Any]:
    return {"model": "m", "budget": budget, "method": method, "family": family, "accuracy_mean": acc,
            "accuracy_std": std, "in_band": band}


def test_verdict_compares_best_in_band_rows() -> None:
    rows = [_row("uniform", "baseline", 0.80, 0.002, True), _row("tp-l1-global", "baseline", 0.90, 0.0, False),
            _row("evolution", "nas-prune", 0.83, 0.004, True), _row("gates", "nas-prune", 0.95, 0.0, False),
            {**_row("teacher", "teacher", 0.99, 0.0, True), "budget": 1.0}]
    (v,) = cm.verdicts(rows)
    # out-of-band rows never win, however accurate; the teacher is no peer
    assert v["best_nas_prune"] == "evolution" and v["best_peer"] == "uniform"
    assert v["margin_points"] == pytest.approx(3.0) and v["spread_points"] == pytest.approx(0.4)
    assert v["never_below_beyond_spread"] is True and v["leads_by_half_point_beyond_spread"] is True
    assert v["out_of_band"] == ["gates", "tp-l1-global"]


@pytest.mark.parametrize("ours, never_below, leads", [
    (0.846, False, False),  # -0.4 points against a 0.3-point spread: below beyond the spread
    (0.848, True, False),   # -0.2: within the spread
    (0.855, True, False),   # +0.5: short of 0.5 + 0.3
    (0.860, True, True),    # +1.0
])
def test_verdict_flags(ours: float, never_below: bool, leads: bool) -> None:
    rows = [_row("tp", "baseline", 0.85, 0.003, True), _row("gates", "nas-prune", ours, 0.001, True)]
    (v,) = cm.verdicts(rows)
    assert v["never_below_beyond_spread"] is never_below and v["leads_by_half_point_beyond_spread"] is leads


def test_the_verdict_takes_the_runs_pick_not_the_best_nas_prune_row() -> None:
    rows = [_row("tp-l1-global", "baseline", 0.85, 0.001, True), _row("evolution", "nas-prune", 0.87, 0.001, True),
            {**_row(cm.SELECT_METHOD, "nas-prune", 0.85, 0.001, True), "selected_from": "tp-l1-global"}]
    (v,) = cm.verdicts(rows)
    # the more accurate evolution row is an oracle's choice (test accuracy): the run picked the baseline's network
    assert v["best_nas_prune"] == cm.SELECT_METHOD and v["selected_from"] == "tp-l1-global"
    assert v["margin_points"] == pytest.approx(0.0) and "--select finetune" in v["nas_prune_rule"]
    (oracle,) = cm.verdicts(rows[:2])
    assert oracle["best_nas_prune"] == "evolution" and "oracle" in oracle["nas_prune_rule"]


def test_select_row_is_the_fine_tune_winner_among_in_band_candidates() -> None:
    bench = _bench_stub()
    bench.args = SimpleNamespace(method_list=list(cm.DEFAULT_METHODS))
    base = {"budget": 0.3, "model": "m", "in_band": True, "accuracy_std": 0.0}
    rows = [{**base, "method": "uniform", "tool": "uniform", "arch_key": "u", "channels": {"a": 1}, "accuracy_mean": 0.80},
            {**base, "method": "tp-l1-global", "tool": "torch-pruning", "arch_key": "t", "channels": {"a": 2},
             "accuracy_mean": 0.82},
            {**base, "method": "tp-taylor-global", "tool": "torch-pruning", "arch_key": "x", "channels": {"a": 9},
             "accuracy_mean": 0.90},  # a peer nas-prune does not compute: never a candidate
            {**base, "method": "evolution", "tool": "nas-prune", "arch_key": "e", "channels": {"a": 3},
             "accuracy_mean": 0.81, "pnet_score": 0.7},
            {**base, "method": "gate-prior", "tool": "nas-prune", "arch_key": "e", "channels": {"a": 3},
             "accuracy_mean": 0.81, "pnet_score": 0.6},  # the same network: one candidate
            {**base, "method": "gates", "tool": "nas-prune", "arch_key": "g", "channels": {"a": 4}, "accuracy_mean": 0.95,
             "in_band": False}]  # out of the band: never a candidate
    curves = {1: [0.5, 0.6, 0.7, 0.8], 2: [0.6, 0.7, 0.8, 0.9], 3: [0.55, 0.65, 0.75, 0.85]}
    tried = []

    def step(channels, s):  # the step's metrics, as distill writes them
        tried.append((channels["a"], s))
        return {"student": {"val_accuracy": curves[channels["a"]][s - 1]}, "train_seconds": 2.0}

    bench._select_step = step
    row = cm.ModelBench.select_row(bench, 0.3, rows)
    assert row["method"] == cm.SELECT_METHOD and row["selected_from"] == "tp-l1-global"
    assert row["tool"] == "nas-prune" and row["family"] == "nas-prune" and row["accuracy_mean"] == 0.82
    assert [c["method"] for c in row["select"]["candidates"]] == ["evolution", "uniform", "tp-l1-global"]
    assert sorted({a for a, _ in tried}) == [1, 2, 3] and row["search_seconds"] == 2.0 * len(tried)
    assert cm.ModelBench.select_row(bench, 0.3, [{**rows[0], "in_band": False}]) is None


def test_unfinished_rows_are_drawn_but_never_judged(tmp_path: Path) -> None:
    pending = {**_row("tp-l1-global", "baseline", None, None, True), "accuracies": [], "latency_ratio": 0.29,
               "flops_ratio": 0.4}
    rows = [{**_row("uniform", "baseline", 0.80, 0.002, True), "latency_ratio": 0.28, "flops_ratio": 0.45},
            pending, {**_row("gates", "nas-prune", 0.81, 0.001, True), "latency_ratio": 0.29, "flops_ratio": 0.42}]
    (v,) = cm.verdicts(rows)
    # the measured but unfinished pick has no accuracy yet: the finished peer is the best one so far
    assert v["best_peer"] == "uniform" and v["unfinished"] == ["tp-l1-global"]
    assert v["margin_points"] == pytest.approx(1.0)
    cm.figure(rows, tmp_path / "f.html")  # its speed-up point is drawn; its accuracy is not
    html = (tmp_path / "f.html").read_text()
    assert "tp-l1-global, budget 0.3x" in html and "tp-l1-global, budget 0.3x, measured" not in html
    (only,) = cm.verdicts([pending])
    assert only["best_peer"] is None and only["margin_points"] is None


def test_verdict_without_a_peer_in_band_has_no_flags() -> None:
    (v,) = cm.verdicts([_row("tp", "baseline", 0.85, 0.0, False), _row("gates", "nas-prune", 0.86, 0.0, True)])
    assert v["best_peer"] is None and v["never_below_beyond_spread"] is None and v["margin_points"] is None


# ---------------------------------------------------------------------------- rows and the report
def _bench_stub() -> Any:
    """A ModelBench with what ``row`` reads, and no model, data or onnxruntime behind it."""
    bench = cm.ModelBench.__new__(cm.ModelBench)
    bench.model, bench.seconds = "mobilenet_v2", {"gates": 12.0}
    bench.measure = lambda archs, limit: {k: {"ratio": 0.29, "ms": 0.1, "teacher_ms": 0.345} for k in archs}
    bench.describe = lambda ch: {"flops": 10, "params": 5, "flops_tp": 11, "flops_ratio": 0.4, "flops_ratio_tp": 0.41}
    return bench


def test_rows_carry_the_issue_fields() -> None:
    bench = _bench_stub()
    hist = [{"target": 0.3, "arch_key": "k1", "ratio": 0.35, "interval": [0.34, 0.36], "in_band": False,
             "channels": {"a": 8}, "predicted_ratio": 0.3, "pick_seconds": 1.5},
            {"target": 0.25, "arch_key": "k2", "ratio": 0.29, "interval": [0.28, 0.30], "in_band": True,
             "channels": {"a": 4}, "predicted_ratio": 0.25, "pick_seconds": 2.0}]
    row = cm.ModelBench.row(bench, "gates", 0.3, cm.chosen(hist, 0.3), hist, [0.84, 0.85, 0.86])
    assert ROW_FIELDS <= set(row)
    assert row["tool"] == "nas-prune" and row["family"] == "nas-prune" and row["in_band"] is True
    assert row["latency_ratio"] == 0.29 and row["measured_interval"] == [0.28, 0.30]
    assert [a["target"] for a in row["aims"]] == [0.3, 0.25] and all("channels" not in a for a in row["aims"])
    assert row["accuracy_mean"] == pytest.approx(0.85) and row["accuracy_std"] == pytest.approx(0.01)
    assert row["search_seconds"] == pytest.approx(3.5) and row["setup_seconds"] == 12.0
    pending = cm.ModelBench.row(bench, "gates", 0.3, cm.chosen(hist, 0.3), hist, None)  # measured, not finished
    assert pending["accuracy_mean"] is None and pending["accuracies"] == [] and pending["finished"] is False
    assert {k: v for k, v in pending.items() if "accura" not in k and k != "finished"} == {
        k: v for k, v in row.items() if "accura" not in k and k != "finished"}
    peers = {m: cm.ModelBench.row(bench, m, 0.3, hist[1], hist, [0.8])["tool"]
             for m in ("uniform", "tp-l1-global", "tp-groupnorm-global", "modelopt-fastnas")}
    assert peers == {"uniform": "uniform", "tp-l1-global": "torch-pruning", "tp-groupnorm-global": "torch-pruning",
                     "modelopt-fastnas": "modelopt"}


def test_result_says_how_flops_are_counted(tmp_path: Path) -> None:
    args = cm.parse_args(["--smoke", "--work", str(tmp_path), "--output", str(tmp_path / "out.json")])
    rows = [{**_row("gates", "nas-prune", 0.85, 0.0, True), "latency_ratio": 0.29, "flops_ratio": 0.4, "aims": []}]
    res = cm.result_json(args, rows, [{"model": "m", "method": "modelopt-fastnas", "reason": "x"}], 1.0)
    assert set(res["flops_counting"]) == {"flops_ratio", "flops_ratio_tp"}
    assert res["skipped"][0]["reason"] == "x" and res["verdicts"][0]["best_nas_prune"] == "gates"
    json.dumps(res)  # plain JSON
    cm.figure(rows + [{**_row("teacher", "teacher", 0.9, 0.0, True), "budget": 1.0, "latency_ratio": 1.0,
                       "flops_ratio": 1.0}], tmp_path / "fig.html")
    assert "plotly" in (tmp_path / "fig.html").read_text()[:100000]


def test_smoke_changes_defaults_but_options_win(tmp_path: Path) -> None:
    a = cm.parse_args(["--smoke"])
    assert a.data == "digits" and a.model_list == ["mobilenet_v2"] and a.seed_list == [0] and a.distill_epochs == 1
    assert a.output != cm.DEFAULTS["output"]
    assert cm.parse_args(["--smoke", "--budgets", "0.4"]).budget_list == [0.4]
    full = cm.parse_args([])
    assert full.train_subset == 0 and full.budget_list == [0.2, 0.3, 0.5] and full.model_list == ["mobilenet_v2", "resnet18"]
    assert full.seed_list == [0, 1, 2] and full.distill_epochs == 8


def test_bad_arguments_exit_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--budgets", "1.5", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "budgets" in proc.stderr


# ---------------------------------------------------------------------------- end to end
def _smoke(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--work", str(tmp_path / "work"), "--output", str(tmp_path / "out.json")]
    env = {**os.environ, "NAS_PRUNE_PROGRESS": "0"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)


@pytest.mark.slow
def test_smoke_end_to_end_and_resume(tmp_path: Path) -> None:
    proc = _smoke(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["format"] == "nas-prune/compare-methods" and result["version"] == 2
    rows = [r for r in result["rows"] if r["family"] != "teacher"]
    expected = {"uniform", "tp-l1-global", "gates", "modelopt-fastnas", cm.SELECT_METHOD} - {
        s["method"] for s in result["skipped"]}
    assert {r["method"] for r in rows} == expected
    for r in result["rows"]:
        assert ROW_FIELDS <= set(r), r["method"]
        assert all(math.isfinite(v) for v in r.values() if isinstance(v, float))
    picks = [r for r in rows if r["method"] != cm.SELECT_METHOD]
    for r in picks:
        lo, hi = r["measured_interval"]
        assert lo <= r["latency_ratio"] <= hi and 1 <= len(r["aims"]) <= 2
        assert r["in_band"] == cm.in_band(r["latency_ratio"], r["budget"])
        assert 0 < r["flops_ratio"] < 1 and 0 < r["flops_ratio_tp"] < 1
    for sel in (r for r in rows if r["method"] == cm.SELECT_METHOD):  # the winner is one of the candidates' networks
        winner = next(r for r in picks if r["method"] == sel["selected_from"])
        assert sel["channels"] == winner["channels"] and sel["accuracies"] == winner["accuracies"]
        assert sel["select"]["epochs_trained"] >= cm.SELECT_STEPS
    assert (tmp_path / "out.html").exists() and len(result["verdicts"]) == 1
    assert all(r["finished"] for r in result["rows"]) and not result["verdicts"][0]["unfinished"]
    # the latency-sensitive phase (every pick measured) ends before any network is finished
    logs = proc.stdout
    assert logs.index("measuring") < logs.index("finishing every pick") < logs.index(" seed 0: ")

    # a second run resumes: nothing trained, picked or measured again
    again = _smoke(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    logs = again.stdout + again.stderr
    assert "measuring" not in logs and " seed 0: " not in logs and "▶" not in logs
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == result["rows"]
