"""Data-free finishing: accuracy of a 0.5-width mobilenet_v2 student vs generator/student steps, DAFL vs DAFL + BN statistics.

Protocol:
* teacher: the space's torchvision mobilenet_v2 (32x32) trained by ``nas_prune.teacher.train_teacher``
  with the ``nas-prune run`` preset of the data set (digits: 10 epochs, batch 64, all 1078 training
  images; fashion-mnist: 8 epochs, batch 128, a 10k training subset), cached in ``--work``
  (default ``/tmp/data_free_cache``, not committed);
* student: uniform width 0.5 of every searchable gene (``space.uniform(0.5)``), initialised from the
  teacher's L1-most-important channels (``init="teacher"``: weights only, no data);
* finish: ``distill(method=...)`` with a training split that raises on any access (so the JSON's
  figures are, by construction, of a finish that saw no training image); each step draws
  ``--batch`` noise vectors, takes one generator step and one student step (DAFL's loop);
* curve: the student's accuracy on the validation split after every epoch of ``--steps-per-epoch``
  steps (the student's one-cycle schedule spans the whole run, so a point is "this run at step k",
  not "a run of k steps"); the test split once at the end;
* methods: ``dafl`` (Chen et al., ICCV 2019) and ``dafl-bn`` (plus DeepInversion's BatchNorm
  statistics, Yin et al., CVPR 2020), the same steps, batch and seeds.

Resumable: every run keeps per-epoch checkpoints in ``--work`` and the JSON (``--output``, merged
with what is there, one entry per data/method/setting/seed) is rewritten after every epoch;
``--commit`` also commits it after every finished run. Prints the summary as JSON.

Usage: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/data_free.py --data digits
--methods dafl-bn,dafl --seeds 0 --epochs 16 --steps-per-epoch 25``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from nas_prune.data import DataBundle, load_data
from nas_prune.distill import DistillConfig, distill
from nas_prune.export import load_model
from nas_prune.files import read_json, write_json
from nas_prune.space import ChannelSpace
from nas_prune.teacher import train_teacher

ROOT = Path(__file__).resolve().parents[1]
# the teacher recipe of `nas-prune run` for each data set (nas_prune/pipeline/_config.py PRESETS)
TEACHER: dict[str, dict[str, Any]] = {"digits": dict(epochs=10, batch_size=64, train_subset=None),
           "fashion-mnist": dict(epochs=8, batch_size=128, train_subset=10000)}


class NoTrainingImages(Dataset):
    """The finish's training split: any use of it is an error (the finish must be data-free)."""

    def __len__(self) -> int:
        raise RuntimeError("the data-free finish asked for the size of the training split")

    def __getitem__(self, idx: int) -> Any:
        raise RuntimeError("the data-free finish read a training image")


def teacher_for(space: ChannelSpace, data: str, work: Path) -> Path:
    path = work / f"teacher_{data}.pt"
    if not path.exists():
        t = TEACHER[data]
        train_teacher(space, data, path, epochs=t["epochs"], batch_size=t["batch_size"],
                      train_subset=t["train_subset"], seed=0)
    return path


