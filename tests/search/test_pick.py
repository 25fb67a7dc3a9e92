"""nas-prune's pick (the documented "best" trial) against Optuna's ``best_trial``, with ties built on purpose.

The latencies come from a fixed linear stand-in table and the scores from a fixed lookup, so the
rule's outcome is the same on every machine (the profiled fixture table of the integration tests
is not: which trial ties depends on what it measured).
"""

from __future__ import annotations

import optuna
import pytest

from nas_prune.search import (
    PICK_ATTR,
    ArchitectureObjective,
    LatencyBudget,
    pick_trial,
    recorded_pick,
    search_result,
)
from nas_prune.space import Architecture
from tests.search.standins import FakeTable

optuna.logging.set_verbosity(optuna.logging.WARNING)


class ScoreBook:
    """Scores looked up by the architecture's total width; every score has the same standard error."""

    def __init__(self, scores: dict[int, float], se: float) -> None:
        self.scores, self.se = scores, se

    def score(self, arch: Architecture) -> dict[str, float]:
        s = self.scores[sum(arch.channels.values())]
        return {"score": s, "accuracy": s, "score_se": self.se, "seconds": 0.0}


def _study(space, scores_by_ratio, se, directions=("maximize",)):
    """One trial per uniform width ratio, in the given order, scored from the book."""
    table = FakeTable(space, name="fixed")
    budgets = LatencyBudget.for_tables([table], ["100ms"])
    archs = [space.uniform(r) for r, _ in scores_by_ratio]
    book = ScoreBook({sum(a.channels.values()): s for a, (_, s) in zip(archs, scores_by_ratio)}, se)
    objective = ArchitectureObjective(space=space, evaluator=book, budgets=budgets, multi_objective=len(directions) > 1)
    study = optuna.create_study(directions=objective.directions)
    for a in archs:
        study.enqueue_trial(dict(a.channels))
    study.optimize(objective, n_trials=len(archs))
    return study, budgets


def test_a_faster_trial_within_the_best_scores_noise_is_the_pick_and_the_study_says_so(tiny_space):
    # trial 0: the highest score, widest; trial 1: 0.004 lower (within se 0.01), narrower; trial 2: beyond the noise.
    study, budgets = _study(tiny_space, [(1.0, 0.900), (0.75, 0.896), (0.25, 0.850)], se=0.01)
    assert study.best_trial.number == 0  # Optuna: the highest score
    result = search_result(study, tiny_space, budgets)
    assert result["best"]["trial"] == 1  # nas-prune: the faster network within the noise
    pick = result["pick"]
    assert pick["trial"] == 1 and pick["best_score_trial"] == 0
    assert pick["latency_ms"]["fixed"] < pick["best_score_latency_ms"]["fixed"]
    assert "within the standard error" in pick["reason"]
    assert recorded_pick(study) == pick == study.user_attrs[PICK_ATTR]  # where an Optuna user reads it
    assert pick_trial(study, budgets).trial.number == 1


def test_without_a_tie_the_pick_is_optunas_best_trial(tiny_space):
    study, budgets = _study(tiny_space, [(1.0, 0.900), (0.75, 0.850), (0.25, 0.700)], se=0.01)
    result = search_result(study, tiny_space, budgets)
    assert result["best"]["trial"] == study.best_trial.number == 0 == result["pick"]["best_score_trial"]
    assert "Optuna's best_trial" in recorded_pick(study)["reason"]


def test_without_a_standard_error_only_equal_scores_tie(tiny_space):
    study, budgets = _study(tiny_space, [(1.0, 0.900), (0.75, 0.8999), (0.5, 0.900)], se=0.0)
    assert pick_trial(study, budgets).trial.number == 2  # the same score, faster


def test_the_pick_is_recorded_once_and_not_without_record(tiny_space):
    study, budgets = _study(tiny_space, [(1.0, 0.900), (0.75, 0.896)], se=0.01)
    search_result(study, tiny_space, budgets, record=False)
    assert recorded_pick(study) is None
    search_result(study, tiny_space, budgets)
    search_result(study, tiny_space, budgets)  # a second worker: the same record, no new write needed
    assert recorded_pick(study)["trial"] == 1


def test_the_dashboard_note_names_the_pick(tiny_space):
    pytest.importorskip("optuna_dashboard")
    from optuna_dashboard._note import get_note_from_system_attrs

    study, budgets = _study(tiny_space, [(1.0, 0.900), (0.75, 0.896)], se=0.01)
    search_result(study, tiny_space, budgets)
    note = get_note_from_system_attrs(study._storage.get_study_system_attrs(study._study_id), None)
    assert "nas-prune's pick: trial 1" in note["body"] and "best_trial (the highest score) is trial 0" in note["body"]


def test_multi_objective_pick_is_the_highest_score_on_the_front(tiny_space):
    study, budgets = _study(tiny_space, [(1.0, 0.900), (0.5, 0.800), (0.25, 0.700)], se=0.01,
                            directions=("maximize", "minimize"))
    result = search_result(study, tiny_space, budgets)
    assert result["best"]["trial"] == 0 == recorded_pick(study)["trial"]
    assert len(result["pareto_front"]) == 3
