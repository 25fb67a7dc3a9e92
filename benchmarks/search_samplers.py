"""How many trials each sampler wastes on infeasible or repeated candidates, and its overhead.

Real space (search_spaces/mobilenet_v2-32.json) and real latency table (latency_tables/...), a
budget at a fraction of the full model's predicted latency. The objective is a cheap stand-in for
the PruningNet (the candidate's FLOPs fraction, which grows with width like accuracy does), so the
figures measure the samplers, not accuracy: infeasible = trials over the budget (each would cost
an evaluation with samplers that do not redraw), repeats = trials of an architecture seen before,
ms/trial = wall time per trial without evaluation (sampling, latency predictions, in-memory storage).

    nice -n 5 .venv/bin/python benchmarks/search_samplers.py --budget-fraction 0.6   # results/search_samplers_budget060.json
    nice -n 5 .venv/bin/python benchmarks/search_samplers.py --budget-fraction 0.45  # results/search_samplers_budget045.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import optuna

from nas_prune.latency import LatencyTable
from nas_prune.search import ArchitectureObjective, LatencyBudget, make_sampler
from nas_prune.space import ChannelSpace

ROOT = Path(__file__).resolve().parents[1]


class FlopsFraction:
    def __init__(self, space: ChannelSpace) -> None:
        self.space, self.full = space, space.count(space.full())["flops"]

    def score(self, arch):
        return {"accuracy": self.space.count(arch)["flops"] / self.full, "seconds": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--budget-fraction", type=float, default=0.6)
    ap.add_argument("--space", default=str(ROOT / "search_spaces/mobilenet_v2-32.json"))
    ap.add_argument("--table", default=str(ROOT / "latency_tables/devvm-amd-epyc-2vcpu/mobilenet_v2-32_amd-epyc-avx512_cpu-1thread.json"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    space = ChannelSpace.load(args.space)
    table = LatencyTable.load(args.table)
    table.check_space(space)
    full_ms = table.predict(space.full())
    budgets = LatencyBudget.for_tables([table], [args.budget_fraction * full_ms])
    out = {"space": space.id, "table": Path(args.table).name, "full_ms": full_ms, "budget_ms": budgets[0].budget_ms,
           "trials": args.trials, "objective": "FLOPs fraction (stand-in for accuracy)", "samplers": {}}
    for name in ("random", "tpe", "nsga2", "evolution"):
        sampler = make_sampler(name, space=space, budgets=budgets, seed=args.seed, population_size=50)
        objective = ArchitectureObjective(space=space, evaluator=FlopsFraction(space), budgets=budgets)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        start = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        seconds = time.perf_counter() - start
        archs = [json.dumps(t.user_attrs["architecture"], sort_keys=True) for t in study.trials]
        infeasible = sum(not t.user_attrs["feasible"] for t in study.trials)
        best = study.best_trial
        out["samplers"][name] = {
            "infeasible_trials": infeasible,
            "repeated_trials": len(archs) - len(set(archs)),
            "ms_per_trial": 1000 * seconds / args.trials,
            "best_flops_fraction": best.value,
            "best_latency_ms": best.user_attrs[f"latency_ms:{budgets[0].name}"],
        }
        print(name, json.dumps(out["samplers"][name]), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