def summarise(runs: dict[str, dict]) -> dict[str, Any]:
    groups: dict[str, list[float]] = {}
    for r in runs.values():
        if r.get("done"):
            groups.setdefault(r["group"], []).append(r["student_test_accuracy"])
    return {g: {"n": len(a), "mean": statistics.mean(a), "std": statistics.stdev(a) if len(a) > 1 else 0.0,
                "min": min(a), "max": max(a)} for g, a in sorted(groups.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", choices=sorted(TEACHER))
    ap.add_argument("--methods", default="dafl-bn,dafl")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--steps-per-epoch", type=int, default=25)
    ap.add_argument("--batch", type=int, default=256, help="generated images per step")
    ap.add_argument("--generator-width", type=int, default=DistillConfig().generator_width)
    ap.add_argument("--bn-weight", type=float, default=DistillConfig().bn_weight)
    ap.add_argument("--generator-lr", type=float, default=DistillConfig().generator_lr)
    ap.add_argument("--width", type=float, default=0.5, help="uniform width of the student")
    ap.add_argument("--val", type=int, default=2000, help="at most this many validation images per curve point")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/data_free_cache"))
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "data_free.json")
    ap.add_argument("--commit", action="store_true", help="git-commit the JSON after every finished run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)

    space = ChannelSpace.from_name("mobilenet_v2", input_size=32, num_classes=10)
    teacher_path = teacher_for(space, args.data, args.work)
    teacher = load_model(space, teacher_path)
    real = load_data(args.data, input_size=32, train_subset=TEACHER[args.data]["train_subset"], seed=0)
    val = real.val.subset(torch.arange(args.val)) if args.val < len(real.val) else real.val  # type: ignore[arg-type, attr-defined]
    bundle = DataBundle(real.name, NoTrainingImages(), val, real.test, real.num_classes, real.input_size)
    arch = space.uniform(args.width)
    cfg = DistillConfig(dafl_batch_size=args.batch, dafl_steps_per_epoch=args.steps_per_epoch,
                        generator_width=args.generator_width, bn_weight=args.bn_weight,
                        generator_lr=args.generator_lr)

    result: dict[str, Any] = read_json(args.output) if args.output.exists() else {}
    runs: dict[str, dict] = result.get("runs", {})

    def save() -> None:
        result.update({
            "benchmark": "data_free", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "protocol": __doc__.split("Protocol:")[1].split("Resumable:")[0].strip(),
            "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                        "torch_threads": args.threads},
            "summary": summarise(runs), "runs": runs})
        write_json(args.output, result)

    for seed in (int(s) for s in args.seeds.split(",")):
        for method in args.methods.split(","):
            setting = (f"w{args.width:g}-g{args.generator_width}-b{args.batch}-lr{args.generator_lr:g}"
                       f"-{args.epochs}x{args.steps_per_epoch}" + (f"-bn{args.bn_weight:g}" if method == "dafl-bn" else ""))
            group = f"{args.data}/{method}/{setting}"
            key = f"{group}/s{seed}"
            if runs.get(key, {}).get("done"):
                continue
            record: dict[str, Any] = {"group": group, "data": args.data, "method": method, "seed": seed,
                                      "done": False, "student_width": args.width, "config": cfg.to_json(),
                                      "curve": []}
            runs[key] = record

            def on_epoch(rec: dict[str, Any], record: dict[str, Any] = record) -> None:
                record["curve"].append(rec)
                save()

            m = distill(space, arch, teacher, bundle, method=method, init="teacher", epochs=args.epochs, seed=seed,
                        out_dir=args.work / "runs" / key.replace("/", "_"), measure_latency=False, config=cfg,
                        on_epoch=on_epoch)
            record.update({"done": True, "curve": m["history"], "train_seconds": m["train_seconds"],
                           "student_test_accuracy": m["student"]["test_accuracy"],
                           "student_val_accuracy": m["student"]["val_accuracy"],
                           "teacher_test_accuracy": m["teacher"]["test_accuracy"],
                           "teacher_val_accuracy": m["teacher"]["val_accuracy"],
                           "student_flops": m["student"]["flops"], "teacher_flops": m["teacher"]["flops"]})
            save()
            print(json.dumps({key: {k: record[k] for k in ("student_test_accuracy", "teacher_test_accuracy",
                                                           "train_seconds")}}), flush=True)
            if args.commit:
                subprocess.run(["git", "-C", str(ROOT), "add", str(args.output)], check=False)
                subprocess.run(["git", "-C", str(ROOT), "commit", "-q", "-m",
                                f"data_free: {key} {record['student_test_accuracy']:.3f} (teacher "
                                f"{record['teacher_test_accuracy']:.3f}, {record['train_seconds']:.0f} s)",
                                "--", str(args.output)], check=False)
    print(json.dumps(result.get("summary", {}), indent=1))


if __name__ == "__main__":
    main()
