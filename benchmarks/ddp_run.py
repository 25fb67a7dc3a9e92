"""The whole ``nas-prune run`` (the demo: mobilenet_v2 on digits, 0.5x) with 1 and with 2 processes.

``--nproc 2`` runs the teacher, gates, PruningNet and distillation in DDP on two CPU processes (gloo,
one thread each, the same global batches); the latency stages and the search run on rank 0. Both
runs are resumable (each stage is cached in its folder); the JSON has each run's final accuracy,
verdict and stage times.

    nice -n -5 .venv/bin/python benchmarks/ddp_run.py -o benchmarks/results/ddp_run.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/ddp_run")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--budget", default="0.5x")
    ap.add_argument("-o", "--output", default="benchmarks/results/ddp_run.json")
    args = ap.parse_args()
    from nas_prune.files import write_json
    from nas_prune.on_device import machine_info

    rows = {}
    for nproc in (1, 2):
        out = Path(args.work) / f"nproc{nproc}"
        cmd = [sys.executable, "-m", "nas_prune", "run", "--data", args.data, "--budget", args.budget,
               "--out", str(out), "--nproc", str(nproc)]
        load = os.getloadavg()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "NAS_PRUNE_PROGRESS": "0"})
        summary = json.loads((ROOT / out / "summary.json").read_text())
        rows[str(nproc)] = {
            "command": " ".join(["nas-prune", *cmd[3:]]), "wall_s_this_call": time.perf_counter() - start,
            "teacher_accuracy": summary["teacher"]["accuracy"], "final_accuracy": summary["final"]["accuracy"],
            "feasible": summary["feasible"], "latency_ratio": summary["latency_ratio"],
            "latency_ratio_interval": summary["latency_ratio_interval"], "limit_ratio": summary["limit_ratio"],
            "stage_seconds": summary["stage_seconds"], "stages": list(summary["stage_seconds"]),
            "files": sorted(p.relative_to(ROOT / out).as_posix() for p in (ROOT / out).rglob("*") if p.is_file()),
            "load_before": load, "load_after": os.getloadavg(),
        }
        write_json(args.output, {"benchmark": "ddp_run", "rows": rows, "machine": machine_info()})
    one, two = rows["1"], rows["2"]
    result = {"benchmark": "ddp_run", "rows": rows, "machine": machine_info(),
              "final_accuracy_points_2_minus_1": 100 * (two["final_accuracy"] - one["final_accuracy"]),
              "same_stages": one["stages"] == two["stages"], "same_files": one["files"] == two["files"]}
    write_json(args.output, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("rows", "machine")}, indent=2))


if __name__ == "__main__":
    main()
