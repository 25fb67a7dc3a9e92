"""Finishing a chosen architecture: distillation from the unpruned network, and the measured speed-up.

Losses: :class:`HintonKD` (Hinton et al. 2015), :class:`CorrelationCongruence` and
:class:`ClassUniformBatchSampler` (CCKD, Peng et al. ICCV 2019), :class:`DAFLGenerator` and
:class:`DAFLLoss` (DAFL, Chen et al. ICCV 2019), :class:`BNStatisticsLoss` (DeepInversion, Yin et al.
CVPR 2020; method ``dafl-bn``). :func:`distill` runs one method end to end.

Extension points: a distillation method is a :class:`DistillMethod` registered with
:func:`register_method`; a student initialisation is a function registered with
:func:`register_init`. The command line's ``--method`` and ``--init`` list what is registered.
"""

from __future__ import annotations

from nas_prune.distill._bn_stats import BNStatisticsLoss
from nas_prune.distill._config import DistillConfig
from nas_prune.distill._correlation import CorrelationCongruence, taylor_rbf_correlation
from nas_prune.distill._dafl import DAFLLoss, DAFLTerms
from nas_prune.distill._dafl_bn import DAFLBNMethod
from nas_prune.distill._features import classifier_layer, penultimate_features
from nas_prune.distill._generator import DAFLGenerator
from nas_prune.distill._kd import HintonKD, soft_kl
from nas_prune.distill._latency import measure_pair
from nas_prune.distill._methods import DistillMethod, get_method, method_help, method_names, register_method
from nas_prune.distill._metrics import METRICS_FORMAT
from nas_prune.distill._run import distill
from nas_prune.distill._sampler import ClassUniformBatchSampler
from nas_prune.distill._schedule import DATA_FREE_STEPS, IMAGES_SEEN, MAX_EPOCHS, MIN_EPOCHS, default_epochs
from nas_prune.distill._student_init import INIT_CHOICES, InitKind, get_init_kind, init_help, init_names, init_student, register_init

#: The built-in methods (:func:`method_names` also lists methods registered later).
METHODS = method_names()

__all__ = [
    "BNStatisticsLoss",
    "ClassUniformBatchSampler",
    "CorrelationCongruence",
    "DAFLBNMethod",
    "DATA_FREE_STEPS",
    "DAFLGenerator",
    "DAFLLoss",
    "DAFLTerms",
    "DistillConfig",
    "DistillMethod",
    "HintonKD",
    "IMAGES_SEEN",
    "INIT_CHOICES",
    "InitKind",
    "MAX_EPOCHS",
    "METHODS",
    "METRICS_FORMAT",
    "MIN_EPOCHS",
    "classifier_layer",
    "default_epochs",
    "distill",
    "get_init_kind",
    "get_method",
    "init_help",
    "init_names",
    "init_student",
    "measure_pair",
    "method_help",
    "method_names",
    "penultimate_features",
    "register_init",
    "register_method",
    "soft_kl",
    "taylor_rbf_correlation",
]
