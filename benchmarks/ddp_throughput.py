"""PruningNet training throughput with 1 and 2 processes (torch.distributed, DDP), one thread each.

The same PruningNet training (mobilenet_v2 at 32 px on digits, the sandwich rule: four candidates a
step, the global batch 64) run by one process and by two under ``torchrun`` (gloo on the CPU, 32
images each); pairs are interleaved and repeated, so the cost of the all-reduce is known on this
machine. Where a machine with several GPUs is lent, ``--device cuda`` measures the same with nccl.

    nice -n -5 .venv/bin/python benchmarks/ddp_throughput.py -o benchmarks/results/ddp_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _train(args: argparse.Namespace) -> None:
    """One measurement (in every process of the job): images per second of the training steps."""
    import torch

    from nas_prune.data import load_data
    from nas_prune.distributed import init_from_env, is_main
    from nas_prune.pruningnet import train_pruningnet
    from nas_prune.space import ChannelSpace

    torch.set_num_threads(1)
    w = init_from_env(args.device)
    space = ChannelSpace.from_name(args.model, input_size=args.input_size, num_classes=10)
    data = load_data(args.data, input_size=args.input_size, train_subset=args.images, augment="none")
    train_pruningnet(space, data, epochs=1, batch_size=args.batch_size, seed=0, device=args.device)  # warm-up
    start = time.perf_counter()
    train_pruningnet(space, data, epochs=args.epochs, batch_size=args.batch_size, seed=1, device=args.device)
    seconds = time.perf_counter() - start
    steps = (len(data.train) // args.batch_size) * args.epochs
    if is_main():
        print(json.dumps({"processes": w.size, "seconds": seconds, "steps": steps,
                          "images_per_s": steps * args.batch_size / seconds}), flush=True)


def _measure(nproc: int, args: argparse.Namespace) -> dict:
    common = ["--worker", "--model", args.model, "--data", args.data, "--images", str(args.images),
              "--input-size", str(args.input_size), "--batch-size", str(args.batch_size),
              "--epochs", str(args.epochs), "--device", args.device]
    script = str(Path(__file__).resolve())
    if nproc == 1:
        cmd = [sys.executable, script, *common]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", script,
               *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAS_PRUNE_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--images", type=int, default=1024, help="training images (a subset)")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("-o", "--output", default="benchmarks/results/ddp_throughput.json")
    args = ap.parse_args()
    if args.worker:
        _train(args)
        return
    from nas_prune.files import write_json
    from nas_prune.on_device import machine_info

    runs: dict[str, list[dict]] = {"1": [], "2": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):  # interleaved: 1, 2, 1, 2, ...
        for n in (1, 2):
            runs[str(n)].append(_measure(n, args))
            print(json.dumps(runs[str(n)][-1]), flush=True)
    ips = {n: statistics.median(r["images_per_s"] for r in rs) for n, rs in runs.items()}
    result = {
        "benchmark": "ddp_throughput",
        "command": " ".join(["python", "benchmarks/ddp_throughput.py", *sys.argv[1:]]),
        "images_per_s": ips,
        "speedup_2_vs_1": ips["2"] / ips["1"],
        "efficiency_2": ips["2"] / ips["1"] / 2,
        "runs": runs,
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "output")},
        "machine": machine_info(), "load_before": load_before, "load_after": os.getloadavg(),
    }
    write_json(args.output, result)
    print(json.dumps({k: result[k] for k in ("images_per_s", "speedup_2_vs_1", "efficiency_2")}, indent=2))


if __name__ == "__main__":
    main()
