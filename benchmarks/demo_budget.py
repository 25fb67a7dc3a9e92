"""Does the demo's final network meet its budget on this machine? ``nas-prune run`` N times, as a new user runs it.

Each run is the README's ``make run`` (``nas-prune run`` with the defaults: digits, mobilenet_v2,
0.5x) in its own folder, with an empty calibration cache (``NAS_PRUNE_CACHE`` per run), so every
run is a first run on a machine that did not build the shipped table: the calibration check,
adaptation, finalists and final check all happen. The record per run: ``feasible`` and the final
measured ratio with its interval (``summary.json``), whether the finalists met the budget and in
how many rounds, the calibration's decision, the load average and the wall time.

The target of the budget issue: the final ratio meets the budget in at least 9 of 10 runs on a
QUIET machine, and ``feasible`` is never true when the final measurement is over. Run it with
nothing else on the machine; the JSON records the load average before and after every run.

``--reuse-learned``: runs after the first start from the first run's teacher, gates and PruningNet
(the stages that learn: same configuration and seed, so the same networks, at about 400 of the
demo's ~540 s); every stage that measures or depends on a measurement (the table's calibration, the
budget, the search under it, the finalists, distillation of the pick, the final check) runs afresh,
with its own empty calibration cache. The budget's verdict is decided by those stages alone.

``--background-load``: a CPU-bound process at the lowest priority (``nice 19``, one core) that the
benchmark starts and stops itself, on for half of every run: alternating periods of
``--load-period`` seconds on and off, from a phase drawn per run (the VM's neighbours come and go).
The issue's second figure (at least 8 of 10 feasible) is taken this way, under its own ``--tag``.

Resumable: runs whose record exists are skipped; a killed run resumes from its cached stages (the
pipeline caches every stage) the next time, and the JSON is rewritten after every run, so commit it
as it grows.

    .venv/bin/python benchmarks/demo_budget.py --runs 10
    .venv/bin/python benchmarks/demo_budget.py --runs 10 --reuse-learned --tag fmnist-035 -- --data fashion-mnist --budget 0.35x
    .venv/bin/python benchmarks/demo_budget.py --runs 10 --reuse-learned --tag fmnist-035-load --background-load \
        --reuse-from runs/demo_budget/fmnist-035/run00 -- --data fashion-mnist --budget 0.35x
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from nas_prune.on_device import machine_info

ROOT = Path(__file__).resolve().parents[1]
#: v1: finalists and final check in one session pair each; v2: blocks of fresh sessions (measure_ratios sessions);
#: v3: v2 + the pick 4 % under the budget (PICK_MARGIN) + verdicts on >= 3 quiet blocks (QUIET_TOL);
#: v3b: v3 with 2 quiet blocks enough (MIN_QUIET_BLOCKS);
#: v4: v3b + the pick margin from the drift measured in the run, a contended final check taken again, a quiet
#: one over the budget repaired (shrunk and finished briefly)
PROTOCOL = "v4"


class BackgroundLoad:
    """A busy CPU-bound process at nice 19, switched on for half of the time: ``period_s`` on, ``period_s`` off."""

    def __init__(self, period_s: float, seed: int) -> None:
        self.period_s, self.phase = period_s, random.Random(seed).uniform(0, 2 * period_s)
        self.stop = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.on_s = 0.0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "BackgroundLoad":
        self.start = time.perf_counter()
        self.thread.start()
        return self

    def _switch(self, on: bool) -> None:
        if on and self.proc is None:
            self.proc = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
            self.since = time.perf_counter()
        elif not on and self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.on_s += time.perf_counter() - self.since

    def _loop(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter() - self.start + self.phase
            self._switch(int(t // self.period_s) % 2 == 0)
            self.stop.wait(1.0)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._switch(False)

    def record(self) -> dict[str, Any]:
        total = time.perf_counter() - self.start
        return {"period_s": self.period_s, "nice": 19, "cores": 1, "on_share": round(self.on_s / max(total, 1e-9), 3)}


def cpu_model() -> str:
    return str(machine_info()["cpu_model"])


def record(out: Path, seconds: float, load_before: list[float]) -> dict[str, Any]:
    """What one finished run says about its budget (from its summary.json)."""
    s = json.loads((out / "summary.json").read_text())
    fin = s.get("finalists") or {}
    cal = s.get("calibration") or {}
    ratio, limit = s.get("latency_ratio"), s.get("limit_ratio")
    return {
        "feasible": s.get("feasible"), "latency_ratio": ratio, "limit_ratio": limit,
        "latency_ratio_interval": s.get("latency_ratio_interval"), "decided_by": s.get("feasible_decided_by"),
        "final_blocks": s.get("latency_ratio_blocks"),
        "median_over_budget": bool(ratio is not None and limit is not None and ratio > limit),
        "finalists_met": fin.get("met"), "finalists_rounds": len(fin.get("rounds") or [1]) if fin else None,
        "finalists_measured_ratio": fin.get("measured_ratio"),
        "calibration": cal.get("kind"), "calibration_check": (cal.get("check") or {}).get("within_10pct"),
        "final_accuracy": (s.get("final") or {}).get("accuracy"),
        "pick_margin": fin.get("margin"), "margin_from": fin.get("margin_from"),
        "final_checks": s.get("latency_checks"), "repairs": s.get("repairs"),
        "teacher_accuracy": (s.get("teacher") or {}).get("accuracy"),
        "stage_seconds": {k: round(v["seconds"], 1) for k, v in json.loads((out / "stages.json").read_text()).items()},
        "seconds": round(seconds, 1), "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
    }


#: The learned stages (and their outputs) that ``--reuse-learned`` copies from the first run.
LEARNED = {"space": ("space.json",), "teacher": ("teacher.pt", "teacher.onnx"), "gates": ("gates.json",),
           "pruningnet": ("pnet.pt",)}


def seed_learned(first: Path, out: Path) -> list[str]:
    """Copy the first run's learned stages into ``out`` (an empty run folder); returns their names."""
    records = json.loads((first / "stages.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    if (out / "stages.json").exists():  # a killed reused run: its own record already says what it holds
        return sorted(LEARNED)
    for files in LEARNED.values():
        for f in files:
            shutil.copy2(first / f, out / f)
    (out / "stages.json").write_text(json.dumps({k: records[k] for k in LEARNED}, indent=2) + "\n")
    return sorted(LEARNED)


def _by_tag(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per tag (one machine and recipe): runs, feasible ones, and the budget used (median measured ratio / limit)."""
    out: dict[str, dict[str, Any]] = {}
    for tag in sorted({r["tag"] for r in runs}):
        rs = [r for r in runs if r["tag"] == tag and r.get("latency_ratio") and r.get("limit_ratio")]
        used = sorted(r["latency_ratio"] / r["limit_ratio"] for r in rs)
        out[tag] = {"n": len(rs), "feasible": sum(1 for r in rs if r["feasible"]),
                    "feasible_but_median_over": sum(1 for r in rs if r["feasible"] and r["median_over_budget"]),
                    "budget_used_median": used[len(used) // 2] if used else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "demo_budget")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "demo_budget.json")
    ap.add_argument("--tag", default=None, help="label of this machine/session in the JSON (default: hostname)")
    ap.add_argument("--reuse-learned", action="store_true",
                    help="runs after the first reuse its teacher, gates and PruningNet (see the docstring)")
    ap.add_argument("--reuse-from", type=Path, default=None,
                    help="with --reuse-learned: a finished run folder to take them from (default: this tag's run00)")
    ap.add_argument("--background-load", action="store_true",
                    help="a nice-19 CPU-bound process on one core for half of every run (see the docstring)")
    ap.add_argument("--load-period", type=float, default=60.0, help="seconds on, then off, of the background load")
    ap.add_argument("extra", nargs="*", help="extra arguments for nas-prune run (after --)")
    args = ap.parse_args()

    res: dict[str, Any] = json.loads(args.output.read_text()) if args.output.exists() else {
        "format": "nas-prune/demo-budget", "benchmark": "demo_budget", "runs": []}
    tag = args.tag or platform.node()
    done = {(r["tag"], r["run"]) for r in res["runs"]}
    for n in range(args.runs):
        if (tag, n) in done:
            continue
        out = args.work / tag / f"run{n:02d}"
        env = {**os.environ, "NAS_PRUNE_CACHE": str(out / "cache")}  # a first run: nothing calibrated yet
        reused: list[str] = []
        first = args.reuse_from or args.work / tag / "run00"
        if args.reuse_learned and (n > 0 or args.reuse_from) and (first / "summary.json").exists():
            reused = seed_learned(first, out)
        load = [round(x, 2) for x in os.getloadavg()]
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "nas_prune", "run", "--out", str(out), *args.extra]
        load_rec = None
        if args.background_load:
            with BackgroundLoad(args.load_period, seed=n) as bg:
                proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            load_rec = bg.record()
        else:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"run {n} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        rec = {"tag": tag, "run": n, "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M"), "protocol": PROTOCOL,
               **record(out, time.perf_counter() - start, load), "reused_stages": reused,
               "background_load": load_rec, "command": " ".join(cmd[1:])}
        res["runs"].append(rec)
        runs = res["runs"]
        res["n"] = len(runs)
        res["met"] = sum(1 for r in runs if r["feasible"])
        res["median_over_budget"] = sum(1 for r in runs if r["median_over_budget"])
        res["feasible_but_median_over"] = sum(1 for r in runs if r["feasible"] and r["median_over_budget"])
        res["by_tag"] = _by_tag(runs)
        args.output.write_text(json.dumps(res, indent=2) + "\n")
        print(f"run {n}: feasible {rec['feasible']} ratio {rec['latency_ratio']:.3f} (limit {rec['limit_ratio']}) "
              f"finalists met {rec['finalists_met']} in {rec['finalists_rounds']} round(s); {rec['seconds']:.0f} s; "
              f"load {rec['load_before']} -> {rec['load_after']}", flush=True)
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}))


if __name__ == "__main__":
    main()
