"""Finalists: the most accurate candidates are measured against the teacher; one measured over budget is not picked."""

from __future__ import annotations

import json

from nas_prune.pipeline._finalists import finalists_stage, pick_measured, top_candidates


def _trial(n, acc, ms, channels, feasible=True):
    return {"number": n, "accuracy": acc, "latency_ms": ms, "feasible": feasible, "channels": channels}


def test_top_candidates_are_feasible_distinct_and_most_accurate_first():
    trials = [_trial(0, 0.5, 1.0, {"a": 8}), _trial(1, 0.9, 1.0, {"a": 16}), _trial(2, 0.9, 0.8, {"a": 16}),
              _trial(3, 0.99, 0.5, {"a": 24}, feasible=False), _trial(4, 0.7, 1.0, {"a": 32})]
    top = top_candidates(trials, 3)
    assert [t["number"] for t in top] == [2, 4, 0]


def test_pick_is_the_most_accurate_that_measures_under_budget():
    cands = [{"number": i} for i in range(4)]
    measured = [{"meets": False, "ratio": 0.6}, {"meets": False, "ratio": 0.55}, {"meets": True, "ratio": 0.49},
                {"meets": True, "ratio": 0.3}]
    assert pick_measured(cands, measured) == (2, True)
    none = [{"meets": False, "ratio": r} for r in (0.7, 0.52, 0.6)]
    assert pick_measured(cands[:3], none) == (1, False)


def test_a_finalist_that_measures_over_budget_is_not_picked(tmp_path):
    """mobilenet_v2: the full network claims to be feasible and the most accurate; measured at ~1.0x of the
    teacher it is over a 0.6x budget and loses to the width-0.1 network (~0.25x)."""
    from nas_prune.latency import LatencyTable, arch_onnx_bytes, find_shipped_table
    from nas_prune.space import Architecture, ChannelSpace, shipped_space

    space = ChannelSpace.load(shipped_space("mobilenet_v2-32"))
    table = LatencyTable.load(find_shipped_table(space.id, 1))
    (tmp_path / "teacher.onnx").write_bytes(arch_onnx_bytes(space, space.full()))
    full, small = dict(space.full().channels), dict(space.uniform(0.1).channels)
    (tmp_path / "trials.json").write_text(json.dumps([_trial(7, 0.99, 0.01, full), _trial(8, 0.8, 0.01, small)]))
    logs = []
    res = finalists_stage(space, tmp_path, table, limit=0.6, k=5, log=logs.append)
    rows = json.loads((tmp_path / "finalists.json").read_text())
    assert rows[0]["trial"] == 7 and rows[0]["meets"] is False and rows[0]["picked"] is False
    assert rows[1]["meets"] is True and rows[1]["ratio"] < 0.6 and rows[1]["picked"] is True
    assert res["picked_trial"] == 8 and res["met"] is True and res["over_budget"] == 1 and res["picked_rank"] == 2
    assert Architecture.load(tmp_path / "arch.json").channels == small
    assert "1 over the 0.6x budget" in logs[0]
