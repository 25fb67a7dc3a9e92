"""Validate the shipped latency tables against fresh end-to-end measurements; print JSON.

For every table under ``latency_tables/`` (or the ``--table`` files given) whose space is among
``search_spaces/*.json``, draw ``--n`` random architectures (uniform over each gene's choices),
build their ONNX (sliced from the full network's export, or with ``--exact`` materialized with
Torch-Pruning and exported with torch), time them in onnxruntime with the
table's own settings (interleaved with the reference network) and compare with the prediction.
Every figure comes with its 95 % bootstrap interval over architectures and the load average before,
during (after every group) and after the measurement, and the machines that built and validated it.

    nice -n 5 python benchmarks/latency_validate.py --n 100 --seed 1 \
        --out benchmarks/results/latency_validate.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nas_prune.latency import LatencyTable, rescore, validate_table
from nas_prune.space import ChannelSpace

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", action="append", type=Path, help="table(s) to validate (default: latency_tables/)")
    # every result keeps its measured networks (``networks``), so a later model can be scored on them
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--exact", action="store_true", help="materialize + torch-export each network (slow)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per group of networks (default: the table's own)")
    parser.add_argument("--compare", action="append", type=Path, default=[],
                        help="also score these tables (same space) on the same measured networks")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    tables = args.table or sorted((ROOT / "latency_tables").glob("*/*.json"))
    spaces = {}
    for f in sorted((ROOT / "search_spaces").glob("*.json")):
        sp = ChannelSpace.load(f)
        spaces[sp.id] = (f, sp)
    results = []
    load_start = list(os.getloadavg())
    for path in tables:
        table = LatencyTable.load(path)
        if table.space_id not in spaces:
            print(f"skip {path}: space {table.space_id} not in search_spaces/", file=sys.stderr)
            continue
        space_file, space = spaces[table.space_id]
        res = validate_table(table, space, n=args.n, seed=args.seed, exact=args.exact, rounds=args.rounds,
                             keep_networks=True)
        res["compare"] = {}
        for other_path in args.compare:
            other = LatencyTable.load(other_path)
            if other.space_id == table.space_id:
                res["compare"][str(other_path)] = {**rescore(other, res["networks"], seed=args.seed),
                                                   "block": other.model.get("block"),
                                                   "terms": list(other.costs.terms)}
        res.update({"table": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                    "space_file": str(space_file.relative_to(ROOT)), "table_build_seconds": table.meta.get("build_seconds"),
                    "table_nets": len(table.entries), "table_cv": table.model.get("cv"), "block": table.model.get("block")})
        results.append(res)
        print(json.dumps({**{k: res[k] for k in ("table", "n", "within_5pct", "within_10pct", "median_abs_err", "spearman",
                                                 "predict_us", "load_1min_max")},
                          "intervals_95": res["intervals"], "built_on": res["built_on"]["device"],
                          "compare": {k: {m: v[m] for m in ("within_10pct", "median_abs_err", "spearman")}
                                      for k, v in res["compare"].items()},
                          "validated_on": res["validated_on"]["host"]}), file=sys.stderr)
    out = {"benchmark": "latency_validate", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
                       "load_average_start": load_start},
           "n": args.n, "seed": args.seed, "rounds": args.rounds, "results": results}
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
