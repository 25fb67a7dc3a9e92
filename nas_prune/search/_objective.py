"""The Optuna objective of a channel search: suggest, constrain by latency, score with a PruningNet."""

from __future__ import annotations

import time
from typing import Any, Mapping, Protocol, Sequence

from nas_prune.search._budget import LatencyBudget
from nas_prune.search._dashboard import metric_names, name_metrics, record_dashboard_constraints
from nas_prune.space import Architecture, ChannelSpace

__all__ = [
    "ArchitectureObjective",
    "CandidateEvaluator",
    "add_latency_constraints",
    "architecture_of",
    "suggest_architecture",
]

#: User attributes every nas-prune trial carries (plain JSON: optuna-dashboard shows them as is).
ARCH_ATTR = "architecture"


class CandidateEvaluator(Protocol):
    """Scores an architecture, e.g. :class:`nas_prune.pruningnet.PruningNetEvaluator`."""

    def score(self, arch: Architecture) -> Mapping[str, float]:  # {"score"?, "accuracy", "seconds"?, ...}
        ...


def suggest_architecture(trial: Any, space: ChannelSpace) -> Architecture:
    """Suggest an architecture: one ``suggest_int(gene, low, high, step=step)`` per searchable gene.

    The parameter names are the gene names, so any Optuna sampler (TPE, NSGA-II, CMA-ES, ...) sees
    ordered integer widths, and :class:`~nas_prune.search.EvolutionSampler` recognises them.
    """
    arch = space.suggest(trial)
    trial.set_user_attr(ARCH_ATTR, dict(arch.channels))
    counts = space.count(arch)
    trial.set_user_attr("flops", int(counts["flops"]))
    trial.set_user_attr("params", int(counts["params"]))
    return arch


def add_latency_constraints(trial: Any, arch: Architecture, budgets: Sequence[LatencyBudget]) -> dict[str, float]:
    """Predict ``arch``'s latency on every table and make each budget a hard Optuna constraint.

    For each budget, ``trial.set_constraint(name, predicted_ms - budget_ms)`` (Optuna 5: feasible
    when every value is <= 0), so ``study.best_trial`` and ``study.best_trials`` only return
    architectures under every budget, and TPE / NSGA-II steer away from infeasible regions.
    The same values are also stored as the list optuna-dashboard reads (system attribute
    ``constraints``, budget order; see :mod:`nas_prune.search._dashboard`).
    The predictions are stored as user attributes ``latency_ms:<name>``.

    Returns:
        ``{name: predicted milliseconds}``.
    """
    predicted: dict[str, float] = {}
    for b in budgets:
        ms = b.predict(arch)
        predicted[b.name] = ms
        trial.set_user_attr(f"latency_ms:{b.name}", ms)
        trial.set_user_attr(f"budget_ms:{b.name}", b.budget_ms)
        trial.set_constraint(b.name, ms - b.budget_ms)
    if budgets:
        record_dashboard_constraints(trial, [predicted[b.name] - b.budget_ms for b in budgets])
    trial.set_user_attr("feasible", all(predicted[b.name] <= b.budget_ms for b in budgets))
    return predicted


def architecture_of(trial: Any, space: ChannelSpace) -> Architecture | None:
    """The architecture a (frozen) trial evaluated, or ``None`` if it did not suggest one."""
    channels = trial.user_attrs.get(ARCH_ATTR)
    if isinstance(channels, dict):
        return Architecture(space.id, {str(k): int(v) for k, v in channels.items()})
    names = [g.name for g in space.searchable_genes]
    if names and all(n in trial.params for n in names):
        return space.decode(trial.params)
    return None


