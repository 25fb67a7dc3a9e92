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
