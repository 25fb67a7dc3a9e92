"""Choosing among a few candidate networks by a short real training: successive halving on Optuna's pruner.

A proxy score (the PruningNet's, or FLOPs) ranks candidates only roughly; a few epochs of the
real finish rank them better, and successive halving (Jamieson & Talwalkar, AISTATS 2016;
asynchronous as in ASHA, Li et al., MLSys 2020) spends those epochs on the candidates still in the
running: every candidate trains one step, those not in the top ``1/reduction_factor`` of the ones
that reached the same rung stop, the rest go on, up to ``steps``. Optuna's
:class:`~optuna.pruners.SuccessiveHalvingPruner` does the bookkeeping: each candidate is one trial
that reports its score after every step.

The caller says what a step is (``step(i, s)``: train candidate ``i`` for its step ``s``, continuing
its step ``s - 1``, and return its validation score) and caches it, so that a killed selection
resumes with the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["HALVING_STEPS", "Halving", "successive_halving"]

#: Steps of the longest training: rungs at 1, 2 and 4 with a reduction factor of 2.
HALVING_STEPS = 4


@dataclass
class Halving:
    """The outcome of :func:`successive_halving`.

    Attributes:
        winner: Index of the best candidate among those that ran every step.
        scores: Per candidate, its score after each step it ran.
        states: Per candidate, ``complete`` (ran every step) or ``pruned`` (stopped at a rung).
    """

    winner: int
    scores: list[list[float]] = field(default_factory=list)
    states: list[str] = field(default_factory=list)

    @property
    def steps_trained(self) -> int:
        """Steps run over all candidates (the selection's cost in steps)."""
        return sum(len(s) for s in self.scores)


def successive_halving(n: int, step: Callable[[int, int], float], *, steps: int = HALVING_STEPS,
                       reduction_factor: int = 2, seed: int = 0) -> Halving:
    """Train ``n`` candidates by successive halving on ``step``; the best one that ran every step wins.

    Candidates are tried in their index order (put the one a proxy ranks first at 0): the first ones
    set the bar of each rung. Ties go to the lower index.

    Args:
        n: Number of candidates (>= 1).
        step: ``step(i, s)`` trains candidate ``i`` for its step ``s`` (1-based, continuing step
            ``s - 1``) and returns its score (higher is better, e.g. validation accuracy).
        steps: Steps of a candidate that is never stopped.
        reduction_factor: A candidate goes on from a rung when in the top ``1/reduction_factor``.
        seed: Seed of the study's sampler (the trials are enqueued: it draws nothing).
    """
    import optuna

    if n < 1:
        raise ValueError("successive_halving needs at least one candidate")
    scores: list[list[float]] = [[] for _ in range(n)]

    def objective(trial: optuna.Trial) -> float:
        i = int(trial.user_attrs["candidate"])
        score = 0.0
        for s in range(1, steps + 1):
            score = float(step(i, s))
            scores[i].append(score)
            trial.report(score, s)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the caller says what happens
    try:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed),
                                    pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                                                  reduction_factor=reduction_factor))
        for i in range(n):
            study.enqueue_trial({}, user_attrs={"candidate": i})
        study.optimize(objective, n_trials=n)
    finally:
        optuna.logging.set_verbosity(verbosity)
    states = ["pending"] * n
    for t in study.trials:
        states[int(t.user_attrs["candidate"])] = t.state.name.lower()
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(finished, key=lambda t: (float(t.value or 0.0), -int(t.user_attrs["candidate"])))
    return Halving(winner=int(best.user_attrs["candidate"]), scores=scores, states=states)
