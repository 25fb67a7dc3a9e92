"""The final check settles before its verdict: a contended check that does not clear the limit is taken again."""

from __future__ import annotations

import json

import pytest

from nas_prune.pipeline._check import latency_verdict, measure_final


def _result(ratio: float, *, contended: bool, limit: float = 0.5) -> dict:
    lo, hi = ratio - 0.01, ratio + 0.01
    decided = hi <= limit or lo > limit
    return {"ratio": ratio, "interval": [lo, hi], "iqr": 0.01, "rounds": 30, "rounds_all": 30, "ms": ratio,
            "teacher_ms": 1.3 if contended else 1.0, "quiet_teacher_ms": 1.0, "contended": contended,
            "meets": hi <= limit if decided else ratio <= limit, "decided_by": "interval" if decided else "median",
            "limit": limit, "block_ratios": [ratio], "quiet_blocks": 0 if contended else 3}


@pytest.fixture
def checks(monkeypatch):
    """``measure_ratios`` replaced by a queue of canned checks; records the quiet teacher each was given."""
    import nas_prune.latency

    queue: list[dict] = []
    given: list = []

    def fake(models, teacher, shape, settings, *, limit, quiet_teacher_ms=None, **kwargs):
        given.append(quiet_teacher_ms)
        return {"final": queue.pop(0)}

    monkeypatch.setattr(nas_prune.latency, "measure_ratios", fake)
    return queue, given


def test_a_contended_check_over_the_limit_is_taken_again_and_the_quiet_one_decides(tmp_path, checks):
    queue, given = checks
    queue += [_result(0.53, contended=True), _result(0.48, contended=False)]
    final = measure_final(tmp_path, (3, 8, 8), {}, 0.5, 1.05, settle_wait_s=0)
    assert final["ratio"] == 0.48 and final["meets"] is True and not queue
    assert final["settle"] == {"tries": 2, "used": 2, "ratios": [0.53, 0.48], "contended": [True, False]}
    assert given == [1.05, 1.0]  # the fastest teacher seen so far is the quiet speed the next check judges by
    assert json.loads((tmp_path / "final_check.json").read_text())["settle"]["used"] == 2
    assert latency_verdict(final)["latency_checks"]["tries"] == 2


def test_a_contended_check_that_clears_the_limit_is_the_verdict(tmp_path, checks):
    queue, _ = checks
    queue += [_result(0.45, contended=True), _result(0.99, contended=False)]
    final = measure_final(tmp_path, (3, 8, 8), {}, 0.5, None, settle_wait_s=0)
    assert final["ratio"] == 0.45 and final["settle"]["tries"] == 1 and len(queue) == 1


def test_a_quiet_check_over_the_limit_is_the_verdict_and_contention_throughout_is_bounded(tmp_path, checks):
    queue, _ = checks
    queue += [_result(0.55, contended=False)]
    assert measure_final(tmp_path, (3, 8, 8), {}, 0.5, None, settle_wait_s=0)["meets"] is False
    queue += [_result(r, contended=True) for r in (0.53, 0.51, 0.52, 0.4)]
    final = measure_final(tmp_path, (3, 8, 8), {}, 0.5, None, settle_tries=3, settle_wait_s=0)
    assert final["settle"] == {"tries": 3, "used": 3, "ratios": [0.53, 0.51, 0.52], "contended": [True] * 3}
    assert final["ratio"] == 0.52 and final["contended"] is True and len(queue) == 1
