"""The picks a user would make without a search (nas_prune.search.BASELINES), aimed at a cost."""

from __future__ import annotations

import pytest


def _flops(space):
    return lambda arch: float(space.count(arch)["flops"])


def test_uniform_under_is_the_widest_uniform_width_at_most_the_target(tiny_space):
    from nas_prune.search import uniform_under

    cost, full = _flops(tiny_space), float(tiny_space.count(tiny_space.full())["flops"])
    arch = uniform_under(tiny_space, cost, 0.5 * full)
    assert cost(arch) <= 0.5 * full
    assert uniform_under(tiny_space, cost, 2 * full).channels == tiny_space.full().channels


@pytest.mark.parametrize("importance", ["l1", "group_norm", "taylor"])
def test_magnitude_pruning_reaches_the_target_and_leaves_the_teacher_alone(tiny_space, importance):
    import torch

    from nas_prune.search import MagnitudePruner

    torch.manual_seed(0)  # the tiny space's grid is coarse: some random weights leave a target out of reach
    model = tiny_space.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost, full = _flops(tiny_space), float(tiny_space.count(tiny_space.full())["flops"])
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g))]
    arch, ratio = MagnitudePruner(tiny_space, model, importance=importance, batches=batches).aim(cost, 0.6 * full)
    assert cost(arch) <= 0.6 * full and 0 < ratio < 0.95  # reached by pruning, not by the cap
    assert all(arch.channels[g.name] <= g.width for g in tiny_space.searchable_genes)
    assert all((model.state_dict()[k] == v).all() for k, v in before.items())


def test_the_registry_names_its_baselines():
    from nas_prune.search import BASELINES, baseline_names, get_baseline

    assert baseline_names() == ["uniform", "magnitude"] == list(BASELINES)
    with pytest.raises(KeyError, match="the baselines are uniform, magnitude"):
        get_baseline("taylor")
    from nas_prune.search import MagnitudePruner

    with pytest.raises(ValueError, match="importance 'random'"):
        MagnitudePruner(None, None, importance="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'taylor' reads gradients"):
        MagnitudePruner(None, None, importance="taylor")  # type: ignore[arg-type]
