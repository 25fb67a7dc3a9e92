"""Which pick finishes better, the PruningNet's (``--select score``) or a brief real fine-tune's (``--select finetune``)?

Takes finished ``nas-prune run`` directories (made with ``--select score``, the default, or before the
setting existed) and, for each, runs the same job again with ``--select finetune`` in a copy: every
stage up to the finalists is reused from the copy's cache (same teacher, PruningNet, search,
finalists, budget), so the only differences are the pick and what follows it (the finish of the
winner and the final check). A row per run: both picks' sources, final test accuracy, measured
ratio and verdict, the select stage's seconds and its share of the run.

    .venv/bin/python benchmarks/select_modes.py RUN_DIR [RUN_DIR ...] -- [the run's own options, e.g. --data fashion-mnist --train-subset 55000]

The run's own options must be the ones it was made with (the copy's ``config.json`` is checked by
``nas-prune run``). Resumable: a copy whose summary exists is read, not run again; a killed one
resumes from its cached stages.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "select_modes.json"
REDONE = ("select", "distill", "check")  # the stages after the pick; everything before is reused
REDONE_FILES = ("distill", "select", "select.json", "final_check.json", "latency_check.json", "summary.json",
                "report.html")


def _copy(run: Path, dest: Path) -> None:
    """``run`` copied to ``dest`` with the stages after the pick forgotten and ``select`` set to ``finetune``."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns(*REDONE_FILES, "distill_over_budget_*"))
    stages = json.loads((dest / "stages.json").read_text())
    (dest / "stages.json").write_text(json.dumps({k: v for k, v in stages.items() if k not in REDONE}, indent=2))
    cfg = json.loads((dest / "config.json").read_text())
    cfg["select"] = "finetune"
    (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    if (dest / "finalists.json").exists():  # the finalists' pick is arch.json again (a repair may have changed it)
        rows = json.loads((dest / "finalists.json").read_text())
        picked = [r for r in rows if r.get("picked") and r.get("channels")]
        if picked:
            arch = json.loads((dest / "arch.json").read_text())
            arch["channels"] = picked[0]["channels"]
            (dest / "arch.json").write_text(json.dumps(arch, indent=2))


def _row(run: Path, copy: Path) -> dict[str, Any]:
    base, new = (json.loads((d / "summary.json").read_text()) for d in (run, copy))
    sel = json.loads((copy / "select.json").read_text()) if (copy / "select.json").exists() else {}
    seconds = sum(new["stage_seconds"].values())
    return {
        "run": str(run), "copy": str(copy), "model": base["model"], "data": base["data"], "budget": base["budget"],
        "teacher_accuracy": base["teacher"]["accuracy"],
        "score": {"accuracy": base["final"]["accuracy"], "latency_ratio": base["latency_ratio"],
                  "feasible": base["feasible"], "channels": base["final"]["channels"]},
        "finetune": {"accuracy": new["final"]["accuracy"], "latency_ratio": new["latency_ratio"],
                     "feasible": new["feasible"], "channels": new["final"]["channels"],
                     "winner_source": sel.get("winner_source"), "winner": sel.get("winner"),
                     "candidates": [{k: c.get(k) for k in ("source", "trial", "ratio", "steps", "state")}
                                    for c in sel.get("candidates", [])]},
        "same_pick": base["final"]["channels"] == new["final"]["channels"],
        "gain_points": 100 * (new["final"]["accuracy"] - base["final"]["accuracy"]),
        "select_seconds": new["stage_seconds"].get("select"),
        "select_share_of_run": new["stage_seconds"].get("select", 0.0) / seconds if seconds else None,
        "distill_seconds": new["stage_seconds"].get("distill"),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, run_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished nas-prune run directories (select score)")
    ap.add_argument("--output", type=Path, default=OUT)
    a = ap.parse_args(own)
    from nas_prune.on_device import machine_info

    data = json.loads(a.output.read_text()) if a.output.exists() else {"benchmark": "select_modes", "rows": []}
    info = machine_info()
    for run in a.runs:
        if not (run / "summary.json").exists():
            print(f"error: {run} holds no finished run (summary.json): finish it first", file=sys.stderr)
            return 2
        copy = run.with_name(run.name + "-finetune")
        if not (copy / "summary.json").exists():
            if not copy.exists():
                _copy(run, copy)
            cmd = [sys.executable, "-m", "nas_prune", "run", "--out", str(copy), "--select", "finetune", *run_args]
            start = time.perf_counter()
            r = subprocess.run(cmd, check=False)
            if r.returncode != 0:
                print(f"error: {' '.join(cmd)} failed ({r.returncode})", file=sys.stderr)
                return 2
            print(f"{copy}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
        row = {**_row(run, copy), "command": " ".join(["nas-prune run", "--select finetune", *run_args]),
               "machine": {"cpu_model": info.get("cpu_model"), "machine_key": info.get("machine_key"),
                           "python": platform.python_version()}, "load_after": info.get("load_average"),
               "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
        data["rows"] = [x for x in data["rows"] if x["run"] != row["run"]] + [row]
        a.output.write_text(json.dumps(data, indent=2) + "\n")
        print(json.dumps({k: row[k] for k in ("run", "gain_points", "same_pick", "select_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
