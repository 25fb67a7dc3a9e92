"""Multi-threaded interleaved timing: per-session thread pools against the shared-pool worker; JSON out.

For each space, ``--groups`` groups of 8 random architectures and the full network (the reference)
are timed interleaved (the tables' protocol: ``--rounds`` rounds of 20 runs, per-round minimum,
ratio to the reference in the same round), each group twice in each mode, the modes alternating
(per-session, shared, per-session, shared, ...) so that the machine's drift falls on both alike:

* ``per_session``: every onnxruntime session with its own intra-op pool, in this process (protocol 1);
* ``shared``: the worker process whose sessions share one pool (:mod:`nas_prune.on_device._worker`).

Reported per mode: the per-round spread (median over networks of ``rel_iqr / rel``), the test-retest
error of ``rel`` (same networks, new sessions), seconds per group and the reference's per-round
latency; and the reference timed alone in one session (what a deployment sees).

    nice -n -5 python benchmarks/latency_threads.py --out benchmarks/results/latency_threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from nas_prune.latency import NetFactory, measure_latency
from nas_prune.on_device import TimingSettings, machine_key, relative_records, time_models
from nas_prune.space import ChannelSpace

ROOT = Path(__file__).resolve().parents[1]
MODES = {"per_session": False, "shared": True}


def _once(models: dict[str, bytes], settings: TimingSettings, isolate: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    st = relative_records(time_models(models, settings, seeds={n: i for i, n in enumerate(models)}, isolate=isolate),
                          "ref", settings)
    nets = [n for n in models if n != "ref"]
    return {"seconds": time.perf_counter() - t0, "ref_ms": st["ref"]["round_ms"],
            "rel": [st[n]["rel"] for n in nets],
            "spread": float(np.median([st[n]["rel_iqr"] / st[n]["rel"] for n in nets]))}


def run_space(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    space = ChannelSpace.load(path)
    factory = NetFactory(space)
    settings = TimingSettings(threads=args.threads, rounds=args.rounds, runs_per_round=20, warmup=10)
    rng = random.Random(args.seed)
    per_mode: dict[str, dict[str, list[float]]] = {m: {"spread": [], "retest_err": [], "seconds": [], "ref_ms": []}
                                                   for m in MODES}
    for g in range(args.groups):
        models = {"ref": factory.full_onnx, **{f"n{i}": factory.onnx(dict(space.sample(rng).channels)) for i in range(8)}}
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        for _ in range(2):
            for mode, isolate in MODES.items():
                runs[mode].append(_once(models, settings, isolate))
        for mode, (a, b) in runs.items():
            pm = per_mode[mode]
            pm["spread"] += [a["spread"], b["spread"]]
            pm["retest_err"] += list(np.abs(np.array(a["rel"]) - b["rel"]) / np.array(b["rel"]))
            pm["seconds"] += [a["seconds"], b["seconds"]]
            pm["ref_ms"] += [a["ref_ms"], b["ref_ms"]]
        print(f"{space.id} group {g}: " + ", ".join(
            f"{m} spread {np.median(per_mode[m]['spread']):.3f}" for m in MODES), flush=True)
    alone = measure_latency(factory.full_onnx, space.input_shape, threads=args.threads, repeats=600)
    out: dict[str, Any] = {"space": space.id, "reference_alone_p10_ms": alone["p10_ms"],
                           "reference_alone_median_ms": alone["median_ms"]}
    for mode, pm in per_mode.items():
        err = np.array(pm["retest_err"])
        out[mode] = {"median_spread": float(np.median(pm["spread"])), "retest_median_err": float(np.median(err)),
                     "retest_max_err": float(err.max()), "retest_within_5pct": float(np.mean(err <= 0.05)),
                     "retest_within_10pct": float(np.mean(err <= 0.10)), "seconds_per_group": float(np.median(pm["seconds"])),
                     "reference_round_ms": float(np.median(pm["ref_ms"])), "n_pairs": int(len(err))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", action="append", type=Path,
                        help="space file(s) (default: mobilenet_v2-32 and resnet18-32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_threads.json")
    args = parser.parse_args()
    import onnxruntime

    spaces = args.space or [ROOT / "search_spaces" / "mobilenet_v2-32.json", ROOT / "search_spaces" / "resnet18-32.json"]
    out = {"benchmark": "latency_threads", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"host": socket.gethostname(), "machine_key": machine_key(), "cpu_count": os.cpu_count(),
                       "onnxruntime": onnxruntime.__version__},
           "settings": {"threads": args.threads, "rounds": args.rounds, "groups": args.groups, "seed": args.seed},
           "load_average_start": list(os.getloadavg()), "results": []}
    for path in spaces:
        out["results"].append(run_space(path, args))
        out["load_average_end"] = list(os.getloadavg())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps({k: v for k, v in out["results"][-1].items()}), flush=True)


if __name__ == "__main__":
    main()
