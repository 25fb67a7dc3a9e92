"""GatePriorSampler against Optuna's own sampler test cases (``optuna.testing.pytest_samplers``).

Three set-ups: parameters that are not genes (everything goes to the wrapped TPE), parameters that
*are* genes during the startup trials (the prior draws must satisfy every distribution's
contract), and a relative (multivariate TPE) base sampler.
"""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase, RelativeSamplerTestCase

from nas_prune.gates import GatePriorSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class TestNonGeneParamsFallBackToTPE(BasicSamplerTestCase, MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self, tiny_gates, tiny_space):
        return lambda: GatePriorSampler(gates=tiny_gates, space=tiny_space, seed=0)


class TestPriorDrawsForGenes(BasicSamplerTestCase, MultiObjectiveSamplerTestCase):
    """Genes named ``x`` and ``y`` and a startup phase that never ends: every numeric draw is the prior's."""

    @pytest.fixture
    def sampler(self, xy_space_and_gates):
        space, gates = xy_space_and_gates
        return lambda: GatePriorSampler(gates=gates, space=space, n_startup_trials=10**9, seed=0)


class TestRelativeBaseSampler(RelativeSamplerTestCase):
    @pytest.fixture(params=[0, 10**9], ids=["wrapped", "prior"])  # who samples the genes x and y
    def sampler(self, xy_space_and_gates, request):
        space, gates = xy_space_and_gates
        return lambda: GatePriorSampler(gates=gates, space=space, n_startup_trials=request.param, seed=0,
                                        base_sampler=optuna.samplers.TPESampler(multivariate=True, n_startup_trials=0,
                                                                                 seed=0))
