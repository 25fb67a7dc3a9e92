"""Smoke run of benchmarks/compare_methods.py: every method, one budget, tiny data and epochs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "compare_methods.py"
METHODS = {"uniform", "tp-l1-global-flops", "tp-l1-layer-flops", "tp-l1-global-table", "tp-l1-layer-table",
           "gates", "random", "tpe", "evolution", "gate-prior"}


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--models", "mobilenet_v2", "--budgets", "0.5", "--seeds", "0",
           "--data", "digits", "--train-subset", "200", "--epochs", "1", "--gate-steps", "8", "--pnet-epochs", "1",
           "--distill-epochs", "1", "--n-evals", "4", "--rounds", "3", "--tp-steps", "5", "--gate-ratios", "0.5",
           "--methods", ",".join(sorted(METHODS)), "--work", str(tmp_path / "work"), "--output", str(tmp_path / "out.json"),
           *extra]
    env = {**os.environ, "NAS_PRUNE_PROGRESS": "0"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)


def _finite(row: dict) -> bool:
    return all(math.isfinite(v) for v in row.values() if isinstance(v, float))


@pytest.mark.slow
def test_compare_methods_smoke(tmp_path: Path) -> None:
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["format"] == "nas-prune/compare-methods"
    rows = [r for r in result["rows"] if r["method"] != "teacher"]
    assert {r["method"] for r in rows} == METHODS
    assert {r["budget"] for r in rows} == {0.5} and len(rows) == len(METHODS)
    teacher = next(r for r in result["rows"] if r["method"] == "teacher")
    for r in result["rows"]:
        assert _finite(r), r
        assert isinstance(r["feasible"], bool) and isinstance(r["feasible_strict"], bool)
        assert r["measured_ms"] > 0 and r["flops"] > 0 and r["params"] > 0
        assert 0.0 <= r["accuracy_mean"] <= 1.0 and r["accuracy_std"] >= 0.0
        assert r["teacher_ms"] == teacher["measured_ms"]
        assert r["latency_ratio"] == pytest.approx(r["measured_ms"] / r["teacher_ms"])
        # the feasibility flag follows the stated rule
        assert r["feasible"] == (r["latency_ratio"] <= r["budget"] * (1 + result["settings"]["tolerance"]))
    for r in rows:
        assert len(r["accuracies"]) == 1 and r["search_seconds"] >= 0
        assert r["flops"] < teacher["flops"]
    # table-aimed methods are predicted under the budget (on the clock measured at their selection)
    assert (tmp_path / "out.html").read_text().count("plotly") > 0
    assert len(result["verdicts"]) == 1

    # a second run resumes from the cache: nothing is trained or searched again
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "▶" not in again.stdout and " seed 0: " not in again.stdout and "predicted" not in again.stdout
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == result["rows"]


def test_bad_arguments_exit_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--budgets", "1.5", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "budgets" in proc.stderr


def test_verdicts_compare_best_feasible_methods() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    from compare_methods import verdicts

    def row(method: str, family: str, acc: float, std: float, feasible: bool) -> dict:
        return {"model": "m", "budget": 0.35, "method": method, "family": family, "accuracy_mean": acc,
                "accuracy_std": std, "feasible": feasible}

    rows = [row("uniform", "baseline", 0.80, 0.002, True), row("tp-l1-global-flops", "baseline", 0.90, 0.0, False),
            row("evolution", "nas-prune", 0.83, 0.004, True), row("gates", "nas-prune", 0.95, 0.0, False)]
    (v,) = verdicts(rows)
    # infeasible rows never win, however accurate
    assert v["best_nas_prune"] == "evolution" and v["best_baseline"] == "uniform"
    assert v["margin_points"] == pytest.approx(3.0) and v["beats_by_1pt_beyond_spread"]
    assert v["nas_prune_all_feasible"] is False
