"""Gate priors as NNI search spaces and as Optuna startup draws (round trips into valid spaces)."""

from __future__ import annotations

import optuna
import pytest

from nas_prune.errors import NasPruneError
from nas_prune.gates import GatePriorSampler, decode_prior_params, enqueue_gate_architectures, gene_prior

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("kind", ["qnormal", "quniform"])
def test_nni_space_is_valid_for_nni_and_decodes(tiny_gates, tiny_space, kind):
    from nni.algorithms.hpo.random_tuner import RandomTuner
    from nni.algorithms.hpo.tpe_tuner import TpeTuner
    from nni.common.hpo_utils import validate_search_space

    space = tiny_gates.nni_search_space(tiny_space, kind=kind)
    assert set(space) == {g.name for g in tiny_space.searchable_genes}
    assert validate_search_space(space, raise_exception=True)
    for g in tiny_space.searchable_genes:
        spec = space[g.name]
        assert spec["_type"] == kind and spec["_value"][-1] == g.step
        if kind == "qnormal":
            mean, sigma = gene_prior(tiny_gates, g)
            assert spec["_value"][:2] == [round(mean, 3), round(sigma, 3)] and g.low <= mean <= g.high
        else:
            lo, hi = spec["_value"][:2]
            assert g.low <= lo < hi <= g.high and (lo - g.low) % g.step == 0
    from nni import NoMoreTrialError

    for tuner in (RandomTuner(seed=0), TpeTuner(seed=0)):
        tuner.update_search_space(space)
        for i in range(20):
            try:
                params = tuner.generate_parameters(i)
            except NoMoreTrialError:  # a narrowed space of the tiny model is exhausted
                break
            arch = decode_prior_params(tiny_space, params)
            tiny_space.validate(arch)
            if kind == "quniform":  # inside the gene's range: the plain decoder accepts it too
                assert tiny_space.decode(params) == arch


def test_unknown_prior_kind(tiny_gates, tiny_space):
    with pytest.raises(NasPruneError, match="qnormal or quniform"):
        tiny_gates.nni_search_space(tiny_space, kind="gaussian")


def test_startup_trials_follow_the_prior_then_the_base_sampler_takes_over(xy_space_and_gates):
    space, gates = xy_space_and_gates  # priors: x ~ (8, 2) -> sigma 2; y ~ (3, 1)
    sampler = GatePriorSampler(gates=gates, space=space, n_startup_trials=200, seed=0)
    study = optuna.create_study(sampler=sampler)
    xs = []
    for _ in range(200):
        t = study.ask()
        xs.append(t.suggest_int("x", 2, 16, step=2))
        t.suggest_float("lr", 1e-4, 1e-1, log=True)  # not a gene: the base sampler's
        study.tell(t, 0.0)
    mean = sum(xs) / len(xs)
    assert abs(mean - 8) < 0.6 and min(xs) >= 2 and max(xs) <= 16 and all(x % 2 == 0 for x in xs)
    assert 1.2 < (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5 < 3.0


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_after_startup_the_wrapped_sampler_decides(xy_space_and_gates):
    space, gates = xy_space_and_gates
    fixed = optuna.samplers.PartialFixedSampler({"x": 16}, optuna.samplers.RandomSampler(seed=0))
    sampler = GatePriorSampler(gates=gates, space=space, base_sampler=fixed, n_startup_trials=3, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_int("x", 2, 16, step=2), n_trials=8)
    xs = [t.params["x"] for t in study.trials]
    assert xs[3:] == [16] * 5  # the wrapped sampler
    assert xs[:3] != [16] * 3  # the prior (mean 8, sigma 2)


def test_optuna_study_on_a_real_space_decodes(tiny_gates, tiny_space):
    sampler = GatePriorSampler(gates=tiny_gates, space=tiny_space, n_startup_trials=5, seed=1)
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    archs = []

    def objective(trial):
        arch = tiny_space.suggest(trial)
        archs.append(arch)
        c = tiny_space.count(arch)
        return c["params"], c["flops"]

    study.optimize(objective, n_trials=12)
    for a in archs:
        tiny_space.validate(a)


def test_nsga2_can_be_wrapped(tiny_gates, tiny_space):
    base = optuna.samplers.NSGAIISampler(seed=0, population_size=4)
    sampler = GatePriorSampler(gates=tiny_gates, space=tiny_space, base_sampler=base, n_startup_trials=4, seed=0)
    study = optuna.create_study(sampler=sampler, directions=["minimize", "minimize"])
    study.optimize(lambda t: tuple(tiny_space.count(tiny_space.suggest(t)).values()), n_trials=10)
    assert len(study.trials) == 10 and sampler.base_sampler is base


def test_same_seed_same_draws(tiny_gates, tiny_space):
    def run():
        study = optuna.create_study(sampler=GatePriorSampler(gates=tiny_gates, space=tiny_space, seed=3))
        study.optimize(lambda t: float(sum(tiny_space.suggest(t).channels.values())), n_trials=6)
        return [t.params for t in study.trials]

    assert run() == run()


def test_enqueue_gate_architectures(tiny_gates, tiny_space):
    study = optuna.create_study()
    budgets = ["flops:0.4", "flops:0.6", "params:0.6", "flops:0.6"]
    archs = enqueue_gate_architectures(study, tiny_gates, tiny_space, budgets)
    assert 1 <= len(archs) <= 3 and len({tuple(a.channels.items()) for a in archs}) == len(archs)
    seen = []
    study.optimize(lambda t: seen.append(tiny_space.suggest(t)) or 0.0, n_trials=len(archs))
    assert seen == archs
