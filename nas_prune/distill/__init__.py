"""Finishing a chosen architecture: distillation from the unpruned network, and the measured speed-up.

Losses: :class:`HintonKD` (Hinton et al. 2015), :class:`CorrelationCongruence` and
:class:`ClassUniformBatchSampler` (CCKD, Peng et al. ICCV 2019), :class:`DAFLGenerator` and
:class:`DAFLLoss` (DAFL, Chen et al. ICCV 2019). :func:`distill` runs one method end to end.
"""

from __future__ import annotations

from nas_prune.distill._config import METHODS, DistillConfig
from nas_prune.distill._correlation import CorrelationCongruence, taylor_rbf_correlation
from nas_prune.distill._dafl import DAFLLoss, DAFLTerms
from nas_prune.distill._features import classifier_layer, penultimate_features
from nas_prune.distill._generator import DAFLGenerator
from nas_prune.distill._init import INIT_CHOICES, init_student
from nas_prune.distill._kd import HintonKD, soft_kl
from nas_prune.distill._run import METRICS_FORMAT, distill
from nas_prune.distill._sampler import ClassUniformBatchSampler

__all__ = [
    "ClassUniformBatchSampler",
    "CorrelationCongruence",
    "DAFLGenerator",
    "DAFLLoss",
    "DAFLTerms",
    "DistillConfig",
    "HintonKD",
    "INIT_CHOICES",
    "METHODS",
    "METRICS_FORMAT",
    "classifier_layer",
    "distill",
    "init_student",
    "penultimate_features",
    "soft_kl",
    "taylor_rbf_correlation",
]
