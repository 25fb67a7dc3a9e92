"""A new sampler is one factory plus one registration line; every entry point then knows it by name."""

from __future__ import annotations

import optuna
import pytest

import nas_prune.search._samplers as samplers_module
from nas_prune.errors import NasPruneError
from nas_prune.search import (
    SAMPLERS,
    LatencyBudget,
    SamplerRequest,
    check_sampler,
    make_sampler,
    register_sampler,
    run_search,
    sampler_help,
    sampler_names,
)
from tests.search.standins import FakeEvaluator, FakeTable


class WidestFirst(optuna.samplers.RandomSampler):
    """A toy sampler: random, and it remembers the request it was built from."""

    def __init__(self, req: SamplerRequest) -> None:
        super().__init__(seed=req.seed)
        self.req = req


@pytest.fixture
def registry(monkeypatch):
    """The sampler registry, restored after the test (a toy sampler does not leak into other tests)."""
    monkeypatch.setattr(samplers_module, "_REGISTRY", dict(samplers_module._REGISTRY))


def test_a_registered_sampler_is_used_by_name(registry, tiny_space, tmp_path):
    register_sampler("toy", summary="a toy for the registry test")(WidestFirst)  # the one registration line

    assert sampler_names()[-1] == "toy" and "toy (a toy for the registry test)" in sampler_help()
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.5ms"])
    sampler = make_sampler("toy", space=tiny_space, budgets=budgets, seed=3, population_size=7)
    assert isinstance(sampler, WidestFirst)
    assert (sampler.req.space, sampler.req.budgets, sampler.req.seed, sampler.req.population_size) == (
        tiny_space, tuple(budgets), 3, 7)

    study, result = run_search(tiny_space, FakeEvaluator(tiny_space), budgets, storage=f"sqlite:///{tmp_path / 's.db'}",
                               study_name="toy", n_trials=4, sampler="toy", seed=0, heartbeat_interval=None)
    assert isinstance(study.sampler, WidestFirst) and result["best"]["latency_ms"]["fake-cpu"] <= 0.5

    from nas_prune.pipeline import RunConfig

    assert RunConfig(sampler="toy").sampler == "toy"  # nas-prune run --sampler toy passes validation


def test_unknown_and_duplicate_names_are_refused(registry):
    with pytest.raises(NasPruneError, match="unknown sampler 'nope': choose one of tpe, nsga2, evolution"):
        check_sampler("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("tpe")(WidestFirst)
    assert SAMPLERS == ("tpe", "nsga2", "evolution", "gate-prior", "random") == sampler_names()


def test_the_command_line_help_is_read_from_the_registry():
    import inspect

    from nas_prune.cli._run import run
    from nas_prune.cli._search import search

    for command in (search, run):
        help_text = inspect.signature(command).parameters["sampler"].default.help
        assert all(f"{name} (" in help_text for name in SAMPLERS), help_text
