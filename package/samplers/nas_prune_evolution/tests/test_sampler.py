"""The package loaded the way OptunaHub loads it; the sampler redraws over-budget, repeated candidates."""

from __future__ import annotations

from pathlib import Path

import optuna
import optunahub
import torch
from torch import nn

REGISTRY = Path(__file__).resolve().parents[3]


def small_net(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes),
    )


def test_evolution_sampler_from_the_hub_layout() -> None:
    module = optunahub.load_local_module("samplers/nas_prune_evolution", registry_root=str(REGISTRY))
    space = module.ChannelSpace.from_model(small_net(), torch.randn(1, 3, 8, 8))
    limit = 0.5 * space.count(space.full())["flops"]
    feasible = lambda arch: space.count(arch)["flops"] <= limit  # noqa: E731
    sampler = module.EvolutionSampler(space=space, population_size=4, num_parents=2, n_mutation=2, n_crossover=2,
                                      feasibility=feasible, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen = []

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        seen.append(tuple(sorted(arch.channels.items())))
        assert feasible(arch)  # never proposed over budget
        return space.count(arch)["flops"] / limit

    study.optimize(objective, n_trials=10)
    assert len(set(seen)) == 10  # never proposed twice
