"""The package loaded the way OptunaHub loads it; startup trials come from the gates' priors."""

from __future__ import annotations

from pathlib import Path

import optuna
import optunahub

REGISTRY = Path(__file__).resolve().parents[3]


def test_gate_prior_sampler_from_the_hub_layout() -> None:
    from nas_prune.data import load_data

    module = optunahub.load_local_module("samplers/nas_prune_gate_prior", registry_root=str(REGISTRY))
    space = module.ChannelSpace.from_name("resnet18", input_size=16, num_classes=10)  # any torchvision classifier
    gates = module.learn_gates(space, load_data("digits", input_size=16, train_subset=64), ratios=(0.3,), epochs=1,
                               batch_size=32)
    sampler = module.GatePriorSampler(gates=gates, space=space, n_startup_trials=4, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: float(sum(space.suggest(t).channels.values())), n_trials=6)
    assert len(study.trials) == 6
    names = {g.name for g in space.searchable_genes}
    assert all(set(t.params) == names for t in study.trials)
    choices = {g.name: set(g.choices) for g in space.searchable_genes}
    assert all(v in choices[k] for t in study.trials for k, v in t.params.items())
