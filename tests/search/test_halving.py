"""Successive halving over candidates on Optuna's pruner (the machinery of ``--select finetune``)."""

from __future__ import annotations

import pytest


def test_the_worst_stop_at_the_first_rung_and_the_best_that_finished_wins():
    from nas_prune.search import successive_halving

    curves = [[0.80, 0.82, 0.83, 0.84], [0.60, 0.61, 0.62, 0.63], [0.81, 0.83, 0.84, 0.85], [0.82, 0.86, 0.87, 0.88]]
    calls = []

    def step(i, s):
        calls.append((i, s))
        return curves[i][s - 1]

    res = successive_halving(len(curves), step, steps=4)
    assert res.winner == 3 and res.states[3] == "complete" and res.scores[3] == curves[3]
    assert res.states[1] == "pruned" and res.scores[1] == [0.60]
    # every candidate's steps ran in order, each continuing the one before
    for i in range(len(curves)):
        assert [s for j, s in calls if j == i] == list(range(1, len(res.scores[i]) + 1))
    assert res.steps_trained == len(calls) < 4 * len(curves)


def test_one_candidate_runs_every_step_and_ties_go_to_the_first():
    from nas_prune.search import successive_halving

    assert successive_halving(1, lambda i, s: 0.5, steps=3).scores == [[0.5, 0.5, 0.5]]
    assert successive_halving(2, lambda i, s: 0.7, steps=2).winner == 0
    with pytest.raises(ValueError):
        successive_halving(0, lambda i, s: 0.0)
