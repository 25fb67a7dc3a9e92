"""The trial of a nas-prune NNI experiment: ``python -m nas_prune.search.nni_trial --config FILE``.

NNI runs this once per trial. It reads the candidate with ``nni.get_next_parameter()``, predicts
its latency on every table, scores it with the PruningNet when it meets every budget, and reports
``nni.report_final_result({"default": score, "accuracy", "feasible", "evaluated", "latency_ms:<table>",
"flops", "params", "channels"})``: a dict metric with a ``default`` key, so NNI's web UI lists every
key in its trial table's columns and in each trial's detail.

A feasible candidate's score is the evaluator's ``score`` (a PruningNet's exp(-validation
cross-entropy), in (0, 1]; its ``accuracy`` when it has none); an infeasible one is not evaluated: it
has no ``accuracy`` (not a fake 0.0), ``evaluated`` is 0, and it scores ``-1 - overshoot``
(overshoot = the largest relative excess over a budget), so no feasible candidate ever loses to it
and the tuner still learns which way the budget lies.

``--params '{"gene": channels, ...}'`` runs one candidate outside NNI (a debugging aid).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

__all__ = ["TRIAL_CONFIG_FORMAT", "main", "run_trial", "score_candidate", "write_trial_config"]

TRIAL_CONFIG_FORMAT = "nas-prune/nni-trial"


def write_trial_config(
    path: str | os.PathLike[str],
    *,
    space: str | os.PathLike[str],
    pnet: str | os.PathLike[str],
    tables: Sequence[str | os.PathLike[str]],
    budgets_ms: Sequence[float],
    names: Sequence[str],
    data: str = "digits",
    prior: bool = False,
    recal_batches: int = 20,
    val_batches: int | None = None,
    batch_size: int = 128,
) -> Path:
    """Write the JSON a trial reads (absolute paths, so trials run from any directory)."""
    from nas_prune._io import write_json

    return write_json(path, {
        "format": TRIAL_CONFIG_FORMAT,
        "version": 1,
        "space": str(Path(space).resolve()),
        "pnet": str(Path(pnet).resolve()),
        "tables": [str(Path(t).resolve()) for t in tables],
        "budgets_ms": [float(b) for b in budgets_ms],
        "names": list(names),
        "data": data,
        "prior": bool(prior),
        "recal_batches": int(recal_batches),
        "val_batches": val_batches,
        "batch_size": int(batch_size),
    })


def _read_config(path: str) -> dict[str, Any]:
    from nas_prune._io import read_json, require

    cfg = read_json(path, what="NNI trial config")
    what = "NNI trial config"
    require(isinstance(cfg, dict) and cfg.get("format") == TRIAL_CONFIG_FORMAT, path, what,
            f"format must be {TRIAL_CONFIG_FORMAT!r}")
    require(cfg.get("version") == 1, path, what, f"version {cfg.get('version')!r} is not supported")
    tables, budgets, names = cfg.get("tables"), cfg.get("budgets_ms"), cfg.get("names")
    require(isinstance(tables, list) and isinstance(budgets, list) and isinstance(names, list)
            and len(tables) == len(budgets) == len(names) >= 1, path, what, "tables, budgets_ms and names must pair up")
    require(all(isinstance(b, (int, float)) and b > 0 for b in budgets), path, what, "budgets must be positive")
    return cfg


def score_candidate(
    arch: Any,
    *,
    space: Any,
    budgets: Sequence[Any],
    evaluate: Callable[[Any], Mapping[str, float]],
) -> dict[str, Any]:
    """The metric dict NNI shows for one candidate (``default`` is what the tuner maximises)."""
    predicted = {b.name: b.predict(arch) for b in budgets}
    overshoot = max((predicted[b.name] - b.budget_ms) / b.budget_ms for b in budgets)
    feasible = overshoot <= 0
    counts = space.count(arch)
    metrics: dict[str, Any] = {}
    if feasible:
        result = evaluate(arch)
        accuracy = float(result["accuracy"])
        metrics["default"] = float(result.get("score", accuracy))  # the PruningNet's score, in (0, 1]
        metrics["score"] = metrics["default"]
        metrics["accuracy"] = accuracy
        metrics["eval_seconds"] = float(result.get("seconds", 0.0))
    else:
        metrics["default"] = -1.0 - overshoot
    metrics["feasible"] = int(feasible)
    metrics["evaluated"] = int(feasible)
    for name, ms in predicted.items():
        metrics[f"latency_ms:{name}"] = ms
    metrics["flops"] = int(counts["flops"])
    metrics["params"] = int(counts["params"])
    metrics["channels"] = json.dumps(dict(arch.channels))
    return metrics


def run_trial(config_path: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Decode ``params``, score the candidate as configured, return the metric dict."""
    from nas_prune.search._budget import LatencyBudget
    from nas_prune.search._load import load_evaluator, load_tables
    from nas_prune.space import ChannelSpace

    cfg = _read_config(config_path)
    space = ChannelSpace.load(cfg["space"])
    if cfg.get("prior"):
        from nas_prune.gates import decode_prior_params

        arch = decode_prior_params(space, params)
    else:
        arch = space.decode(params)
    # the experiment's launch wrote these tables as calibrated on this machine: use them as they are
    tables = load_tables(cfg["tables"], space, calibration="off")
    budgets = LatencyBudget.for_tables(tables, cfg["budgets_ms"], names=cfg["names"])

    def evaluate(a: Any) -> Mapping[str, float]:
        evaluator = load_evaluator(cfg["pnet"], space, data=cfg.get("data", "digits"),
                                   recal_batches=int(cfg.get("recal_batches", 20)),
                                   val_batches=cfg.get("val_batches"), batch_size=int(cfg.get("batch_size", 128)))
        return evaluator.score(a)

    return score_candidate(arch, space=space, budgets=budgets, evaluate=evaluate)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas_prune.search.nni_trial", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="trial config JSON written by 'nas-prune nni'")
    parser.add_argument("--params", help="score this JSON candidate instead of asking NNI")
    args = parser.parse_args(argv)
    os.environ.setdefault("NAS_PRUNE_PROGRESS", "0")
    from nas_prune.errors import NasPruneError

    start = time.perf_counter()
    try:
        if args.params is not None:
            metrics = run_trial(args.config, json.loads(args.params))
            print(json.dumps(metrics))
            return 0
        import nni

        params = nni.get_next_parameter()
        if not params:
            raise NasPruneError("NNI gave no parameters: run this module from an NNI experiment, or pass --params")
        metrics = run_trial(args.config, params)
        metrics["trial_seconds"] = time.perf_counter() - start
        nni.report_final_result(metrics)
        print(json.dumps(metrics))
        return 0
    except NasPruneError as exc:
        print(f"nas-prune nni trial: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
