"""OptunaHub package: channel-search startup trials drawn from learned channel gates, from nas-prune.

Loaded with ``optunahub.load_module("samplers/nas_prune_gate_prior")`` (or ``load_local_module``);
the sampler itself lives in nas-prune (``pip install nas-prune``).
"""

from __future__ import annotations

from nas_prune.gates import GatePriorSampler, Gates, learn_gates
from nas_prune.search import ArchitectureObjective, LatencyBudget
from nas_prune.space import ChannelSpace

__all__ = ["ArchitectureObjective", "ChannelSpace", "GatePriorSampler", "Gates", "LatencyBudget", "learn_gates"]
