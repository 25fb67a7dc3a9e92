"""The budget's verdict is a measurement: ratios to the teacher, more rounds when noise is wider than the margin."""

from __future__ import annotations

import pytest

from nas_prune.latency import arch_onnx_bytes
from nas_prune.latency._ratio import measure_ratios

FAST = {"provider": "cpu", "threads": 1, "opt_level": "all", "rounds": 3, "runs_per_round": 5, "warmup": 2,
        "percentile": 0.0, "batch": 1, "provider_options": {}}


@pytest.fixture(scope="module")
def onnx(tiny_space):
    return {"full": arch_onnx_bytes(tiny_space, tiny_space.full()),
            "small": arch_onnx_bytes(tiny_space, tiny_space.uniform(0.25))}


def test_the_verdict_follows_the_measured_ratio(onnx, tiny_space):
    res = measure_ratios({"copy": onnx["full"], "small": onnx["small"]}, onnx["full"], tiny_space.input_shape, FAST,
                         limit=0.9, rounds=10, max_rounds=30)
    copy, small = res["copy"], res["small"]
    assert copy["ratio"] == pytest.approx(1.0, abs=0.15) and copy["meets"] is False  # the teacher itself is over 0.9x
    assert small["meets"] == (small["ratio"] <= 0.9)
    for r in res.values():
        lo, hi = r["interval"]
        assert lo <= r["ratio"] <= hi and r["teacher_ms"] > 0 and r["ms"] > 0 and r["limit"] == 0.9


def test_noise_wider_than_the_margin_takes_more_rounds_and_says_so(onnx, tiny_space):
    """The teacher against an identical copy at a 1.0x limit: the interval straddles the limit."""
    res = measure_ratios({"copy": onnx["full"]}, onnx["full"], tiny_space.input_shape, FAST, limit=1.0, rounds=5,
                         max_rounds=15)["copy"]
    if res["decided_by"] == "median":  # the usual case: undecidable within 15 rounds
        assert res["rounds"] == 15 and res["interval"][0] <= 1.0 <= res["interval"][1]
        assert res["meets"] == (res["ratio"] <= 1.0)
    else:  # the interval cleared the limit: the verdict is the interval's
        assert res["meets"] == (res["interval"][1] <= 1.0)


def test_sessions_split_the_rounds_into_blocks_of_fresh_sessions(onnx, tiny_space, monkeypatch):
    import nas_prune.on_device._worker as device

    made = []
    real = device.make_session
    monkeypatch.setattr(device, "make_session", lambda *a, **k: made.append(k.get("what")) or real(*a, **k))
    res = measure_ratios({"small": onnx["small"]}, onnx["full"], tiny_space.input_shape, FAST, limit=10.0, rounds=9,
                         sessions=3)["small"]
    assert res["rounds"] == 9 and len(res["block_ratios"]) == 3 and res["drift"] >= 0.0
    assert made.count("teacher") == 3 and made.count("model 'small'") == 3  # every block in new sessions
    assert res["meets"] is True and res["decided_by"] == "interval"
    lo, hi = res["interval"]
    assert lo <= res["ratio"] <= hi


def test_pairs_time_each_candidate_alone_with_the_teacher(onnx, tiny_space, monkeypatch):
    import nas_prune.on_device._worker as device

    groups = []
    real = device.time_interleaved
    monkeypatch.setattr(device, "time_interleaved", lambda runners, s: groups.append(sorted(runners)) or real(runners, s))
    res = measure_ratios({"a": onnx["small"], "b": onnx["small"]}, onnx["full"], tiny_space.input_shape, FAST,
                         limit=10.0, rounds=6, sessions=2, pairs=True)
    assert groups == [["__teacher__", "a"], ["__teacher__", "b"]] * 2  # block by block over the candidates
    assert all(r["rounds"] == 6 for r in res.values())


def test_the_block_bootstrap_covers_drift_between_blocks():
    import numpy as np

    from nas_prune.latency._ratio import _median_interval

    rng = np.random.default_rng(0)
    levels = [0.50, 0.54, 0.58]  # three measurements that each agree with themselves, not with each other
    ratios = np.concatenate([lv + 0.002 * rng.standard_normal(10) for lv in levels])
    blocks = np.repeat(np.arange(3), 10)
    lo_r, hi_r = _median_interval(ratios)
    lo_b, hi_b = _median_interval(ratios, blocks)
    assert hi_r < 0.57 <= hi_b and lo_b <= 0.51 < lo_r  # the rounds' bootstrap alone claims more precision


def _fake_timing(monkeypatch, blocks):
    """time_interleaved returning, per call, the next ``(teacher_s, candidate_s)`` for every round."""
    import nas_prune.on_device._worker as device

    calls = iter(blocks)

    def fake(runners, settings):
        t, c = next(calls)
        return {name: [[t if name == "__teacher__" else c] * settings.runs_per_round] * settings.rounds
                for name in runners}

    monkeypatch.setattr(device, "time_interleaved", fake)


def test_the_verdict_is_taken_on_the_blocks_where_the_teacher_ran_at_its_quiet_speed(onnx, tiny_space, monkeypatch):
    quiet, contended = (1.0e-3, 0.45e-3), (1.3e-3, 0.72e-3)  # 0.45x quiet; 0.55x while a neighbour is busy
    _fake_timing(monkeypatch, [quiet, contended, quiet, contended, contended, quiet])
    res = measure_ratios({"s": onnx["small"]}, onnx["full"], tiny_space.input_shape, FAST, limit=0.5, rounds=12,
                         sessions=6, quiet_tol=0.08)["s"]
    assert res["ratio"] == pytest.approx(0.45) and res["meets"] is True and res["quiet_blocks"] == 3
    assert res["contended"] is False and res["quiet_teacher_ms"] == pytest.approx(1.0)
    assert sorted(round(x, 2) for x in res["block_ratios"]) == [0.45] * 3 + [0.55] * 3


def test_a_contended_machine_takes_more_blocks_then_says_so(onnx, tiny_space, monkeypatch):
    _fake_timing(monkeypatch, [(1.3e-3, 0.72e-3)] * 12)  # slower than the quiet 1.0 ms the run saw before
    res = measure_ratios({"s": onnx["small"]}, onnx["full"], tiny_space.input_shape, FAST, limit=0.5, rounds=6,
                         max_rounds=12, sessions=6, quiet_tol=0.08, quiet_teacher_ms=1.0)["s"]
    assert res["contended"] is True and res["rounds"] == 12 and res["quiet_blocks"] == 12
    assert res["meets"] is False and res["ratio"] == pytest.approx(0.72 / 1.3)
