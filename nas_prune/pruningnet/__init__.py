"""PruningNet: MetaPruning's weight-generating evaluator for any channel space (arXiv 1903.10258)."""

from __future__ import annotations

from nas_prune.pruningnet._channels import ChannelIndex
from nas_prune.pruningnet._check import CHECK_WIDTHS, uniform_width_check
from nas_prune.pruningnet._evaluator import TARGET_SE, PruningNetEvaluator, images_for_se
from nas_prune.pruningnet._generators import (
    GENERATORS,
    LowRankGenerator,
    MLPGenerator,
    generator_names,
    get_generator,
    register_generator,
)
from nas_prune.pruningnet._net import PNET_FORMAT, PNET_VERSION, PruningNet
from nas_prune.pruningnet._sampling import SAMPLING_MODES, ArchSampler
from nas_prune.pruningnet._train import DEFAULT_EPOCHS, default_epochs, train_pruningnet

__all__ = [
    "ArchSampler",
    "CHECK_WIDTHS",
    "ChannelIndex",
    "DEFAULT_EPOCHS",
    "default_epochs",
    "GENERATORS",
    "LowRankGenerator",
    "MLPGenerator",
    "PNET_FORMAT",
    "PNET_VERSION",
    "PruningNet",
    "PruningNetEvaluator",
    "TARGET_SE",
    "images_for_se",
    "SAMPLING_MODES",
    "generator_names",
    "get_generator",
    "register_generator",
    "train_pruningnet",
    "uniform_width_check",
]
