"""Budgets (FLOPs, parameters, predicted latency) and the binary search that meets one.

Pruning from Scratch (Wang et al., AAAI 2020, arXiv 1909.12579) turns learned gates into an
architecture by keeping the globally largest gates and bisecting how many to keep until the
budget holds. nas-prune bisects the number ``k`` of globally top-ranked channels, gives every gene
at least its smallest choice (no gene is ever emptied, unlike the reference code) and snaps each
gene *down* to its grid so that the budget still holds after snapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas_prune.budget import LatencyLimit, LatencyPredictor, parse_count
from nas_prune.errors import NasPruneError
from nas_prune.space import Architecture, ChannelSpace

if TYPE_CHECKING:
    from nas_prune.gates._gates import Gates

__all__ = ["Budget", "prune", "architecture_at"]


@dataclass(frozen=True)
class Budget:
    """An upper bound on one cost of an architecture.

    Attributes:
        kind: ``"flops"``, ``"params"`` or ``"latency"``.
        value: For FLOPs/params, a fraction of the full model (<= 1) or an absolute count (> 1);
            for latency, milliseconds.
        table: For latency, the path of a latency table or any object with ``predict(arch) -> ms``
            (a :class:`~nas_prune.budget.LatencyPredictor`).
        relative: For latency, ``value`` is a fraction of the unpruned model's predicted latency.
    """

    kind: str
    value: float
    table: Any = None
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> "Budget":
        """Parse ``flops:0.5``, ``params:0.5``, ``flops:120M``, ``latency:TABLE:1.8ms`` or ``latency:TABLE:0.5x``.

        The latency is in the budget language of :mod:`nas_prune.budget` (a bare number is
        milliseconds here); ``0.5x`` is a fraction of the unpruned model's latency as the table
        predicts it.

        Raises:
            NasPruneError: the text is none of these forms.
        """
        fix = "use flops:0.5, params:0.5, flops:120M or latency:TABLE.json:1.8ms"
        kind, _, rest = str(text).partition(":")
        kind = kind.strip().lower()
        if kind == "latency":
            table, _, ms = rest.rpartition(":")
            if not table:
                raise NasPruneError(f"budget {text!r} is not valid: {fix}")
            try:
                limit = LatencyLimit.parse(ms, bare=True)
            except NasPruneError as e:
                raise NasPruneError(f"budget {text!r}: {e}") from None
            return cls("latency", limit.value, table, limit.relative)
        if kind not in ("flops", "params"):
            raise NasPruneError(f"budget {text!r} has unknown kind {kind!r}: {fix}")
        try:
            value = parse_count(rest)
        except NasPruneError:
            raise NasPruneError(f"budget {text!r} is not valid: {fix}") from None
        return cls(kind, value)

    def __str__(self) -> str:
        if self.kind == "latency":
            limit = LatencyLimit(self.value, self.relative)
            return f"latency:{self.table if isinstance(self.table, str) else 'table'}:{limit}"
        return f"{self.kind}:{self.value:g}"

    def bind(self, space: ChannelSpace) -> "BoundBudget":
        """Resolve the budget against ``space``: absolute limit and cost function."""
        if self.kind == "latency":
            predictor = self.table
            if isinstance(predictor, str) or hasattr(predictor, "__fspath__"):
                from nas_prune.latency import LatencyTable  # lazy: optional stage

                predictor = LatencyTable.load(predictor)
                predictor.check_space(space)
            if not hasattr(predictor, "predict"):
                raise NasPruneError("a latency budget needs a table (or an object with predict(arch) -> ms)")
            table: LatencyPredictor = predictor
            limit = LatencyLimit(self.value, self.relative).to_ms(table.predict(space.full()) if self.relative else 1.0)
            return BoundBudget(self, limit, lambda arch: float(table.predict(arch)))
        full = space.count(space.full())[self.kind]
        limit = self.value * full if self.value <= 1 else self.value
        return BoundBudget(self, limit, lambda arch: float(space.count(arch)[self.kind]))


@dataclass(frozen=True)
class BoundBudget:
    """A budget resolved for one space: ``cost(arch) <= limit`` must hold."""

    budget: Budget
    limit: float
    cost: Any

    def holds(self, arch: Architecture) -> bool:
        return self.cost(arch) <= self.limit


def _ranking(gates: "Gates", space: ChannelSpace, ratio: float | None) -> list[tuple[str, int]]:
    scores = gates.scores(ratio)
    order = sorted(((-v, g, i) for g, vals in scores.items() for i, v in enumerate(vals)))
    return [(g, i) for _, g, i in order]


def architecture_at(space: ChannelSpace, ranking: list[tuple[str, int]], k: int) -> Architecture:
    """Keep the top ``k`` channels of ``ranking``; each gene snapped down to its choices (>= smallest).

    A searchable gene without gates (e.g. a slice of a concatenation) keeps the same overall
    fraction ``k / len(ranking)`` of its width.
    """
    kept: dict[str, int] = {}
    for g, _ in ranking[:k]:
        kept[g] = kept.get(g, 0) + 1
    gated = {g for g, _ in ranking}
    fraction = k / max(1, len(ranking))
    channels = {}
    for gene in space.genes:
        if not gene.searchable:
            channels[gene.name] = gene.width
            continue
        n = kept.get(gene.name, 0) if gene.name in gated else int(fraction * gene.width)
        below = [c for c in gene.choices if c <= n]
        channels[gene.name] = below[-1] if below else gene.low
    return Architecture(space.id, channels)


def prune(gates: "Gates", space: ChannelSpace, budget: Budget, *, ratio: float | None = None) -> Architecture:
    """The widest gate-ranked architecture of ``space`` that fits ``budget``.

    Bisects ``k``, the number of globally top-ranked channels kept (about log2 of the channel
    count: 10-20 steps); costs grow with ``k``, so the largest feasible ``k`` is found exactly.

    Args:
        gates: Learned gates of ``space``.
        space: The space to snap to.
        budget: The cost bound.
        ratio: Rank channels by the gates of this target ratio only (default: all runs).

    Raises:
        SpaceMismatchError: the gates belong to another space.
        NasPruneError: even the smallest architecture breaks the budget.
    """
    gates.check_space(space)
    bound = budget.bind(space)
    ranking = _ranking(gates, space, ratio)
    lo, hi = 0, len(ranking)
    if not bound.holds(architecture_at(space, ranking, lo)):
        smallest = bound.cost(architecture_at(space, ranking, lo))
        raise NasPruneError(
            f"budget {budget} cannot be met: the smallest architecture of the space costs {smallest:.4g} "
            f"(limit {bound.limit:.4g}); raise the budget"
        )
    if bound.holds(architecture_at(space, ranking, hi)):
        return architecture_at(space, ranking, hi)
    while hi - lo > 1:  # invariant: lo feasible, hi infeasible
        mid = (lo + hi) // 2
        if bound.holds(architecture_at(space, ranking, mid)):
            lo = mid
        else:
            hi = mid
    return architecture_at(space, ranking, lo)
