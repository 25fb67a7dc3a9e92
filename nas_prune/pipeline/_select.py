"""The pick decided by a short real fine-tune (``nas-prune run --select finetune``), not by the PruningNet's score alone.

The PruningNet ranks candidates about as well as their FLOPs do (Kendall tau 0.66 against 0.68 on
our benchmark, ``benchmarks/results/pruningnet_fidelity.json``), so the finalists' pick, the most
accurate by that score, can lose to what a user would have tried without a search. Here the pick
competes with them at the same *measured* budget:

1. **Candidates**: the ``k`` best finalists whose measurement met the pick's limit, and every
   registered baseline (:data:`nas_prune.search.BASELINES`: uniform width, global magnitude
   pruning of the teacher) aimed at the same limit through the calibrated table corrected by the
   finalists' own measurements (:func:`~nas_prune.pipeline._finalists.corrected_target`), measured
   with the finalists' protocol, re-aimed by their own measurements until they measure within
   :data:`BAND` of the limit (up to :data:`MAX_AIMS` picks), and kept only when they meet it.
2. **Successive halving** (Jamieson & Talwalkar, AISTATS 2016; asynchronous as in ASHA, Li et al.,
   MLSys 2020) with Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`: each candidate is a
   trial, best-scored first; a step is one epoch of the run's finish (same method and init) over a
   fixed subset of the training split, continued from the previous step's weights; the trial reports
   its validation accuracy after each step and stops when it is not in the top half of those that
   reached the same rung. The winner is the most accurate candidate that ran every step.

The winner replaces ``arch.json``; ``select.json`` holds every candidate, its steps and the cost.
Every step is cached (``select/ARCH_KEY/stepS/``): a killed run resumes with the same decisions.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nas_prune._io import read_json, write_json
from nas_prune.pipeline._finalists import MARGIN

if TYPE_CHECKING:

    from nas_prune.pipeline._context import RunContext

__all__ = ["BAND", "MAX_AIMS", "SELECT_MODES", "SELECT_STEPS", "SELECT_IMAGES", "baseline_candidates", "finalist_candidates", "next_aim",
           "select_by_finetune"]

SELECT_MODES = ("score", "finetune")
#: Steps (epochs over the subset) of the longest fine-tune: rungs at 1, 2 and 4 with a reduction factor of 2.
SELECT_STEPS = 4
#: Training images each fine-tune step sees at most (a fixed seeded subset of the training split).
SELECT_IMAGES = 5000
#: A baseline measured under this share of the pick's limit is re-aimed (closer to the limit, as fast as allowed).
BAND = 0.9
#: Picks (each one measurement of every baseline still aiming) per baseline at most.
MAX_AIMS = 3


def finalist_candidates(ctx: RunContext, k: int) -> list[dict[str, Any]]:
    """The ``k`` most accurate finalists whose measurement met the pick's limit (``finalists.json``, rank order)."""
    rows = read_json(ctx.out / "finalists.json", what="finalists") if (ctx.out / "finalists.json").exists() else []
    if any("channels" not in r for r in rows) and (ctx.out / "trials.json").exists():  # written before rows held them
        trials = {t.get("number"): t for t in read_json(ctx.out / "trials.json", what="search trials")}
        rows = [r if "channels" in r or "shrunk_from" in r else {**r, "channels": trials.get(r["trial"], {}).get("channels")}
                for r in rows]
    met = [r for r in rows if r.get("meets") and r.get("channels")]
    return [{"source": "search", "trial": r["trial"], "channels": dict(r["channels"]), "ratio": r["ratio"],
             "interval": r["interval"], "predicted_ratio": r["predicted_ratio"]} for r in met[:k]]


def next_aim(history: Sequence[tuple[Any, ...]], limit: float) -> float:
    """The predicted ratio to aim at next, from ``(predicted, measured, meets, ...)`` of a baseline's picks so far.

    Between the widest pick that met and the narrowest that did not, the midpoint (a bisection);
    on one side only, the last pick scaled by ``limit / measured`` less :data:`MARGIN`.
    """
    under = [h[0] for h in history if h[2]]
    over = [h[0] for h in history if not h[2]]
    if under and over and max(under) < min(over):
        return (max(under) + min(over)) / 2
    p, m = history[-1][:2]
    return p * limit / m * (1.0 - MARGIN)


