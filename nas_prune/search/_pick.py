"""Which trial of a study is "best": nas-prune's pick, and where an Optuna user reads it.

Optuna's ``study.best_trial`` is the feasible trial with the highest score. nas-prune picks
differently on one point: a score within the highest score's standard error (the PruningNet
score's ``pnet_score_se``, from the validation images) says nothing about which network is more
accurate, so among the feasible trials that close to the highest score the **fastest** one is
picked (predicted latency on the first budget's table; FLOPs without a budget). When no other
trial is that close, the pick is Optuna's ``best_trial``.

The pick is written where Optuna users look: the study user attribute ``nas_prune:pick`` (read
it with :func:`recorded_pick`, ``study.user_attrs["nas_prune:pick"]``, or in optuna-dashboard's
study page), and, when optuna-dashboard is installed, the study's note in the dashboard.
``nas-prune search -o best.json`` and ``nas-prune run`` report the same trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from nas_prune.search._budget import LatencyBudget
from nas_prune.search._objective import ARCH_ATTR

__all__ = ["PICK_ATTR", "PICK_RULE", "Pick", "fastest_within_noise", "pick_trial", "record_pick", "recorded_pick"]

PICK_ATTR = "nas_prune:pick"
PICK_RULE = ("the fastest feasible trial whose score is within the highest score's standard error "
             "(pnet_score_se) of it; Optuna's best_trial (the highest score) when none is")


@dataclass(frozen=True)
class Pick:
    """nas-prune's best trial and why.

    Attributes:
        trial: The picked trial (an Optuna ``FrozenTrial``).
        best_score_trial: Optuna's ``study.best_trial`` (single objective), or the highest-scoring
            feasible trial of the Pareto front (multi-objective).
        reason: One line: why ``trial`` and not ``best_score_trial`` (or that they are the same).
    """

    trial: Any
    best_score_trial: Any
    reason: str

    def as_dict(self, budgets: Sequence[LatencyBudget] = ()) -> dict[str, Any]:
        """The JSON record stored as the study attribute :data:`PICK_ATTR`."""
        t, b = self.trial, self.best_score_trial
        return {
            "trial": t.number,
            "best_score_trial": b.number,
            "score": t.values[0],
            "best_score": b.values[0],
            "score_se": b.user_attrs.get("pnet_score_se"),
            "latency_ms": {x.name: t.user_attrs.get(f"latency_ms:{x.name}") for x in budgets},
            "best_score_latency_ms": {x.name: b.user_attrs.get(f"latency_ms:{x.name}") for x in budgets},
            "rule": PICK_RULE,
            "reason": self.reason,
        }


def _feasible(t: Any) -> bool:
    return bool(t.values) and t.user_attrs.get(ARCH_ATTR) is not None and all(v <= 0 for v in t.constraints.values())


def _speed(t: Any, budgets: Sequence[LatencyBudget]) -> float:
    key = f"latency_ms:{budgets[0].name}" if budgets else "flops"
    return float(t.user_attrs.get(key, math.inf))


def fastest_within_noise(best: Any, trials: Sequence[Any], budgets: Sequence[LatencyBudget]) -> Any:
    """The fastest feasible trial whose score is within ``best``'s standard error of ``best``'s score.

    A score difference smaller than the best trial's standard error (``pnet_score_se``) says nothing
    about which network is better, so the faster one is the better pick; exact ties (the same score)
    are decided the same way, then by the higher score and the lower trial number. Speed is the
    predicted latency on the first budget's table (FLOPs without a budget). Trials without a
    standard error only tie when their scores are equal.
    """
    tol = float(best.user_attrs.get("pnet_score_se") or 0.0)
    floor = best.values[0] - tol
    tied = [t for t in trials if _feasible(t) and t.values[0] >= floor]
    return min(tied, key=lambda t: (_speed(t, budgets), -t.values[0], t.number)) if tied else best


def pick_trial(study: Any, budgets: Sequence[LatencyBudget]) -> Pick | None:
    """nas-prune's best trial of ``study`` by the documented rule (:data:`PICK_RULE`); None if none is feasible.

    Args:
        study: An Optuna study searched by :class:`ArchitectureObjective` (single or multi-objective).
        budgets: The study's latency budgets; the first one's table decides which network is faster.
    """
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(study.directions) > 1:
        front = sorted(study.best_trials, key=lambda t: (-(t.values[0]), t.values[1]))
        feasible = [t for t in front if t.user_attrs.get(ARCH_ATTR) is not None]
        if not feasible:
            return None
        return Pick(feasible[0], feasible[0], "the highest score on the Pareto front")
    try:
        best = study.best_trial if complete else None
    except ValueError:  # no feasible trial
        return None
    if best is None or not _feasible(best):
        return None
    pick = fastest_within_noise(best, complete, budgets)
    if pick.number == best.number:
        return Pick(best, best, "the highest score (Optuna's best_trial): no faster trial within its standard error")
    unit = "ms" if budgets else "FLOPs"
    return Pick(pick, best, (
        f"trial {pick.number} scores {pick.values[0]:.4f}, within the standard error "
        f"{float(best.user_attrs.get('pnet_score_se') or 0.0):.4f} of best_trial {best.number}'s {best.values[0]:.4f}, "
        f"and is faster: {_speed(pick, budgets):.4g} vs {_speed(best, budgets):.4g} {unit}"))


def record_pick(study: Any, pick: Pick, budgets: Sequence[LatencyBudget] = ()) -> None:
    """Store ``pick`` as the study attribute :data:`PICK_ATTR` and, with optuna-dashboard, the study's note.

    Every worker of a shared study records the same pick once they have all finished (they apply
    the same rule to the same trials), so concurrent writes agree.
    """
    record = pick.as_dict(budgets)
    if study.user_attrs.get(PICK_ATTR) == record:
        return  # already recorded (by this worker or another)
    study.set_user_attr(PICK_ATTR, record)
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    save_note(study, (
        f"# nas-prune's pick: trial {pick.trial.number}\n\n{pick.reason}.\n\n"
        f"Optuna's best_trial (the highest score) is trial {pick.best_score_trial.number}. "
        f"Rule: {PICK_RULE}. Also in the study user attribute `{PICK_ATTR}`."))


def recorded_pick(study: Any) -> dict[str, Any] | None:
    """The pick a nas-prune search recorded in ``study`` (:data:`PICK_ATTR`), or None."""
    value = study.user_attrs.get(PICK_ATTR)
    return dict(value) if isinstance(value, dict) else None
