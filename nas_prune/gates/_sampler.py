"""An Optuna sampler whose startup trials draw channel widths from the gate prior.

TPE and NSGA-II start from random (uniform) trials. With gates learned from random weights
(Pruning from Scratch, Wang et al., AAAI 2020, arXiv 1909.12579) we already know roughly how wide
each gene should be, so the first ``n_startup_trials`` draw every gene from a normal prior around
the gates' kept width (snapped to the gene's grid) and then hand over to the wrapped sampler.
The wrapping follows Optuna's ``PartialFixedSampler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, TPESampler

from nas_prune.gates._priors import gene_prior

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

    from nas_prune.gates._gates import Gates
    from nas_prune.space import ChannelSpace

__all__ = ["GatePriorSampler"]


class GatePriorSampler(BaseSampler):
    """Sample the first trials' gene widths from the gate prior, then defer to ``base_sampler``.

    Parameters that are not genes of ``space`` (the user's other hyper-parameters), log-scaled or
    categorical distributions, and every parameter after the startup trials are left to the
    wrapped sampler, so it behaves exactly like ``base_sampler`` apart from where it starts.

    Example:

        .. code-block:: python

            sampler = GatePriorSampler(gates=gates, space=space, seed=0)
            study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
            study.optimize(lambda t: evaluate(space.suggest(t)), n_trials=50)

    Args:
        gates: Gates learned on ``space`` (:func:`~nas_prune.gates.learn_gates`).
        space: The channel space the trials suggest from.
        base_sampler: Sampler to wrap (default: ``TPESampler(seed=seed)``); NSGA-II works too.
        n_startup_trials: Trials (by trial number) whose genes come from the prior.
        seed: Seed of the prior draws.
    """

    def __init__(
        self,
        *,
        gates: "Gates",
        space: "ChannelSpace",
        base_sampler: BaseSampler | None = None,
        n_startup_trials: int = 10,
        seed: int | None = None,
    ) -> None:
        gates.check_space(space)
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials={n_startup_trials} must be >= 0")
        self._base_sampler = base_sampler if base_sampler is not None else TPESampler(seed=seed)
        self._n_startup_trials = n_startup_trials
        self._priors = {g.name: gene_prior(gates, g) for g in space.searchable_genes}
        self._seed = seed
        self._rng = np.random.RandomState(seed)

    @property
    def base_sampler(self) -> BaseSampler:
        return self._base_sampler

    def _in_startup(self, trial: "FrozenTrial") -> bool:
        return trial.number < self._n_startup_trials

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._base_sampler.reseed_rng()

    def infer_relative_search_space(self, study: "Study", trial: "FrozenTrial") -> dict[str, BaseDistribution]:
        search_space = self._base_sampler.infer_relative_search_space(study, trial)
        if self._in_startup(trial):  # genes are drawn independently from the prior
            for name in self._priors:
                search_space.pop(name, None)
        return search_space

    def sample_relative(
        self, study: "Study", trial: "FrozenTrial", search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self._in_startup(trial):
            return self._base_sampler.sample_relative(study, trial, search_space)
        genes = {k: d for k, d in search_space.items() if k in self._priors and self._numeric(d)}
        rest = {k: d for k, d in search_space.items() if k not in genes}
        params = self._base_sampler.sample_relative(study, trial, rest) if rest else {}
        params.update({k: self._draw(self._priors[k], d) for k, d in genes.items()})
        return params

    def sample_independent(
        self, study: "Study", trial: "FrozenTrial", param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        prior = self._priors.get(param_name)
        if prior is None or not self._in_startup(trial) or not self._numeric(param_distribution):
            return self._base_sampler.sample_independent(study, trial, param_name, param_distribution)
        return self._draw(prior, param_distribution)

    @staticmethod
    def _numeric(dist: BaseDistribution) -> bool:
        return isinstance(dist, (IntDistribution, FloatDistribution)) and not dist.log

    def _draw(self, prior: tuple[float, float], dist: BaseDistribution) -> Any:
        """A discretised normal draw: clip to the distribution's range, snap to its step."""
        assert isinstance(dist, (IntDistribution, FloatDistribution))
        mean, sigma = prior
        value = min(max(float(self._rng.normal(mean, sigma)), dist.low), dist.high)
        step = dist.step
        if step is not None:
            value = dist.low + round((value - dist.low) / step) * step
            if value > dist.high:
                value -= step
        if isinstance(dist, IntDistribution):
            return int(round(value))
        return float(value)

    def before_trial(self, study: "Study", trial: "FrozenTrial") -> None:
        self._base_sampler.before_trial(study, trial)

    def after_trial(
        self, study: "Study", trial: "FrozenTrial", state: "TrialState", values: Sequence[float] | None
    ) -> None:
        self._base_sampler.after_trial(study, trial, state, values)
