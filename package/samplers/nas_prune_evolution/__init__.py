"""OptunaHub package: MetaPruning's evolutionary channel search, from nas-prune.

Loaded with ``optunahub.load_module("samplers/nas_prune_evolution")`` (or ``load_local_module``);
the sampler itself lives in nas-prune (``pip install nas-prune``), so the hub and the package
never diverge.
"""

from __future__ import annotations

from nas_prune.search import ArchitectureObjective, EvolutionSampler, LatencyBudget, feasible_under
from nas_prune.space import ChannelSpace

__all__ = ["ArchitectureObjective", "ChannelSpace", "EvolutionSampler", "LatencyBudget", "feasible_under"]
