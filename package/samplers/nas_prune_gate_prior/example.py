"""End to end: gates learned on a small CNN's random weights seed a TPE channel search (FLOPs budget).

    python example.py            # under a minute on a laptop CPU
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import optunahub
import torch
from torch import nn

from nas_prune.data import load_data

module = optunahub.load_module("samplers/nas_prune_gate_prior") if os.environ.get("EXAMPLE_FROM_HUB") else None
if module is None:  # this folder, the way OptunaHub loads it
    module = optunahub.load_local_module("samplers/nas_prune_gate_prior",
                                         registry_root=str(Path(__file__).resolve().parents[2]))


def small_net(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def main() -> None:
    space = module.ChannelSpace.from_model(small_net(), torch.randn(1, 3, 16, 16), model_spec=f"{__name__}:small_net")
    gates = module.learn_gates(space, load_data("digits", input_size=16, train_subset=256), ratios=(0.3, 0.7), epochs=1)
    sampler = module.GatePriorSampler(gates=gates, space=space, n_startup_trials=5, seed=0)
    full_flops = space.count(space.full())["flops"]

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        flops = space.count(arch)["flops"]
        trial.set_constraint("flops", flops - 0.5 * full_flops)  # at most half the FLOPs
        return flops / full_flops  # stand-in score: replace with your evaluation (e.g. a PruningNet)

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=int(os.environ.get("EXAMPLE_TRIALS", "15")))
    print(f"best feasible: {study.best_trial.params} at {study.best_value:.3f} of the FLOPs")


if __name__ == "__main__":
    main()
