"""Tutorial: a hardware-aware channel search of YOUR model and YOUR data in an ordinary Optuna study.

Runs as written in a few minutes on a laptop CPU (no download)::

    python examples/optuna_search.py                                          # results in runs/optuna-example/
    EXAMPLE_TRIALS=10 EXAMPLE_EPOCHS=1 python examples/optuna_search.py       # quicker
    EXAMPLE_SAMPLER=tpe python examples/optuna_search.py                      # Optuna's own TPESampler

What you bring, and what each step gives you:

1. A PyTorch CNN (``SmallNet`` below, 7 classes) and a factory nas-prune can call to rebuild it.
2. Your data as tensors, datasets or loaders: ``make_bundle`` puts them in the layout every stage
   reads and ``check_num_classes`` refuses a model/data class mismatch in one line, up front.
3. ``ChannelSpace.from_model``: one *gene* per group of channels that must be pruned together;
   ``space.full()`` is the unpruned model, ``space.uniform(r)`` every gene at a fraction ``r``.
4. A latency table measured on this machine (onnxruntime) and a budget relative to the unpruned
   model (``"0.7x"``; ``"1.8ms"`` works too).
5. A PruningNet: one network that generates the weights of any candidate, so scoring one takes a
   fraction of a second instead of a training run. ``train_pruningnet`` (and ``learn_gates``,
   ``PruningNetEvaluator``) also take your splits directly, ``train_pruningnet(space, (train_ds,
   val_loader))``, and ``device="auto"`` trains on your GPU when there is one.
6. An Optuna study. ``ArchitectureObjective`` suggests one ``suggest_int`` per gene, makes the
   budget a hard constraint (``study.best_trial`` is always under budget) and scores candidates.
   Any sampler works; nas-prune's evolution redraws over-budget candidates before they cost time.
7. The winner: its channel counts, predicted latency, FLOPs and params are trial attributes; make
   it a physically smaller ``nn.Module`` with ``materialize`` (then fine-tune or distil it).

Every artefact is saved in the run directory and re-running resumes. The study is in SQLite:
``optuna-dashboard sqlite:///runs/optuna-example/study.db`` shows it, with each trial's
constraint (feasible or not) and the objective named ``accuracy``.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import torch
from torch import nn

from nas_prune.data import check_num_classes, make_bundle
from nas_prune.latency import LatencyTable, build_table
from nas_prune.pruningnet import train_pruningnet
from nas_prune.search import ArchitectureObjective, LatencyBudget, make_sampler, pick_trial, record_pick
from nas_prune.space import Architecture, ChannelSpace, materialize

OUT = Path(os.environ.get("EXAMPLE_OUT", "runs/optuna-example"))
TRIALS = int(os.environ.get("EXAMPLE_TRIALS", "30"))
EPOCHS = int(os.environ.get("EXAMPLE_EPOCHS", "4"))
BUDGET = os.environ.get("EXAMPLE_BUDGET", "0.7x")  # of the unpruned model's latency, or e.g. "0.05ms"
SAMPLER = os.environ.get("EXAMPLE_SAMPLER", "evolution")  # or "tpe": Optuna's TPESampler
CLASSES = 7
INPUT = 16


# -- 1. Your model ---------------------------------------------------------------------------------
class SmallNet(nn.Module):
    """Your own CNN: a stem, a residual block with a depthwise conv, a head and a classifier."""

    def __init__(self, num_classes: int = CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 32, 1, bias=False), nn.BatchNorm2d(32),
        )
        self.head = nn.Sequential(nn.Conv2d(32, 96, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(96), nn.ReLU())
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.fc(self.head(x).mean((2, 3)))


def small_net(num_classes: int = CLASSES) -> nn.Module:
    """The factory nas-prune calls (as ``"<module>:small_net"``) to rebuild the model."""
    return SmallNet(num_classes)


# -- 2. Your data ----------------------------------------------------------------------------------
def my_tensors() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Stand-in for your own data: scikit-learn's digits 0-6 as uint8 image tensors, split 80/20."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < CLASSES
    images = torch.tensor(digits.images[keep] * 255 / 16, dtype=torch.float32).unsqueeze(1)  # [N, 1, 8, 8]
    images = torch.nn.functional.interpolate(images, size=(INPUT, INPUT), mode="bilinear").round().to(torch.uint8)
    labels = torch.tensor(digits.target[keep])
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(order))
    return (images[order[:cut]], labels[order[:cut]]), (images[order[cut:]], labels[order[cut:]])


def main() -> None:
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    train, val = my_tensors()
    # uint8 images get nas-prune's normalisation (grey -> 3 channels); float tensors are used as given.
    # Datasets and DataLoaders are accepted the same way: make_bundle(train_ds, val_loader, test_ds).
    data = make_bundle(train, val, num_classes=CLASSES, name="my-digits")

    # -- 3. The channel space ----------------------------------------------------------------------
    space = ChannelSpace.from_model(small_net(), torch.randn(1, 3, INPUT, INPUT), model_spec=f"{__name__}:small_net")
    check_num_classes(space, data)  # a 10-class model on this 7-class data would stop here, in one line
    print(f"space {space.id}: {len(space.searchable_genes)} genes")
    print("\n".join(space.describe()))

    # -- 4. Latency on this machine, and the budget ------------------------------------------------
    table_path = OUT / "table.json"
    table = LatencyTable.load(table_path) if table_path.exists() else build_table(
        space, output=table_path, nets=int(os.environ.get("EXAMPLE_NETS", "24")), rounds=5, device_name="this-cpu")
    budgets = LatencyBudget.for_tables([table], [BUDGET], reference=space.full())
    budget = budgets[0]
    print(f"unpruned model {table.predict(space.full()):.4f} ms; budget {BUDGET} = {budget.budget_ms:.4f} ms "
          f"(constraint {budget.name!r})")

    # -- 5. The PruningNet (checkpoints every epoch; a re-run resumes) ----------------------------
    pnet = train_pruningnet(space, data, epochs=EPOCHS, checkpoint=OUT / "pnet.pt")

    # -- 6. An ordinary Optuna study ---------------------------------------------------------------
    objective = ArchitectureObjective.from_pruningnet(space=space, pnet=pnet, data=data, budgets=budgets,
                                                      recal_batches=10, batch_size=64, val_batches=4)
    if SAMPLER == "tpe":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
    else:  # nas-prune's samplers by name: evolution, gate-prior, nsga2, tpe, random
        sampler = make_sampler(SAMPLER, space=space, budgets=budgets, seed=0, population_size=10)
    study = optuna.create_study(study_name="example", storage=f"sqlite:///{OUT / 'study.db'}", load_if_exists=True,
                                directions=objective.directions, sampler=sampler)
    study.optimize(objective, n_trials=max(0, TRIALS - len(study.trials)))

    # -- 7. The winner -----------------------------------------------------------------------------
    # Optuna's best_trial is the highest score (feasible by construction: infeasible trials are never best);
    # nas-prune's pick is the fastest trial within that score's standard error (the same as best_trial when
    # none is that close), recorded in the study as the user attribute "nas_prune:pick" for the dashboard.
    pick = pick_trial(study, budgets)
    assert pick is not None
    record_pick(study, pick, budgets)
    print(f"Optuna's best_trial: {study.best_trial.number}; nas-prune's pick: {pick.trial.number} ({pick.reason})")
    best = pick.trial
    attrs = best.user_attrs  # architecture, latency_ms:<name>, budget_ms:<name>, feasible, flops, params, accuracy
    n_feasible = sum(all(v <= 0 for v in t.constraints.values()) for t in study.trials)
    print(f"{len(study.trials)} trials, {n_feasible} under budget; metric names {study.metric_names}")
    print(f"best trial {best.number}: accuracy {best.value:.4f}, {attrs[f'latency_ms:{budget.name}']:.4f} ms "
          f"(budget {budget.budget_ms:.4f} ms), {attrs['flops'] / 1e6:.2f} MFLOPs, channels {attrs['architecture']}")
    arch = Architecture(space.id, attrs["architecture"])
    small = materialize(space.build_model(), arch, space=space)  # a physically smaller nn.Module
    full_params = sum(p.numel() for p in space.build_model().parameters())
    print(f"pruned model: {sum(p.numel() for p in small.parameters()):,} parameters (unpruned {full_params:,}); "
          f"fine-tune or distil it next (nas-prune distill)")
    uniform = space.uniform(0.7)
    print(f"for comparison, uniform width 0.7: {table.predict(uniform):.4f} ms, "
          f"accuracy {objective.evaluator.score(uniform)['accuracy']:.4f}")
    try:  # Optuna's own plots: the best-value line only steps on feasible trials
        optuna.visualization.plot_optimization_history(study).write_html(OUT / "history.html")
        print(f"plot: {OUT / 'history.html'}; dashboard: optuna-dashboard sqlite:///{OUT / 'study.db'}")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
