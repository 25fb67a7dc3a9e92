"""Few-shot adaptation of the shipped latency tables on a machine that did not build them; JSON out.

For each table: adapt it here with at most ``--adapt-seconds`` of measurement (the check's 12
networks plus the table's design mix, up to ``--adapt-nets``; :func:`nas_prune.latency.adapt_table`),
then time ``--n`` held-out random architectures (uniform over each gene's choices, a seed the
adaptation never saw) interleaved with the reference, and score the table as shipped and as adapted
against them: share within +-5 % / +-10 %, median error, Spearman, each with a 95 % bootstrap
interval. ``--retest`` times the held-out networks a second time: how well the measurement agrees
with itself bounds what any predictor can reach on this machine at this load. The load average
(before, after every group) and the busiest other processes are recorded.

Resumable: a table already in ``--out`` (same machine, same protocol) is skipped unless ``--again``; the JSON is rewritten after each table.

    nice -n 10 python benchmarks/latency_adapt.py --retest \\
        --table latency_tables/devvm-amd-epyc-2vcpu/mobilenet_v2-32_amd-epyc-avx512_cpu-1thread.json \\
        --out benchmarks/results/latency_adapt.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nas_prune.latency import ADAPT_NETS, ADAPT_SECONDS, LatencyTable, adapt_table, bootstrap_intervals, measure_relative, scores, spearman
from nas_prune.on_device import machine_key
from nas_prune.space import ChannelSpace

ROOT = Path(__file__).resolve().parents[1]
#: v1: groups as measured; v2: noisy groups re-measured (``measure_relative(retries=2)``), regrouped retest;
#: v3: v2 + up to 120 adaptation networks within the 60 s and the "layers" ridge the same for every term
#: v4: v3 with the time limit strict (no group started that would end past it)
#: v5: v4 with more than one thread timed in the shared-pool worker (nas_prune.on_device._worker)
#: v6: v5 with up to 400 adaptation networks (the 60 s bind first)
#: v7: v6 with the kernel residual on top of the additive correction (nas_prune.latency._residual)
#: v8: v7 with the adaptation's networks timed in 30 rounds at every thread count (ADAPT_ROUNDS)
PROTOCOL = "v8"
DEFAULT_TABLES = sorted((ROOT / "latency_tables").glob("*/*1thread.json"))


def _busiest() -> list[str]:
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,ni,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [" ".join(l.split()[:4])[:120] for l in out.splitlines()[1:5]]


def _score(pred: np.ndarray, meas: np.ndarray) -> dict[str, Any]:
    return {**scores(pred, meas), "spearman": spearman(pred, meas), "intervals": bootstrap_intervals(pred, meas)}


def run_table(path: Path, spaces: dict[str, ChannelSpace], args: argparse.Namespace) -> dict[str, Any]:
    table = LatencyTable.load(path)
    space = spaces[table.space_id]
    res: dict[str, Any] = {"table": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                           "threads": table.settings["threads"], "rounds": table.settings["rounds"],
                           "built_on": {k: table.meta.get(k) for k in ("device", "cpu_model", "onnxruntime", "date")},
                           "load_average_start": list(os.getloadavg()), "busiest_processes_start": _busiest()}
    t0 = time.perf_counter()
    adapted = adapt_table(table, space, n=args.adapt_nets, max_seconds=args.adapt_seconds, seed=args.adapt_seed,
                          reason="benchmark", log=lambda m: print(m, file=sys.stderr))
    cal = adapted.meta["calibration"]
    res["adaptation"] = {"wall_seconds": round(time.perf_counter() - t0, 1), "seconds": cal["adapt"]["seconds"],
                         "nets": cal["adapt"]["nets"], "rounds": cal["adapt"].get("rounds"), "method": cal["adapt"]["method"], "ridge": cal["adapt"]["ridge"],
                         "cv": cal["adapt"]["cv"], "check": cal["check"], "good": cal["good"],
                         "reference_ms_here": cal["reference_ms"], "reference_ms_table": table.reference_ms,
                         "candidates": cal["adapt"]["candidates"], "residual": cal["adapt"].get("residual")}
    rng = random.Random(args.seed)
    archs = [dict(space.sample(rng).channels) for _ in range(args.n)]
    t1 = time.perf_counter()
    recs = measure_relative(table, space, archs, id_prefix="h")
    meas = np.array([r["rel"] for r in recs])
    res["heldout"] = {"n": len(archs), "seed": args.seed, "seconds": round(time.perf_counter() - t1, 1),
                      "load_average_during": [r["load_average"] for r in recs[::8]],
                      "shipped": _score(np.array([table.relative(a) for a in archs]), meas),
                      "adapted": _score(np.array([adapted.relative(a) for a in archs]), meas),
                      # the same adapted table without its kernel residual: what the residual adds
                      "adapted_additive": _score(np.array([adapted.additive(a) for a in archs]), meas)}
    res["heldout"]["records"] = [{"rel": r["rel"], "group_noise": round(r["group_noise"], 4),
                                  "attempts": r["group_attempts"], "ref_ms": round(r["ref_round_ms"], 4)} for r in recs]
    res["heldout"]["groups_remeasured"] = sum(r["group_attempts"] > 1 for r in recs[::8])
    if args.retest:  # the same networks again, in other groups: the measurement against itself (noise floor)
        perm = list(range(len(archs)))
        random.Random(7).shuffle(perm)
        again_recs = measure_relative(table, space, [archs[i] for i in perm], id_prefix="r")
        again = np.empty(len(archs))
        again[perm] = [r["rel"] for r in again_recs]
        res["heldout"]["retest"] = _score(again, meas)
    res["load_average_end"] = list(os.getloadavg())
    res["busiest_processes_end"] = _busiest()
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="append", type=Path, help="table(s) (default: the shipped 1-thread ones)")
    parser.add_argument("--n", type=int, default=60, help="held-out random architectures")
    parser.add_argument("--seed", type=int, default=101, help="seed of the held-out architectures")
    parser.add_argument("--adapt-nets", type=int, default=ADAPT_NETS)
    parser.add_argument("--adapt-seconds", type=float, default=ADAPT_SECONDS)
    parser.add_argument("--adapt-seed", type=int, default=15)
    parser.add_argument("--retest", action="store_true", help="time the held-out networks twice (noise floor)")
    parser.add_argument("--again", action="store_true", help="measure a table again even if done (appends)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_adapt.json")
    args = parser.parse_args()
    spaces = {}
    for f in sorted((ROOT / "search_spaces").glob("*.json")):
        sp = ChannelSpace.load(f)
        spaces[sp.id] = sp
    import onnxruntime

    out: dict[str, Any] = {"benchmark": "latency_adapt", "results": []}
    if args.out.exists():
        old = json.loads(args.out.read_text())
        if isinstance(old, dict) and isinstance(old.get("results"), list):
            out = old
    out.update({"machine": {"host": socket.gethostname(), "machine_key": machine_key(), "cpu_count": os.cpu_count(),
                            "onnxruntime": onnxruntime.__version__},
                "settings": {"n": args.n, "seed": args.seed, "adapt_nets": args.adapt_nets,
                             "adapt_seconds": args.adapt_seconds}})
    for path in args.table or DEFAULT_TABLES:
        path = path.resolve()
        key = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        if not args.again and any(r["table"] == key and r.get("machine_key") == machine_key() and r.get("protocol") == PROTOCOL
               for r in out["results"]):
            print(f"skip {key}: done on this machine", file=sys.stderr)
            continue
        res = run_table(path, spaces, args)
        res.update({"protocol": PROTOCOL, "machine_key": machine_key(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        out["results"].append(res)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        h = res["heldout"]
        line = {"table": key, "adapt_s": res["adaptation"]["seconds"], "method": res["adaptation"]["method"],
                "residual": (res["adaptation"]["residual"] or {}).get("kept"),
                **{f"{w}_{k}": h[w][k] for w in ("shipped", "adapted_additive", "adapted") + (("retest",) if "retest" in h else ())
                   for k in ("within_10pct", "spearman")}, "load_end": res["load_average_end"][0]}
        print(json.dumps(line))


if __name__ == "__main__":
    main()