def baseline_candidates(ctx: RunContext, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every registered baseline aimed at the pick's limit as measured here; those whose measurement meets it.

    The first aim is the calibrated table's predicted ratio corrected by the finalists' measured/predicted
    bias (the bias differs from one network's shape to another: the aim is then corrected by the
    baseline's own measurements, :func:`next_aim`). A baseline is done when it measures within
    :data:`BAND` of the limit and under it; after :data:`MAX_AIMS` picks, the fastest-to-the-limit one
    that met competes, and one that never met is left out.
    """
    from nas_prune.export import load_model
    from nas_prune.pipeline._finalists import corrected_target, measure_candidates, predicted_ratio
    from nas_prune.search import BASELINES

    rows = read_json(ctx.out / "finalists.json", what="finalists")
    limit = float(ctx.results["finalists"].get("pick_limit", ctx.limit_ratio))
    space, ratio = ctx.space, predicted_ratio(ctx.space, ctx.table)
    target = corrected_target(limit, [r["predicted_ratio"] for r in rows], [r["ratio"] for r in rows])
    teacher = load_model(space, ctx.out / "teacher.pt")
    aims = {name: target for name in BASELINES}
    # per baseline, each measured pick: (predicted, measured, meets, channels)
    history: dict[str, list[tuple[float, float, bool, dict[str, int]]]] = {name: [] for name in BASELINES}
    kept: dict[str, dict[str, Any]] = {}

    def outcome(name: str) -> str:
        return f"its pick at {kept[name]['ratio']:.3f}x competes" if name in kept else "never under, left out"

    for attempt in range(1, MAX_AIMS + 1):
        batch = []
        for name, fn in BASELINES.items():
            if name not in aims:
                continue
            arch = fn(space, teacher, ratio, aims[name])
            if any(dict(arch.channels) == h[3] for h in history[name]):  # the grid is coarse there: nothing new
                aims.pop(name)
                log(f"select: baseline {name}: its next aim gives a pick already measured; {outcome(name)}")
            else:
                batch.append(({"name": name}, arch))
        for (meta, arch), m in zip(batch, measure_candidates(space, ctx.out, ctx.table, batch, limit) if batch else []):
            name, r = meta["name"], float(m["ratio"])
            history[name].append((ratio(arch), r, bool(m["meets"]), dict(arch.channels)))
            if m["meets"] and r > kept.get(name, {}).get("ratio", 0.0):  # the one nearest the limit that met
                kept[name] = {"source": name, "channels": dict(arch.channels), "ratio": r, "interval": m["interval"],
                              "predicted_ratio": ratio(arch), "aims": len(history[name])}
            done = bool(m["meets"]) and r >= BAND * limit
            if done or attempt == MAX_AIMS:
                aims.pop(name)
            else:
                aims[name] = next_aim(history[name], limit)
            log(f"select: baseline {name}, predicted {ratio(arch):.3f}x, measured {r:.3f}x "
                f"[{m['interval'][0]:.3f}, {m['interval'][1]:.3f}] against {limit:.3g}x"
                + ("" if done else ": re-aimed" if attempt < MAX_AIMS else f": {outcome(name)}"))
    return list(kept.values())


def _fine_tune_step(ctx: RunContext, cands: list[dict[str, Any]], data: Any) -> Callable[[int, int], float]:
    """Step ``s`` of candidate ``i``: one more epoch of the run's finish over ``data``, cached per architecture and step."""
    from nas_prune.pipeline.stages.distill import finish, finish_init
    from nas_prune.space import Architecture

    def step(i: int, s: int) -> float:
        channels = cands[i]["channels"]
        # keyed by the architecture: a resumed run whose baselines measured otherwise never reads another's steps
        key = hashlib.sha1(json.dumps(sorted(channels.items())).encode()).hexdigest()[:10]
        folder = ctx.out / "select" / key / f"step{s}"
        cached = folder / "metrics.json"
        init = finish_init(ctx) if s == 1 else f"model:{folder.parent / f'step{s - 1}' / 'model.pt'}"
        m = read_json(cached, what="fine-tune metrics") if cached.exists() else \
            finish(ctx, Architecture(ctx.space.id, channels), init=init, epochs=1, out_dir=folder, data=data,
                   measure_latency=False)
        return float(m["student"]["val_accuracy"])

    return step


def select_by_finetune(ctx: RunContext, k: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Fine-tune the finalists and the baselines briefly, successive halving decides; the winner becomes ``arch.json``."""
    from nas_prune.data import with_train_subset
    from nas_prune.search import successive_halving
    from nas_prune.space import Architecture

    start = time.perf_counter()
    cands = finalist_candidates(ctx, k)
    if not cands:
        return {"mode": "finetune", "note": "no finalist met the budget: the finalists' pick is kept"}
    cands += baseline_candidates(ctx, log)
    images = min(SELECT_IMAGES, ctx.train_images)
    log(f"select: {len(cands)} candidates ({', '.join(c['source'] for c in cands)}) fine-tuned up to {SELECT_STEPS} "
        f"epochs of {images:,} training images, successive halving on validation accuracy")
    data = with_train_subset(ctx.data, images, seed=ctx.cfg.seed)
    res = successive_halving(len(cands), _fine_tune_step(ctx, cands, data), steps=SELECT_STEPS, seed=ctx.cfg.seed)
    for c, scores, state in zip(cands, res.scores, res.states):
        c.update(steps=scores, state=state)
    win = res.winner
    best_acc = res.scores[win][-1]
    Architecture(ctx.space.id, cands[win]["channels"]).save(ctx.out / "arch.json")
    record = {"mode": "finetune", "winner": win, "winner_source": cands[win]["source"],
              "winner_val_accuracy": best_acc, "images": images, "steps": SELECT_STEPS,
              "epochs_trained": res.steps_trained, "seconds": time.perf_counter() - start, "candidates": cands}
    write_json(ctx.out / "select.json", record)
    log(f"select: {cands[win]['source']}" + (f" (trial {cands[win]['trial']})" if "trial" in cands[win] else "")
        + f" won at {100 * best_acc:.2f} % validation accuracy after {SELECT_STEPS} epochs; "
        f"{record['epochs_trained']} fine-tune epochs in {record['seconds']:.0f} s")
    return {k_: v for k_, v in record.items() if k_ != "candidates"}
