"""nas-prune's search strategies as NNI tuners: MetaPruning's evolution and the gate prior.

Register them once (``nnictl algo register --meta examples/nni/nas_prune_tuners.yml``) and name
them in an experiment's ``config.yml``::

    tuner:
      name: NasPruneEvolution          # or NasPruneGatePrior (needs classArgs.gates)
      classArgs:
        space: /abs/path/space.json    # the channel space the trials decode
        tables: [/abs/path/table.json] # optional: candidates over a budget are redrawn, never sent
        budgets: [0.5x]                # one per table or one for all (0.5x: of the unpruned model)
        population_size: 20

Each tuner keeps an in-memory Optuna study driven by nas-prune's sampler (the same
:class:`~nas_prune.search.EvolutionSampler` / ``GatePriorSampler`` that ``nas-prune search``
uses): ``generate_parameters`` asks it for an architecture and sends ``{gene: channels}`` (the
names of the space's ``quniform`` NNI search space), and ``receive_trial_result`` tells it the
trial's ``default`` metric. Use the space's plain search space (``space.nni_search_space()``),
not the gates' ``qnormal`` priors: the gate-prior tuner applies the priors itself.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

from nni.tuner import Tuner

from nas_prune.errors import NasPruneError

__all__ = ["EvolutionTuner", "GatePriorTuner"]


class _SamplerTuner(Tuner):
    """An NNI tuner proposing the architectures of a nas-prune Optuna sampler (ask and tell)."""

    sampler_name = "evolution"

    def __init__(
        self,
        space: str | os.PathLike[str],
        tables: Sequence[str | os.PathLike[str]] = (),
        budgets: Sequence[str | float] = (),
        gates: str | os.PathLike[str] | None = None,
        seed: int | None = None,
        population_size: int = 50,
        optimize_mode: str = "maximize",
    ) -> None:
        import optuna

        from nas_prune.search._budget import LatencyBudget
        from nas_prune.search._load import load_gates, load_tables
        from nas_prune.search._samplers import make_sampler
        from nas_prune.search._study import check_budgets_reachable
        from nas_prune.space import ChannelSpace

        if optimize_mode not in ("maximize", "minimize"):
            raise NasPruneError(f"optimize_mode {optimize_mode!r}: use maximize or minimize")
        if bool(tables) != bool(budgets):
            raise NasPruneError("classArgs tables and budgets go together: give both (one budget per table or one "
                                "for all) or neither")
        self.space = ChannelSpace.load(space)
        self.budgets = (LatencyBudget.for_tables(load_tables(list(tables), self.space), list(budgets),
                                                 reference=self.space.full()) if tables else [])
        check_budgets_reachable(self.space, self.budgets)
        loaded_gates = load_gates(gates, self.space) if gates is not None else None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = make_sampler(self.sampler_name, space=self.space, budgets=self.budgets, gates=loaded_gates,
                                   seed=seed, population_size=population_size)
        self.study = optuna.create_study(direction="minimize" if optimize_mode == "minimize" else "maximize",
                                         sampler=sampler)
        self._pending: dict[int, Any] = {}
        self._names = [g.name for g in self.space.searchable_genes]

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        """Check that the experiment's search space is this space's genes."""
        unknown = sorted(set(search_space) - set(self._names))
        missing = sorted(set(self._names) - set(search_space))
        if unknown or missing:
            raise NasPruneError(
                f"the NNI search space does not match space {self.space.id} (unknown {unknown}, missing {missing}): "
                "use the space's own search space (nas-prune space ... / space.nni_search_space())"
            )

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, int]:
        """Ask the sampler for an architecture; return its searchable genes' channel counts."""
        from nas_prune.search._objective import add_latency_constraints, suggest_architecture

        trial = self.study.ask()
        arch = suggest_architecture(trial, self.space)
        if self.budgets:
            add_latency_constraints(trial, arch, self.budgets)
        self._pending[parameter_id] = trial
        return {name: int(arch.channels[name]) for name in self._names}

    def receive_trial_result(self, parameter_id: int, parameters: dict[str, Any], value: Any, **kwargs: Any) -> None:
        """Tell the sampler the trial's ``default`` metric (a number or a dict with ``default``)."""
        from nni.utils import extract_scalar_reward

        trial = self._pending.pop(parameter_id, None)
        reward = float(extract_scalar_reward(value))
        if trial is not None:
            self.study.tell(trial, reward)
        else:  # a trial this tuner did not propose (customised, or from before a resume)
            self._add_finished(parameters, reward)

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Fail a proposed trial that ended without a final result."""
        from optuna.trial import TrialState

        trial = self._pending.pop(parameter_id, None)  # a success already reported its result
        if trial is not None:
            self.study.tell(trial, state=TrialState.FAIL)

    def import_data(self, data: list[dict[str, Any]]) -> None:
        """Seed the study with finished trials (``[{"parameter": ..., "value": ...}]``, NNI's resume)."""
        from nni.utils import extract_scalar_reward

        for record in data:
            self._add_finished(record["parameter"], float(extract_scalar_reward(record["value"])))

    def _add_finished(self, parameters: dict[str, Any], reward: float) -> None:
        import optuna

        from nas_prune.search._objective import ARCH_ATTR

        arch = self.space.decode(parameters)
        dists = self.space.optuna_distributions()
        params = {name: int(arch.channels[name]) for name in self._names if name in dists}
        attrs = {ARCH_ATTR: dict(arch.channels)}
        constraints = {b.name: b.violation(arch) for b in self.budgets}
        self.study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                       value=reward, user_attrs=attrs, constraints=constraints))


class EvolutionTuner(_SamplerTuner):
    """MetaPruning's evolution (top-k parents, mutation, crossover); over-budget candidates are redrawn."""

    sampler_name = "evolution"


class GatePriorTuner(_SamplerTuner):
    """TPE whose startup architectures are drawn from the gates' priors (``classArgs.gates`` required)."""

    sampler_name = "gate-prior"

    def __init__(self, space: str | os.PathLike[str], gates: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> None:
        if gates is None:
            raise NasPruneError("NasPruneGatePrior needs classArgs.gates: a gates.json from 'nas-prune gates'")
        super().__init__(space, gates=gates, **kwargs)
