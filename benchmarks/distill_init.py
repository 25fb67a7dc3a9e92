"""Student initialisation for distillation: PruningNet weights (with and without BN recalibration) vs
the teacher's L1-ranked channels. Prints JSON.

mobilenet_v2 on digits (32x32), a 4-epoch teacher and a 4-epoch PruningNet, the uniform 0.5-width
student, KD for 4 epochs, seed 0, 1 torch thread. ``pnet-no-recal`` is what ``--init pnet:`` did
before the BatchNorm statistics of the generated weights were recalibrated (they started at 0 / 1).

    nice -n 5 .venv/bin/python benchmarks/distill_init.py --out benchmarks/results/distill_init.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nas_prune.data import load_data
from nas_prune.distill import distill, get_init_kind, register_init
from nas_prune.pruningnet import train_pruningnet
from nas_prune.space import ChannelSpace
from nas_prune.teacher import train_teacher

ROOT = Path(__file__).resolve().parents[1]


@register_init("pnet-no-recal", arg="PATH", summary="PruningNet weights, BatchNorm statistics left at 0 / 1")
def _pnet_without_recalibration(space, arch, teacher, arg, *, seed, recal):
    """The former ``pnet:``: the generated weights without recalibration batches."""
    return get_init_kind("pnet:" + arg).build(space, arch, teacher, arg, seed=seed, recal=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "distill_init")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    space = ChannelSpace.load(ROOT / "search_spaces" / "mobilenet_v2-32.json")
    data = load_data("digits", input_size=32, seed=0)
    if not (w / "teacher.pt").exists():
        train_teacher(space, "digits", w / "teacher.pt", epochs=4, batch_size=64, seed=0)
    if not (w / "pnet.pt").exists():
        train_pruningnet(space, data, epochs=4, batch_size=64, seed=0).save(w / "pnet.pt")
    arch = space.uniform(0.5)
    rows = {}
    for name, init in (("pnet", f"pnet:{w / 'pnet.pt'}"), ("pnet-no-recal", f"pnet-no-recal:{w / 'pnet.pt'}"),
                       ("teacher", "teacher")):
        t0 = time.time()
        m = distill(space, arch, w / "teacher.pt", data, method="kd", init=init, epochs=args.epochs, seed=0,
                    out_dir=w / f"student-{name}", measure_latency=False)
        rows[name] = {"val_accuracy_per_epoch": [h["val_accuracy"] for h in m["history"]],
                      "test_accuracy": m["student"]["test_accuracy"], "seconds": round(time.time() - t0, 1)}
    result = {"benchmark": "distill_init", "date": time.strftime("%Y-%m-%d", time.gmtime()),
              "settings": {"model": "mobilenet_v2", "data": "digits 32x32", "arch": "uniform 0.5", "method": "kd",
                           "epochs": args.epochs, "teacher_epochs": 4, "pnet_epochs": 4, "seed": 0},
              "results": rows}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
