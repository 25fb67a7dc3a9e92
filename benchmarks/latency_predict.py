"""Speed of ``LatencyTable.predict`` (the search calls it once per candidate); print JSON.

For each shipped table: load time, the first call on fresh random architectures ("cold": memo
tables of groups too large to prefill are filled lazily) and repeated calls ("warm"), in CPU
microseconds (process time; wall time on the shared 2-vCPU VM mostly measures other processes).
``with_residual_us``: the same table with a kernel residual over 300 networks (the size adaptation
fits from 60 s of measurement; fitted here to the table's own entries, for its cost only).

    python benchmarks/latency_predict.py --out benchmarks/results/latency_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

from nas_prune.latency import KernelResidual, LatencyTable, predict_cpu_us
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
        fit_on = [e["channels"] for e in table.entries][:300]
        fit_on = (fit_on * (300 // len(fit_on) + 1))[:300]
        base = np.array([table.additive(a) for a in fit_on])
        genes = {g: int(ch[-1]) for g, ch in table.structure["genes"].items()}
        res = KernelResidual.fit(genes, fit_on, base * 1.01, base, gamma=0.3, alpha=0.03)
        obj = table.to_json()
        obj["model"] = {**obj["model"], "residual": res.to_json()}
        with_res = LatencyTable.from_json(obj)
        res_us = predict_cpu_us(with_res, archs, calls=20 * len(archs))
        rows.append({"table": str(path.relative_to(ROOT)), "load_ms": round(load_ms, 1), "cold_us": round(cold, 2),
                     "warm_us": round(warm, 2), "dict_arch_us": round(dict_us, 2), "with_residual_us": round(res_us, 2)})
    out = {"benchmark": "latency_predict", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_average": list(os.getloadavg()), "archs": args.archs, "results": rows}
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
