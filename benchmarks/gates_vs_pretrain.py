"""Gates from random weights vs pretraining, and gate vs uniform architectures at equal cost.

Pruning from Scratch (Wang et al., AAAI 2020, arXiv 1909.12579) claims that learning gates on a
randomly initialised network costs >= 10x less than pretraining it, and that the pruned structure
it finds trains as well as or better than hand-picked widths. This script measures, on
Fashion-MNIST with torchvision's mobilenet_v2 at 32x32 (one intra-op thread, CPU):

1. the cost (CPU seconds, one thread; wall seconds too) of gate learning (``learn_gates``, paper
   defaults: Adam lr 0.01, gamma 0.5, batch 128) vs pretraining the same model with weights (the
   teacher recipe: SGD, one-cycle, batch 128, same data). Both are timed for a few epochs; the full
   schedules (gates: nas-prune's default epochs for the data size; pretraining: the 8-epoch teacher
   recipe of ``nas-prune run --data fashion-mnist``) are projected from the measured per-epoch cost and labelled so;
2. the test accuracy after the same short training from scratch (3 seeds) of
   (a) the gate architecture at 50% FLOPs (``gates.prune(space, "flops:0.5")``, channels kept in
   gate order), (b) the uniform-width architecture with the nearest FLOPs, and (c) the
   uniform-width architecture with the nearest *measured* onnxruntime latency (CPU EP, 1 thread,
   interleaved rounds, 10th percentile; ``nas_prune.latency.measure_interleaved`` when present).

The defaults (5k training images, 2k test images, 5 gate epochs, 3 training epochs) keep the run
to ~8 CPU minutes on a shared 2-core machine; raise them for firmer figures.

Prints JSON (and writes it with ``-o``). Run: ``nice -n 5 .venv/bin/python benchmarks/gates_vs_pretrain.py
-o benchmarks/results/gates_vs_pretrain.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any

import torch

from nas_prune.data import load_data, num_batches
from nas_prune.files import write_json
from nas_prune.gates import Budget, default_epochs, learn_gates
from nas_prune.space import Architecture, ChannelSpace, materialize
from nas_prune.training import TrainConfig, evaluate, fit, set_seed


def uniform_archs(space: ChannelSpace, ratios: list[float]) -> dict[float, Architecture]:
    return {r: space.uniform(r) for r in ratios}


def nearest_uniform_by_flops(space: ChannelSpace, flops: float) -> tuple[float, Architecture]:
    grid = [round(0.05 + 0.005 * i, 3) for i in range(191)]
    best = min(grid, key=lambda r: abs(space.count(space.uniform(r))["flops"] - flops))
    return best, space.uniform(best)


def measure(space: ChannelSpace, archs: dict[str, Architecture], rounds: int) -> tuple[dict[str, float], str]:
    """p10 latency (ms) of every architecture, timed interleaved; which timer was used."""
    try:
        from nas_prune.latency import arch_onnx_bytes, measure_interleaved

        models = {name: arch_onnx_bytes(space, a) for name, a in archs.items()}
        rec = measure_interleaved(models, space.input_shape, threads=1, rounds=rounds, runs_per_round=20)
        return {k: float(v["round_ms"]) for k, v in rec.items()}, "nas_prune.latency.measure_interleaved"
    except ImportError:
        return _measure_ort(space, archs, rounds), "onnxruntime direct (CPU EP, 1 thread, interleaved, p10)"


def _measure_ort(space: ChannelSpace, archs: dict[str, Architecture], rounds: int) -> dict[str, float]:
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from nas_prune.export import export_onnx

    sessions = {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        for name, a in archs.items():
            path = export_onnx(materialize(space.build_model(), a, space=space), space.example_input(), f"{tmp}/{name}.onnx")
            sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.random.randn(1, *space.input_shape).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for name, s in sessions.items():
            for _ in range(20):
                t = time.perf_counter()
                s.run(None, {"input": x})
                times[name].append((time.perf_counter() - t) * 1e3)
    return {k: float(np.percentile(v, 10)) for k, v in times.items()}


def short_train(space: ChannelSpace, arch: Architecture, data: Any, *, seed: int, epochs: int,
                importance: dict[str, list[int]] | None) -> tuple[float, float]:
    set_seed(seed)
    model = materialize(space.build_model(), arch, importance, space=space)  # random weights: from scratch
    t = time.perf_counter()
    fit(model, data.train, None, TrainConfig(epochs=epochs, batch_size=128, lr=0.05, seed=seed, label="short"))
    return evaluate(model, data.test), time.perf_counter() - t


def summary(xs: list[float]) -> dict[str, Any]:
    return {"mean": statistics.mean(xs), "std": statistics.pstdev(xs), "values": xs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--space", default="search_spaces/mobilenet_v2-32.json")
    ap.add_argument("--train-subset", type=int, default=5000)
    ap.add_argument("--val-subset", type=int, default=1000, help="validation images for the gate checkpoint choice")
    ap.add_argument("--test-subset", type=int, default=2000)
    ap.add_argument("--gate-epochs", type=int, default=5)
    ap.add_argument("--gate-ratio", type=float, default=0.5)
    ap.add_argument("--pretrain-epochs", type=int, default=2, help="epochs timed (the full recipe, 8, is projected)")
    ap.add_argument("--short-epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", default="flops:0.5")
    ap.add_argument("--latency-rounds", type=int, default=30)
    ap.add_argument("--save-gates", default=None, help="also write the learned gates file here")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    space = ChannelSpace.load(args.space)
    data = load_data(args.data, input_size=space.input_shape[-1], train_subset=args.train_subset, seed=0)
    data.val = data.val.subset(torch.arange(min(args.val_subset, len(data.val))))
    data.test = data.test.subset(torch.arange(min(args.test_subset, len(data.test))))
    out: dict[str, Any] = {
        "benchmark": "gates_vs_pretrain", "space": space.id, "data": args.data, "train_images": len(data.train),
        "test_images": len(data.test), "threads": 1, "machine": platform.processor() or platform.machine(),
        "settings": vars(args),
    }

    def emit() -> None:
        if args.output:
            write_json(args.output, out)

    # 1. gate learning vs pretraining --------------------------------------------------------
    t, c = time.perf_counter(), time.process_time()
    gates = learn_gates(space, data, ratios=(args.gate_ratio,), seeds=(0,), epochs=args.gate_epochs)
    gate_s, gate_cpu = time.perf_counter() - t, time.process_time() - c
    if args.save_gates:
        gates.save(args.save_gates)
    run = gates.runs[0]
    vals = [v for vs in run.gates.values() for v in vs]
    out["gates"] = {"seconds": gate_s, "cpu_seconds": gate_cpu, "epochs": args.gate_epochs, "mean_gate": statistics.mean(vals),
                    "nonzero_fraction": run.nonzero_fraction, "met_ratio": run.met_ratio,
                    "val_accuracy_random_weights": run.val_accuracy, "settings": dict(gates.settings)}
    emit()
    set_seed(0)
    teacher = space.build_model()
    t, c = time.perf_counter(), time.process_time()
    fit(teacher, data.train, None, TrainConfig(epochs=args.pretrain_epochs, batch_size=128, lr=0.05, seed=0,
                                                label="pretrain"))
    pre_s, pre_cpu = time.perf_counter() - t, time.process_time() - c
    out["pretrain"] = {"seconds": pre_s, "cpu_seconds": pre_cpu, "epochs": args.pretrain_epochs, "test_accuracy": evaluate(teacher, data.test)}
    out["pretrain_over_gates"] = {"wall": pre_s / gate_s, "cpu": pre_cpu / gate_cpu}
    # CPU seconds (one thread) are the robust cost on a shared machine; wall time is kept for reference.
    per_epoch = {"gates": gate_cpu / args.gate_epochs, "pretrain": pre_cpu / args.pretrain_epochs}
    out["cpu_seconds_per_epoch"] = per_epoch
    # Full schedules, projected from the per-epoch times measured above (not run end to end here):
    # gates at nas-prune's default epochs for this data size vs the teacher recipe (8 epochs).
    gate_default = default_epochs(num_batches(data.train, 128, drop_last=True))
    out["projected_full_schedules"] = {
        "note": "projection = measured CPU seconds per epoch x epochs of the full schedule",
        "gates_default_epochs": gate_default, "gates_cpu_seconds": per_epoch["gates"] * gate_default,
        "pretrain_epochs": 8, "pretrain_cpu_seconds": per_epoch["pretrain"] * 8,
        "pretrain_over_gates": (per_epoch["pretrain"] * 8) / (per_epoch["gates"] * gate_default),
    }
    emit()

    # 2. architectures at equal FLOPs and equal measured latency ---------------------------------
    full = space.count(space.full())
    gate_arch = gates.prune(space, Budget.parse(args.budget))
    gate_flops = space.count(gate_arch)["flops"]
    r_flops, uni_flops = nearest_uniform_by_flops(space, gate_flops)
    candidates = {f"uniform_{r:.2f}": space.uniform(r) for r in [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8]}
    lat, timer = measure(space, {"gate": gate_arch, **candidates}, args.latency_rounds)
    name_lat = min(candidates, key=lambda k: abs(lat[k] - lat["gate"]))
    uni_lat = candidates[name_lat]
    archs = {"gate": (gate_arch, gates.order()), "uniform_same_flops": (uni_flops, None),
             "uniform_same_latency": (uni_lat, None)}
    out["latency_timer"] = timer
    out["latency_p10_ms"] = lat
    out["architectures"] = {}
    for name, (arch, imp) in archs.items():
        c = space.count(arch)
        accs, secs = [], []
        for s in seeds:
            acc, sec = short_train(space, arch, data, seed=s, epochs=args.short_epochs, importance=imp)
            accs.append(acc)
            secs.append(sec)
        out["architectures"][name] = {
            "channels": dict(arch.channels), "flops_ratio": c["flops"] / full["flops"],
            "params_ratio": c["params"] / full["params"],
            "uniform_ratio": r_flops if name == "uniform_same_flops" else (
                float(name_lat.split("_")[1]) if name == "uniform_same_latency" else None),
            "latency_p10_ms": lat["gate"] if name == "gate" else (lat[name_lat] if name == "uniform_same_latency"
                                                                    else None),
            "test_accuracy": summary(accs), "train_seconds": summary(secs),
        }
        emit()
    print(json.dumps(out, indent=2))
    emit()


if __name__ == "__main__":
    sys.exit(main())