class ArchitectureObjective:
    """An Optuna objective: accuracy of a candidate under hard latency budgets.

    Each call suggests an architecture (:func:`suggest_architecture`), constrains it with every
    latency table (:func:`add_latency_constraints`), and scores it with ``evaluator`` (a PruningNet:
    weights generated for the candidate, BatchNorm recalibrated, ``exp(-validation cross-entropy)``;
    MetaPruning, Liu et al., ICCV 2019). The evaluator's ``score`` is the value (its ``accuracy``
    when it has no score); its accuracy, loss and the score's standard error are kept as user
    attributes ``pnet_accuracy``, ``pnet_loss`` and ``pnet_score_se``. Infeasible candidates are not evaluated (their accuracy is recorded as
    0.0 and the constraint keeps them out of ``best_trial``); an architecture already evaluated in
    the study is never evaluated again (its result is copied, ``cached_from`` names the trial).

    Single objective: maximise accuracy. Multi-objective: maximise accuracy, minimise the predicted
    latency on the first table (FLOPs in millions when there is no table); see :attr:`directions`
    and :attr:`metric_names` (set on the study at the first trial).

    What every trial records (``trial.user_attrs``): ``architecture`` (``{gene: channels}``),
    ``flops``, ``params``, ``latency_ms:<budget>`` and ``budget_ms:<budget>`` per budget,
    ``feasible``, ``evaluated`` (False for over-budget and cached candidates), ``accuracy``,
    ``eval_seconds`` and ``cached_from`` (the trial whose result was copied). Constraints:
    ``trial.constraints[<budget>] = predicted - budget`` (and the positional copy optuna-dashboard
    reads, see :mod:`nas_prune.search._dashboard`).

    Example::

        objective = ArchitectureObjective(space=space, evaluator=evaluator, budgets=budgets)
        study = optuna.create_study(directions=objective.directions)
        study.optimize(objective, n_trials=100)
        study.best_trial.user_attrs["architecture"]
    """

    def __init__(
        self,
        *,
        space: ChannelSpace,
        evaluator: CandidateEvaluator,
        budgets: Sequence[LatencyBudget] = (),
        multi_objective: bool = False,
        evaluate_infeasible: bool = False,
        use_cache: bool = True,
    ) -> None:
        self.space = space
        self.evaluator = evaluator
        self.budgets = tuple(budgets)
        self.multi_objective = multi_objective
        self.evaluate_infeasible = evaluate_infeasible
        self.use_cache = use_cache

    @classmethod
    def from_pruningnet(
        cls,
        *,
        space: ChannelSpace,
        pnet: Any,
        data: Any,
        budgets: Sequence[LatencyBudget] = (),
        recal_batches: int = 20,
        batch_size: int = 128,
        val_batches: int | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> "ArchitectureObjective":
        """The objective scoring candidates with a trained PruningNet on your data.

        ``data`` is a :class:`~nas_prune.data.DataBundle` (``load_data(...)``,
        ``make_bundle(...)``) or ``(train, val[, test])`` splits (datasets, loaders or
        ``(images, labels)`` tensors); its class count is checked against the space first.
        Other keyword arguments go to the constructor (``multi_objective``, ...).

        Raises:
            DataError: the data does not fit the space (class count, image size) or is unusable.
        """
        from nas_prune.data import check_num_classes, to_bundle
        from nas_prune.pruningnet import PruningNetEvaluator

        bundle = to_bundle(data)
        check_num_classes(space, bundle)
        evaluator = PruningNetEvaluator(pnet, bundle, recal_batches=recal_batches, batch_size=batch_size,
                                        val_batches=val_batches, seed=seed)
        return cls(space=space, evaluator=evaluator, budgets=budgets, **kwargs)

    @property
    def directions(self) -> list[str]:
        """Study directions matching the returned values."""
        return ["maximize", "minimize"] if self.multi_objective else ["maximize"]

    @property
    def metric_names(self) -> list[str]:
        """Names of the returned values (``study.set_metric_names``; shown by optuna-dashboard)."""
        return metric_names(multi_objective=self.multi_objective, budget_names=[b.name for b in self.budgets])

    def __call__(self, trial: Any) -> float | tuple[float, float]:
        study = getattr(trial, "study", None)
        if study is not None:
            name_metrics(study, self.metric_names)
        arch = suggest_architecture(trial, self.space)
        predicted = add_latency_constraints(trial, arch, self.budgets)
        feasible = all(predicted[b.name] <= b.budget_ms for b in self.budgets)
        score, accuracy = self._score(trial, arch, feasible)
        trial.set_user_attr("score", score)
        trial.set_user_attr("accuracy", accuracy)
        if not self.multi_objective:
            return score
        if self.budgets:
            cost = predicted[self.budgets[0].name]
        else:
            cost = trial.user_attrs.get("flops", self.space.count(arch)["flops"]) / 1e6
        return score, float(cost)

    def _score(self, trial: Any, arch: Architecture, feasible: bool) -> tuple[float, float]:
        """``(score, accuracy)`` of a candidate: 0 for an infeasible one, copied for a repeated one."""
        if not feasible and not self.evaluate_infeasible:
            trial.set_user_attr("evaluated", False)
            return 0.0, 0.0
        if self.use_cache:
            hit = _cached(trial, arch)
            if hit is not None:
                number, attrs = hit
                trial.set_user_attr("evaluated", False)
                trial.set_user_attr("cached_from", number)
                for key, value in attrs.items():
                    if key.startswith("pnet_"):
                        trial.set_user_attr(key, value)
                score = float(attrs.get("score", attrs["accuracy"]))
                return score, float(attrs["accuracy"])
        start = time.perf_counter()
        result = self.evaluator.score(arch)
        trial.set_user_attr("evaluated", True)
        trial.set_user_attr("eval_seconds", float(result.get("seconds", time.perf_counter() - start)))
        for key in ("accuracy", "loss", "score_se"):  # what the evaluator measured beside its score
            if key in result:
                trial.set_user_attr(f"pnet_{key}", float(result[key]))
        score = float(result.get("score", result["accuracy"]))
        return score, float(result.get("accuracy", score))


def _cached(trial: Any, arch: Architecture) -> tuple[int, dict[str, Any]] | None:
    """``(trial number, user attributes)`` of a completed trial of the study that evaluated ``arch``."""
    study = getattr(trial, "study", None)
    if study is None:
        return None
    from optuna.trial import TrialState

    channels = dict(arch.channels)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("evaluated") and t.user_attrs.get(ARCH_ATTR) == channels and "accuracy" in t.user_attrs:
            return t.number, dict(t.user_attrs)
    return None
