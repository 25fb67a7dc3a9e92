"""Hardware-aware channel search of YOUR model inside an ordinary Optuna study.

Runs as written in a few minutes on a laptop CPU (digits data, no download):

    python examples/optuna_search.py                       # results in runs/optuna-example/
    EXAMPLE_TRIALS=10 EXAMPLE_EPOCHS=1 python examples/optuna_search.py   # quicker

Steps: derive the channel space of the model below, measure a latency table of it on this machine
(onnxruntime), train a PruningNet that scores any candidate in a fraction of a second, then let
Optuna search the most accurate widths under a hard latency budget. Every artefact is saved in
the run directory and re-running resumes (the study is in SQLite: `optuna-dashboard
sqlite:///runs/optuna-example/study.db` shows it).
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import torch
from torch import nn

from nas_prune.data import load_data
from nas_prune.latency import LatencyTable, build_table
from nas_prune.pruningnet import PruningNetEvaluator, train_pruningnet
from nas_prune.search import ArchitectureObjective, EvolutionSampler, LatencyBudget, feasible_under
from nas_prune.space import ChannelSpace

OUT = Path(os.environ.get("EXAMPLE_OUT", "runs/optuna-example"))
TRIALS = int(os.environ.get("EXAMPLE_TRIALS", "30"))
EPOCHS = int(os.environ.get("EXAMPLE_EPOCHS", "4"))
BUDGET_FRACTION = float(os.environ.get("EXAMPLE_BUDGET", "0.7"))  # of the full model's latency
INPUT = 16


class SmallNet(nn.Module):
    """Your own CNN: a stem, a residual block with a depthwise conv, a head and a classifier."""

    def __init__(self, num_classes: int = 10) -> None:
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


def small_net(num_classes: int = 10) -> nn.Module:
    return SmallNet(num_classes)


def main() -> None:
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    # 1. The channel space of the model (one gene per group of coupled channels).
    space = ChannelSpace.from_model(small_net(), torch.randn(1, 3, INPUT, INPUT), model_spec=f"{__name__}:small_net")
    print("\n".join(space.describe()))
    # 2. A latency table measured on this machine (saved as it goes, resumes).
    table_path = OUT / "table.json"
    table = LatencyTable.load(table_path) if table_path.exists() else build_table(
        space, output=table_path, nets=int(os.environ.get("EXAMPLE_NETS", "24")), rounds=5, device_name="this-cpu")
    full_ms = table.predict(space.full())
    budgets = LatencyBudget.for_tables([table], [BUDGET_FRACTION * full_ms])
    print(f"full model {full_ms:.4f} ms; budget {budgets[0].budget_ms:.4f} ms")
    # 3. A PruningNet that generates the weights of any candidate (checkpoints every epoch, resumes).
    data = load_data("digits", input_size=INPUT)
    pnet = train_pruningnet(space, data, epochs=EPOCHS, checkpoint=OUT / "pnet.pt")
    evaluator = PruningNetEvaluator(pnet, data, recal_batches=10, batch_size=64, val_batches=4)
    # 4. An ordinary Optuna study: constraints keep best_trial under the budget.
    objective = ArchitectureObjective(space=space, evaluator=evaluator, budgets=budgets)
    sampler = EvolutionSampler(space=space, population_size=10, num_parents=3, n_mutation=5, n_crossover=5,
                               feasibility=feasible_under(budgets), seed=0)
    study = optuna.create_study(study_name="example", storage=f"sqlite:///{OUT / 'study.db'}", load_if_exists=True,
                                directions=objective.directions, sampler=sampler)
    study.optimize(objective, n_trials=max(0, TRIALS - len(study.trials)))
    best = study.best_trial
    name = budgets[0].name
    print(f"best trial {best.number}: accuracy {best.value:.4f}, {best.user_attrs[f'latency_ms:{name}']:.4f} ms "
          f"(budget {budgets[0].budget_ms:.4f} ms), channels {best.user_attrs['architecture']}")
    uniform = space.uniform(BUDGET_FRACTION)
    print(f"for comparison, uniform width {BUDGET_FRACTION}: {table.predict(uniform):.4f} ms, "
          f"accuracy {evaluator.score(uniform)['accuracy']:.4f}")


if __name__ == "__main__":
    main()
