"""Speed of ``LatencyTable.predict`` (the search calls it once per candidate); print JSON.

For each shipped table: load time, the first call on fresh random architectures ("cold": memo
tables of groups too large to prefill are filled lazily) and repeated calls ("warm"), in CPU
microseconds (process time; wall time on the shared 2-vCPU VM mostly measures other processes).

    python benchmarks/latency_predict.py --out benchmarks/results/latency_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from nas_prune.latency import LatencyTable, predict_cpu_us
from nas_prune.space import ChannelSpace

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    spaces = {}
    for f in sorted((ROOT / "search_spaces").glob("*.json")):
        sp = ChannelSpace.load(f)
        spaces[sp.id] = sp
    rows = []
    for path in sorted((ROOT / "latency_tables").glob("*/*.json")):
        t0 = time.process_time()
        table = LatencyTable.load(path)
        load_ms = (time.process_time() - t0) * 1e3
        space = spaces[table.space_id]
        rng = random.Random(0)
        archs = [space.sample(rng) for _ in range(args.archs)]
        cold = predict_cpu_us(table, archs, calls=len(archs))
        warm = predict_cpu_us(table, archs, calls=20 * len(archs))
        as_dict = [dict(a.channels) for a in archs]
        t = time.process_time()
        for a in as_dict:
            table.predict(a)
        dict_us = (time.process_time() - t) / len(as_dict) * 1e6
        rows.append({"table": str(path.relative_to(ROOT)), "load_ms": round(load_ms, 1), "cold_us": round(cold, 2),
                     "warm_us": round(warm, 2), "dict_arch_us": round(dict_us, 2)})
    out = {"benchmark": "latency_predict", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_average": list(os.getloadavg()), "archs": args.archs, "results": rows}
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
