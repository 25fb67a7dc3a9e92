"""nas-prune: hardware-aware channel-pruning NAS for Optuna and NNI.

The pipeline, one subpackage per stage::

    space -> gates -> pruningnet -> latency -> search -> distill -> report

Names are imported lazily so that light entry points (the on-device latency runner, which has
only numpy and onnxruntime) never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
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
