"""Accuracy of a ~50%-latency mobilenet_v2 student on Fashion-MNIST: KD vs CCKD vs DAFL vs labels only.

Protocol:
* data: Fashion-MNIST at 32x32, a random 5k-image training subset (``--train-subset``), the first
  2k images of the validation split for the per-epoch curves (``--val``), the full 10k test split;
* teacher and student: with ``--run DIR``, the teacher and the *searched* architecture of a
  ``nas-prune run --data fashion-mnist --out DIR`` (searched under half the teacher's measured
  latency; its measured fraction is re-measured here, interleaved with the teacher). Without it,
  a torchvision mobilenet_v2 teacher trained here by ``train_teacher`` (6 epochs on the subset) and
  the uniform-width architecture whose measured latency is nearest 50% of the teacher's. The
  student is initialised from the teacher's L1-most-important channels (``init="teacher"``) for
  every method;
* methods kd / cckd / dafl / none with the same epochs and seeds 0, 1, 2; DAFL's epoch has as many
  generated images as the training subset (steps = ceil(5000 / 256)).

The defaults are sized for the shared 2-core development machine (about 30-40 minutes there with
one torch thread; two threads were 4-5x slower under the other agents' load).

Every run resumes (its folder keeps per-epoch checkpoints) and the JSON is rewritten after each run,
so an interrupted benchmark loses at most one epoch. Prints the JSON.

Usage: ``nice -n 5 .venv/bin/python benchmarks/distill_methods.py [--run runs/fmnist] [--epochs 5] [--seeds 3]``
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import onnxruntime
import torch

from nas_prune.data import load_data
from nas_prune.distill import DistillConfig, distill, measure_pair
from nas_prune.export import export_onnx, load_model
from nas_prune.files import read_json, write_json
from nas_prune.space import Architecture, ChannelSpace, materialize
from nas_prune.teacher import train_teacher

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("none", "kd", "cckd", "dafl")


def pick_architecture(space: ChannelSpace, teacher: torch.nn.Module, work: Path, ratios: tuple[float, ...]) -> dict:
    """Uniform width whose measured latency ratio to the teacher is nearest 0.5.

    The ratio is ``rel`` of :func:`nas_prune.latency.measure_interleaved`: per-round low percentiles
    of candidate and teacher timed in the same rounds (robust to the shared machine's drift).
    """
    work.mkdir(parents=True, exist_ok=True)
    paths = {"teacher": work / "teacher.onnx"}
    export_onnx(teacher, space.example_input(), paths["teacher"])
    for r in ratios:
        paths[f"u{r}"] = work / f"uniform_{r}.onnx"
        export_onnx(materialize(teacher, space.uniform(r), space=space), space.example_input(), paths[f"u{r}"])
    lat = measure_pair(paths, space.input_shape, threads=1)
    t = lat["teacher"]["median_ms"]
    rows = [{"ratio": r, "median_ms": lat[f"u{r}"]["median_ms"],
             "latency_fraction": lat[f"u{r}"].get("rel", lat[f"u{r}"]["median_ms"] / t),
             **space.count(space.uniform(r))} for r in ratios]
    best = min(rows, key=lambda row: abs(row["latency_fraction"] - 0.5))
    return {"teacher_ms": t, "candidates": rows, "chosen_ratio": best["ratio"]}


def measure_searched(space: ChannelSpace, teacher: torch.nn.Module, arch: Architecture, work: Path) -> dict:
    """Measured latency fraction of a searched architecture, timed interleaved with the teacher."""
    work.mkdir(parents=True, exist_ok=True)
    paths = {"teacher": work / "teacher.onnx", "searched": work / "searched.onnx"}
    export_onnx(teacher, space.example_input(), paths["teacher"])
    export_onnx(materialize(teacher, arch, space=space), space.example_input(), paths["searched"])
    lat = measure_pair(paths, space.input_shape, threads=1)
    t = lat["teacher"]["median_ms"]
    return {"teacher_ms": t, "searched_ms": lat["searched"]["median_ms"],
            "latency_fraction": lat["searched"].get("rel", lat["searched"]["median_ms"] / t), **space.count(arch)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for m in METHODS:
        acc = [r["student_test_accuracy"] for r in runs if r["method"] == m]
        if acc:
            out[m] = {"n": len(acc), "mean": statistics.mean(acc), "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                      "min": min(acc), "max": max(acc)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train-subset", type=int, default=5000)
    ap.add_argument("--val", type=int, default=2000, help="validation images for the per-epoch curves")
    ap.add_argument("--teacher-epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1, help="torch training threads")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--run", type=Path, default=None,
                    help="a 'nas-prune run --data fashion-mnist' folder: its teacher and searched architecture")
    ap.add_argument("--arch", type=Path, default=None,
                    help="a searched architecture JSON of the mobilenet_v2-32 space (teacher trained here)")
    ap.add_argument("--work", type=Path, default=None, help="cache folder (default: runs/distill_bench[_<run>])")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "distill_methods.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.time()

    if args.work is None:
        args.work = ROOT / "runs" / ("distill_bench" + (f"_{args.run.name}" if args.run else ""))
    if args.run is not None:
        space = ChannelSpace.load(args.run / "space.json")
        teacher_path = args.run / "teacher.pt"
        searched = Architecture.load(args.run / "arch.json")
        searched.check_space(space.id)
    else:
        space = ChannelSpace.load(ROOT / "search_spaces" / "mobilenet_v2-32.json")
        teacher_path = args.work / "teacher.pt"
        searched = Architecture.load(args.arch) if args.arch else None
        if searched is not None:
            searched.check_space(space.id)
    if not teacher_path.exists():
        train_teacher(space, "fashion-mnist", teacher_path, epochs=args.teacher_epochs, batch_size=64,
                      train_subset=args.train_subset, seed=0)
    teacher = load_model(space, teacher_path)
    data = load_data("fashion-mnist", input_size=32, train_subset=args.train_subset, seed=0)
    if args.val < len(data.val):
        data.val = data.val.subset(torch.arange(args.val))

    choice_file = args.work / ("searched_choice.json" if searched is not None else "arch_choice.json")
    if choice_file.exists():
        choice = read_json(choice_file)
    elif searched is not None:
        source = args.run / "arch.json" if args.run else args.arch
        choice = {"searched": str(source), **measure_searched(space, teacher, searched, args.work / "latency" / "searched")}
        write_json(choice_file, choice)
    else:
        choice = pick_architecture(space, teacher, args.work / "latency", (0.35, 0.5, 0.6, 0.75))
        write_json(choice_file, choice)
    arch = searched if searched is not None else space.uniform(choice["chosen_ratio"])
    cfg = DistillConfig(dafl_steps_per_epoch=math.ceil(args.train_subset / DistillConfig().dafl_batch_size))

    runs: list[dict] = []
    result: dict = {}
    for seed in range(args.seeds):
        for method in args.methods.split(","):
            m = distill(space, arch, teacher, data, method=method, init="teacher", epochs=args.epochs, seed=seed,
                        out_dir=args.work / f"{'searched-' if searched is not None else ''}{method}-e{args.epochs}-s{seed}", threads=1, config=cfg)
            runs.append({"method": method, "seed": seed, "student_test_accuracy": m["student"]["test_accuracy"],
                         "teacher_test_accuracy": m["teacher"]["test_accuracy"], "train_seconds": m["train_seconds"],
                         "student_ms": m["student"]["latency_ms"], "teacher_ms": m["teacher"]["latency_ms"],
                         "speedup": m["speedup"], "history": m["history"]})
            result = {
                "benchmark": "distill_methods", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "settings": {"data": "fashion-mnist 32x32", "train_subset": args.train_subset, "val": len(data.val),
                             "test": len(data.test), "teacher": str(teacher_path.relative_to(ROOT)) if teacher_path.is_relative_to(ROOT) else str(teacher_path),
                             "teacher_epochs": None if args.run else args.teacher_epochs,
                             "epochs": args.epochs, "seeds": args.seeds, "init": "teacher (L1 channels)",
                             "torch_threads": args.threads, "latency_threads": 1, "config": cfg.to_json()},
                "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                            "onnxruntime": onnxruntime.__version__},
                "architecture": {"choice": choice, "channels": dict(arch.channels), **space.count(arch),
                                 "teacher": space.count(space.full())},
                "summary": summarise(runs), "runs": runs, "wall_seconds": time.time() - t_start,
            }
            write_json(args.output, result)
    print(__import__("json").dumps({k: result[k] for k in ("architecture", "summary", "wall_seconds")}, indent=1))


if __name__ == "__main__":
    main()
