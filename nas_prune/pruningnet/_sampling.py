"""Which candidates a PruningNet trains on: drawn by size, optionally mixed with gate priors.

Drawing every gene uniformly (MetaPruning's "a new random encoding every batch") draws networks in
a narrow band around the middle of the size range: the last channels of a wide gene then train in
about 1 % of the steps and wide candidates are scored with untrained channels. AttentiveNAS (Wang
et al., CVPR 2021, arXiv 2011.09011) draws a size target uniformly over the range first, then an
architecture near it (:func:`nas_prune.space.draw_near`), so every size trains as often.
"""

from __future__ import annotations

import math
import random
from typing import Mapping

from nas_prune.space import Architecture, ChannelSpace, Cost, draw_near, flops_cost, smallest

__all__ = ["ArchSampler", "SAMPLING_MODES"]

#: ``size``: a FLOPs target uniform over the space's range, then a random shape near it (default);
#: ``uniform``: every gene uniform over its choices (MetaPruning's original draw).
SAMPLING_MODES = ("size", "uniform")


class ArchSampler:
    """Draws training candidates for a PruningNet.

    Args:
        space: The channel space.
        prior: ``{gene: (mean, std)}`` of the kept width in channels (e.g. ``Gates.prior``). With
            probability ``prior_mix`` a candidate is drawn from these priors instead: each gene
            from ``Normal(mean, max(std, step))``, snapped to its nearest choice; the std is
            floored at one grid step, so a prior learned from a single ratio still explores.
            Genes without a prior are drawn uniformly.
        mode: ``size`` or ``uniform`` (see :data:`SAMPLING_MODES`).
        prior_mix: Share of candidates drawn from ``prior`` (1.0 when ``mode`` is ``uniform`` and a
            prior is given, the behaviour of earlier releases).
        cost: Size measure for ``mode="size"`` (default: FLOPs as a fraction of the full network).
        spread: Standard deviation of the per-gene log-offsets of a size-targeted shape.
    """

    def __init__(self, space: ChannelSpace, *, prior: Mapping[str, tuple[float, float]] | None = None,
                 mode: str = "size", prior_mix: float | None = None, cost: Cost | None = None,
                 spread: float = 0.5) -> None:
        if mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode {mode!r}: use one of {', '.join(SAMPLING_MODES)}")
        self.space = space
        self.mode = mode
        self.prior = {g: (float(m), float(s)) for g, (m, s) in (prior or {}).items()}
        for name, (mean, std) in self.prior.items():
            space.gene(name)  # unknown gene -> InvalidArchitectureError
            if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
                raise ValueError(f"prior of gene {name!r} is ({mean}, {std}): need finite mean and std >= 0")
        if prior_mix is None:
            prior_mix = 1.0 if (mode == "uniform" and self.prior) else 0.0
        if not 0.0 <= prior_mix <= 1.0:
            raise ValueError(f"prior_mix={prior_mix}: need a share in [0, 1]")
        self.prior_mix = prior_mix if self.prior else 0.0
        self.spread = float(spread)
        self.cost = cost or flops_cost(space)
        self.low = self.cost(smallest(space))
        self.high = self.cost(space.full())

    def smallest(self) -> Architecture:
        """The narrowest candidate (the sandwich rule's lower slice)."""
        return smallest(self.space)

    def sample(self, rng: random.Random) -> Architecture:
        """One training candidate."""
        if self.prior_mix and rng.random() < self.prior_mix:
            return self._from_prior(rng)
        if self.mode == "uniform":
            return Architecture(self.space.id, {g.name: rng.choice(g.choices) for g in self.space.genes})
        return draw_near(self.space, self.cost, rng.uniform(self.low, self.high), rng, spread=self.spread)

    def _from_prior(self, rng: random.Random) -> Architecture:
        channels = {}
        for g in self.space.genes:
            if g.name in self.prior and g.searchable:
                mean, std = self.prior[g.name]
                channels[g.name] = g.snap(rng.gauss(mean, max(std, float(g.step))))
            else:
                channels[g.name] = rng.choice(g.choices)
        return Architecture(self.space.id, channels)
