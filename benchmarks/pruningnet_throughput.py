"""Throughput of PruningNet scoring: candidates scored per minute (mobilenet_v2, Fashion-MNIST).

A score = generate the candidate's weights, recalibrate BatchNorm on ``--recal-batches`` training
batches, evaluate on ``--val-batches`` validation batches (both cached in memory once). Scoring
cost does not depend on the PruningNet's weights, so a briefly trained one is used.

    nice -n 5 .venv/bin/python benchmarks/pruningnet_throughput.py -o benchmarks/results/pruningnet_throughput.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from nas_prune.data import load_data
from nas_prune.files import write_json
from nas_prune.pruningnet import PruningNetEvaluator, train_pruningnet
from nas_prune.space import ChannelSpace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="search_spaces/mobilenet_v2-32.json")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--candidates", type=int, default=12)
    ap.add_argument("--recal-batches", type=int, default=20)
    ap.add_argument("--val-batches", type=int, default=20, help="batches of --batch-size (20 x 128 = 2560 images)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", default="benchmarks/results/pruningnet_throughput.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = ChannelSpace.load(args.space)
    data = load_data(args.data, input_size=space.input_shape[-1], train_subset=4000)
    pnet = train_pruningnet(space, data, epochs=1, batch_size=64)  # 62 steps
    start = time.perf_counter()
    evaluator = PruningNetEvaluator(pnet, data, recal_batches=args.recal_batches, batch_size=args.batch_size,
                                    val_batches=args.val_batches)
    setup_s = time.perf_counter() - start
    archs = [space.sample(s) for s in range(args.candidates)]
    start, cpu_start = time.perf_counter(), time.process_time()
    scores = evaluator.score_many(archs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    secs = [s["seconds"] for s in scores]
    flops = [space.count(a)["flops"] for a in archs]
    result = {
        "benchmark": "pruningnet_throughput", "space": space.id, "data": args.data, "threads": args.threads,
        "recal_images": len(evaluator.recal) * args.batch_size, "val_images": sum(len(y) for _, y in evaluator.val),
        "candidates": len(archs), "candidates_per_minute": 60 * len(archs) / wall,
        "cpu_seconds_per_candidate": cpu / len(archs), "candidates_per_cpu_minute": 60 * len(archs) / cpu,
        "seconds_per_candidate_median": statistics.median(secs), "seconds_min": min(secs), "seconds_max": max(secs),
        "evaluator_setup_seconds": setup_s, "mean_candidate_mflops": statistics.mean(flops) / 1e6,
        "full_model_mflops": space.count(space.full())["flops"] / 1e6,
        "note": "shared 2-core VM under load from other jobs (wall figures include waiting for the CPU; CPU-time figures do not); nice -n 5",
        "date": time.strftime("%Y-%m-%d"),
    }
    write_json(args.output, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
