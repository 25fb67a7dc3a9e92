"""nas-prune: hardware-aware channel-pruning NAS for Optuna and NNI.

One call runs the whole job (:func:`nas_prune.prune`); its stages, in the order ``nas-prune run`` runs them
(the registry :data:`nas_prune.pipeline.STAGES`)::

    space -> teacher -> latency -> calibration -> budget -> gates -> pruningnet -> search -> finalists -> select -> distill -> check -> report

Names are imported lazily so that light entry points (the on-device latency runner, which has
only numpy and onnxruntime) never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "prune": "nas_prune.api",
    "PruneResult": "nas_prune.api",
    "run_pipeline": "nas_prune.pipeline",
    "RunConfig": "nas_prune.pipeline",
    "ArchitectureObjective": "nas_prune.search",
    "LatencyBudget": "nas_prune.search",
    "ChannelSpace": "nas_prune.space",
    "Architecture": "nas_prune.space",
    "materialize": "nas_prune.space",
    "load_data": "nas_prune.data",
    "LatencyTable": "nas_prune.latency",
    "Gates": "nas_prune.gates",
    "PruningNet": "nas_prune.pruningnet",
    "PruningNetEvaluator": "nas_prune.pruningnet",
    "NasPruneError": "nas_prune.errors",
    "train_teacher": "nas_prune.teacher",
    "prepare_teacher": "nas_prune.teacher",
    "load_weights": "nas_prune.pretrained",
    "Preprocess": "nas_prune.data",
    "pick_trial": "nas_prune.search",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas_prune' has no attribute {name!r}")
