"""Start from the network the user already has: a teacher trained outside nas-prune, then ``nas-prune run``.

Each case is what a user does, as commands (``examples/user_model/``):

1. train their own network with a plain PyTorch script (``train_user_net.py``: their own idx reader,
   their normalisation mean 0.2860 / std 0.3530, all 60k Fashion-MNIST training images) and save
   ``torch.save(model.state_dict(), "net.pt")``; the script prints its own test accuracy;
2. ``nas-prune run --teacher net.pt --mean 0.286 --std 0.353 --data fashion-mnist --train-subset 55000
   --budget B`` (the full training split of nas-prune's 55k/5k split).

Cases (``--case``, repeatable; default all):

- ``user_resnet-0.5x``: the user's residual network (``user_net:user_resnet``) at 0.5x. Targets: the
  run's teacher accuracy within 0.3 point of the user's own evaluation, the teacher stage under 5 % of
  the run's time, the final network within 1 point of the teacher, ``feasible`` true.
- ``mobilenet_v2-0.3x-user``: torchvision's mobilenet_v2 trained by the plain script (8 epochs), at 0.3x;
- ``mobilenet_v2-0.3x-nas-prune``: the same run with the teacher trained by nas-prune (8 epochs, its
  own normalisation): the pretrained path must not be worse (final accuracy, wall time per stage).

Resumable: a case's user training and its run directory are reused (every stage of ``nas-prune run``
is cached), and the JSON is rewritten after every case: commit it as it grows.

    .venv/bin/python benchmarks/pretrained_teacher.py --case user_resnet-0.5x
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nas_prune.on_device import machine_info

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "user_model"
MEAN, STD = "0.286", "0.353"

CASES: dict[str, dict[str, Any]] = {
    "user_resnet-0.5x": {"model": "user_net:user_resnet", "train": "user_resnet", "epochs": 6, "budget": "0.5x",
                         "teacher": "user"},
    "mobilenet_v2-0.3x-user": {"model": "mobilenet_v2", "train": "mobilenet_v2", "epochs": 8, "budget": "0.3x",
                               "teacher": "user"},
    "mobilenet_v2-0.3x-nas-prune": {"model": "mobilenet_v2", "epochs": 8, "budget": "0.3x", "teacher": "nas-prune"},
}


def _env() -> dict[str, str]:
    return {**os.environ, "NAS_PRUNE_PROGRESS": "0", "PYTHONPATH": f"{EXAMPLE}{os.pathsep}{ROOT}"}


def user_training(work: Path, case: dict[str, Any]) -> dict[str, Any]:
    """The user's own script: trains and evaluates outside nas-prune (skipped when done)."""
    record = work / f"user_{case['train']}.json"
    if record.exists():
        return json.loads(record.read_text())
    net = work / f"{case['train']}.pt"
    start = time.time()
    r = subprocess.run([sys.executable, str(EXAMPLE / "train_user_net.py"), "--model", case["train"], "--epochs",
                        str(case["epochs"]), "-o", str(net)], capture_output=True, text=True, env=_env(), check=False)
    if r.returncode != 0:
        raise SystemExit(f"user training failed: {r.stderr[-2000:]}")
    result = {**json.loads(r.stdout.strip().splitlines()[-1]), "weights": str(net), "wall_s": time.time() - start}
    record.write_text(json.dumps(result, indent=2))
    return result


def run_case(name: str, case: dict[str, Any], work: Path) -> dict[str, Any]:
    user = user_training(work, case) if case["teacher"] == "user" else None
    out = work / name
    cmd = [sys.executable, "-m", "nas_prune", "run", "--model", case["model"], "--data", "fashion-mnist",
           "--train-subset", "55000", "--budget", case["budget"], "--out", str(out)]
    if user is not None:
        cmd += ["--teacher", user["weights"], "--mean", MEAN, "--std", STD]
    else:
        cmd += ["--teacher-epochs", str(case["epochs"])]
    start = time.time()
    load_before = list(os.getloadavg())
    r = subprocess.run(cmd, cwd=EXAMPLE, env=_env(), capture_output=True, text=True, check=False)
    (work / f"{name}.log").write_text(r.stderr[-20000:])
    if r.returncode != 0:
        raise SystemExit(f"{name}: nas-prune run failed ({r.returncode}): {r.stderr[-1500:]}")
    s = json.loads((out / "summary.json").read_text())
    stages = s["stage_seconds"]
    total = sum(stages.values())
    row: dict[str, Any] = {
        "case": name, "command": " ".join(map(str, cmd[1:])), "model": case["model"], "budget": case["budget"],
        "teacher_from": case["teacher"], "teacher_accuracy": s["teacher"]["accuracy"],
        "teacher_source": s["teacher"].get("source"), "final_accuracy": s["final"]["accuracy"],
        "gap_points": 100 * (s["teacher"]["accuracy"] - s["final"]["accuracy"]),
        "feasible": s["feasible"], "latency_ratio": s["latency_ratio"],
        "latency_ratio_interval": s["latency_ratio_interval"], "limit_ratio": s["limit_ratio"],
        "stage_seconds": stages, "run_seconds": total, "teacher_share": stages.get("teacher", 0.0) / total,
        "wall_s_this_call": time.time() - start, "load_before": load_before, "load_after": list(os.getloadavg()),
        "preprocess": s.get("preprocess"),
    }
    if user is not None:
        row["user_test_accuracy"] = user["test_accuracy"]
        row["user_training_s"] = user.get("wall_s") or user.get("seconds")
        row["teacher_vs_user_points"] = 100 * (s["teacher"]["accuracy"] - user["test_accuracy"])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "pretrained_teacher")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pretrained_teacher.json")
    ap.add_argument("--user-only", action="store_true", help="Only the users' own training (no latency measured).")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.user_only:
        for name in a.case or list(CASES):
            if CASES[name]["teacher"] == "user":
                print(json.dumps(user_training(a.work, CASES[name])))
        return
    data = json.loads(a.out.read_text()) if a.out.exists() else {"rows": {}}
    info = machine_info()
    data["machine"] = {"cpu_model": info.get("cpu_model"), "machine_key": info.get("machine_key"),
                       "python": platform.python_version()}
    for name in a.case or list(CASES):
        row = run_case(name, CASES[name], a.work)
        row["machine"] = data["machine"]
        data["rows"][name] = row
        a.out.write_text(json.dumps(data, indent=2) + "\n")
        print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
