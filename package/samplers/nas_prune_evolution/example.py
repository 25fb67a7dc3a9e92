"""End to end: a small CNN, a latency table measured here, a PruningNet, the evolution under 0.7x latency.

    python example.py            # about two minutes on a laptop CPU (EXAMPLE_TRIALS, EXAMPLE_EPOCHS: smaller)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import optuna
import optunahub
import torch
from torch import nn

from nas_prune.data import load_data
from nas_prune.latency import build_table
from nas_prune.pruningnet import train_pruningnet

module = optunahub.load_module("samplers/nas_prune_evolution") if os.environ.get("EXAMPLE_FROM_HUB") else None
if module is None:  # this folder, the way OptunaHub loads it
    module = optunahub.load_local_module("samplers/nas_prune_evolution",
                                         registry_root=str(Path(__file__).resolve().parents[2]))


def small_net(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="nas-prune-evolution-"))
    space = module.ChannelSpace.from_model(small_net(), torch.randn(1, 3, 16, 16), model_spec=f"{__name__}:small_net")
    table = build_table(space, output=out / "table.json", nets=8, rounds=3, device_name="this-cpu")
    budgets = module.LatencyBudget.for_tables([table], ["0.7x"], reference=space.full())
    data = load_data("digits", input_size=16)
    pnet = train_pruningnet(space, data, epochs=int(os.environ.get("EXAMPLE_EPOCHS", "2")))
    objective = module.ArchitectureObjective.from_pruningnet(space=space, pnet=pnet, data=data, budgets=budgets,
                                                             recal_batches=5, val_batches=4)
    sampler = module.EvolutionSampler(space=space, population_size=6, num_parents=2, n_mutation=3, n_crossover=3,
                                      feasibility=module.feasible_under(budgets), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=int(os.environ.get("EXAMPLE_TRIALS", "12")))
    best = study.best_trial
    print(f"best: accuracy {best.value:.4f}, {best.user_attrs[f'latency_ms:{budgets[0].name}']:.4f} ms "
          f"(budget {budgets[0].budget_ms:.4f} ms), channels {best.user_attrs['architecture']}")


if __name__ == "__main__":
    main()
