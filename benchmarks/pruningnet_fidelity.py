"""Fidelity of PruningNet scores: do they rank architectures like training each one alone does?

For ``--archs`` architectures spread over the whole FLOPs range of a space (a base ratio from
``min_ratio`` to 1 per architecture, each gene jittered around it), compare the PruningNet score
(generated weights, BN recalibrated, validation split) with the test accuracy of the same
architecture trained alone from scratch with a fixed short budget, by Kendall's tau. The tau of
FLOPs alone against the stand-alone accuracy is reported as the baseline a PruningNet must beat.

Resumable: stand-alone results and the PruningNet checkpoint are kept under ``--work``.

    nice -n 5 .venv/bin/python benchmarks/pruningnet_fidelity.py \
        -o benchmarks/results/pruningnet_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

from nas_prune._io import write_json
from nas_prune.data import load_data
from nas_prune.pruningnet import PruningNetEvaluator, train_pruningnet
from nas_prune.space import Architecture, ChannelSpace, materialize
from nas_prune.training import TrainConfig, evaluate, fit, set_seed


def spread_archs(space: ChannelSpace, n: int, seed: int) -> list[Architecture]:
    """``n`` architectures whose base ratios cover [min_ratio, 1] evenly, genes jittered (+-25%)."""
    rng = random.Random(seed)
    archs = []
    for i in range(n):
        base = space.min_ratio + (1 - space.min_ratio) * i / max(n - 1, 1)
        channels = {g.name: g.snap(g.width * min(1.0, base * math.exp(rng.gauss(0, 0.25)))) for g in space.genes}
        archs.append(Architecture(space.id, channels))
    return archs


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, images: list[torch.Tensor]) -> None:
    """The PruningNet's BN protocol for a stand-alone model too: reset, cumulative average, eval.

    torchvision's MobileNetV3 uses BN momentum 0.01, so after a short run its running statistics
    are still mostly the initial ones and eval-mode accuracy would be near chance.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for x in images:
        model(x)
    model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v3_small")
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--train-subset", type=int, default=4000)
    ap.add_argument("--archs", type=int, default=16)
    ap.add_argument("--pnet-epochs", type=int, default=12)
    ap.add_argument("--alone-epochs", type=int, default=3)
    ap.add_argument("--recal-batches", type=int, default=20)
    ap.add_argument("--val-batches", type=int, default=16, help="validation batches of 128 for the PruningNet score")
    ap.add_argument("--test-batches", type=int, default=20, help="test batches of 256 for stand-alone accuracy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/pruningnet_fidelity")
    ap.add_argument("-o", "--output", default="benchmarks/results/pruningnet_fidelity.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    space = ChannelSpace.from_name(args.model, input_size=args.input_size, num_classes=10)
    data = load_data(args.data, input_size=args.input_size, train_subset=args.train_subset, seed=args.seed)
    archs = spread_archs(space, args.archs, args.seed)

    t0 = time.perf_counter()
    set_seed(args.seed)
    pnet = train_pruningnet(space, data, epochs=args.pnet_epochs, checkpoint=work / "pnet.pt", seed=args.seed)
    pnet_train_s = time.perf_counter() - t0
    evaluator = PruningNetEvaluator(pnet, data, recal_batches=args.recal_batches, val_batches=args.val_batches)
    scores = evaluator.score_many(archs)

    alone_path = work / "alone.json"
    alone = json.loads(alone_path.read_text()) if alone_path.exists() else {}
    for i, arch in enumerate(archs):
        if str(i) in alone:
            continue
        set_seed(args.seed + i)
        model = materialize(space.build_model(), arch, space=space)
        start = time.perf_counter()
        fit(model, data.train, None, TrainConfig(epochs=args.alone_epochs, batch_size=64, lr=0.05, seed=args.seed))
        recalibrate_bn(model, evaluator.recal)
        alone[str(i)] = {"accuracy": evaluate(model, data.test, max_batches=args.test_batches),
                         "train_seconds": time.perf_counter() - start}
        write_json(alone_path, alone)
        print(f"arch {i}: alone {alone[str(i)]['accuracy']:.4f} pnet {scores[i]['accuracy']:.4f}", flush=True)

    flops = [space.count(a)["flops"] for a in archs]
    acc_alone = [alone[str(i)]["accuracy"] for i in range(len(archs))]
    acc_pnet = [s["accuracy"] for s in scores]
    tau_pnet = kendalltau(acc_pnet, acc_alone).statistic
    tau_flops = kendalltau(flops, acc_alone).statistic
    write_json(args.output, {
        "benchmark": "pruningnet_fidelity",
        "model": args.model, "input_size": args.input_size, "data": args.data,
        "train_subset": args.train_subset, "pnet_epochs": args.pnet_epochs, "alone_epochs": args.alone_epochs,
        "recal_batches": args.recal_batches, "val_images": min(args.val_batches * 128, len(data.val)),
        "test_images": min(args.test_batches * 256, len(data.test)), "threads": args.threads,
        "generator": pnet.config,
        "pnet_train_seconds_this_run": round(pnet_train_s, 1),  # ~0 when the checkpoint was already finished
        "pnet_history": pnet.history,
        "kendall_tau_pruningnet_vs_alone": tau_pnet,
        "kendall_tau_flops_vs_alone": tau_flops,
        "archs": [{"flops": f, "params": space.count(a)["params"], "pruningnet_accuracy": p,
                   "pruningnet_seconds": s["seconds"], "alone_accuracy": al, "channels": dict(a.channels)}
                  for a, f, p, s, al in zip(archs, flops, acc_pnet, scores, acc_alone)],
        "date": time.strftime("%Y-%m-%d"),
    })
    print(json.dumps({"kendall_tau_pruningnet_vs_alone": tau_pnet, "kendall_tau_flops_vs_alone": tau_flops}))


if __name__ == "__main__":
    main()
