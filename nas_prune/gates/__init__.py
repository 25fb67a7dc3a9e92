"""Channel gates learned from random weights (Pruning from Scratch) and the search priors they give.

Wang et al., "Pruning from Scratch", AAAI 2020 (arXiv 1909.12579): gates trained on a randomly
initialised network reveal good channel widths at a fraction of the cost of pretraining.
:func:`learn_gates` learns them, :meth:`Gates.prune` turns them into an architecture under a
FLOPs / parameter / latency :class:`Budget`, and the priors seed NNI
(:meth:`Gates.nni_search_space`) and Optuna (:class:`GatePriorSampler`,
:func:`enqueue_gate_architectures`).
"""

from __future__ import annotations

from nas_prune.gates._budget import Budget, architecture_at, prune
from nas_prune.gates._enqueue import enqueue_gate_architectures, grid_value
from nas_prune.gates._gates import GATES_FORMAT, GATES_VERSION, GateRun, Gates
from nas_prune.gates._hooks import GateHooks, gate_targets
from nas_prune.gates._learn import (
    MIN_STEPS,
    PRUNE_SHARE,
    default_epochs,
    default_gamma,
    gate_epochs,
    kept_gates,
    learn_gates,
)
from nas_prune.gates._priors import decode_prior_params, gene_prior, nni_prior_space
from nas_prune.gates._sampler import GatePriorSampler

__all__ = [
    "GATES_FORMAT",
    "GATES_VERSION",
    "MIN_STEPS",
    "gate_epochs",
    "PRUNE_SHARE",
    "architecture_at",
    "Budget",
    "decode_prior_params",
    "default_epochs",
    "default_gamma",
    "enqueue_gate_architectures",
    "gate_targets",
    "GateHooks",
    "GatePriorSampler",
    "GateRun",
    "Gates",
    "gene_prior",
    "grid_value",
    "kept_gates",
    "learn_gates",
    "nni_prior_space",
    "prune",
]
