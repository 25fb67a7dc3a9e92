"""The final latency check of a run: its final network against its teacher, and the verdict it gives.

``nas-prune run`` measures it once, as its ``check`` stage; ``nas-prune check RUN_DIR``
(:func:`recheck_run`) measures a finished run again with the same protocol, e.g. after moving to
a quieter machine, and updates ``final_check.json``, ``summary.json`` and the report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from nas_prune._io import read_json, write_json
from nas_prune.errors import NasPruneError
from nas_prune.progress import console

__all__ = ["FINAL_SESSIONS", "SETTLE_TRIES", "SETTLE_WAIT_S", "measure_final", "latency_verdict", "recheck_run"]

FINAL_SESSIONS = 6  # blocks of fresh sessions, a second apart, in the final check (measure_ratios)
#: Checks at most when the machine is contended through a check whose interval does not clear the limit
#: (issue 34: the same architecture measured 7.5 % apart in two checks 10 minutes apart, the second one
#: contended), and the seconds waited before each new one.
SETTLE_TRIES = 3
SETTLE_WAIT_S = 30.0


def _clears(final: Mapping[str, Any]) -> bool:
    """Whether a check's whole interval is under the limit (no settling needed)."""
    return bool(final["meets"]) and final["decided_by"] == "interval"


def measure_final(out: Path, input_shape: Any, settings: dict[str, Any], limit: float,
                  quiet_teacher_ms: float | None, *, settle_tries: int = SETTLE_TRIES,
                  settle_wait_s: float = SETTLE_WAIT_S) -> dict[str, Any]:
    """Time ``out/distill/model.onnx`` against ``out/teacher.onnx``, interleaved, and write ``final_check.json``.

    Blocks of fresh sessions a second apart: the verdict's interval covers the ratio's drift here,
    judged on the blocks where the teacher ran at its quiet speed (``quiet_teacher_ms``: the
    finalists' fastest, when known).

    A check that was contended (too few quiet blocks) and whose interval does not clear the limit
    is not a verdict yet: it waits ``settle_wait_s`` and measures again, up to ``settle_tries``
    checks in all; the verdict is the first uncontended check (else the last), and ``settle``
    records every try. Warns loudly when every try was contended.
    """
    from nas_prune.latency import QUIET_TOL, measure_ratios

    def check(quiet: float | None) -> dict[str, Any]:
        return measure_ratios({"final": out / "distill" / "model.onnx"}, out / "teacher.onnx", input_shape, settings,
                              limit=limit, sessions=FINAL_SESSIONS, pause_s=1.0, max_rounds=180,
                              quiet_tol=QUIET_TOL, quiet_teacher_ms=quiet)["final"]

    tries = [check(quiet_teacher_ms)]
    while tries[-1].get("contended") and not _clears(tries[-1]) and len(tries) < settle_tries:
        last = tries[-1]
        console.print(f"final check: contended (the teacher at {last['teacher_ms']:.3g} ms against "
                      f"{last['quiet_teacher_ms']:.3g} ms quiet) and {last['ratio']:.3f}x "
                      f"[{last['interval'][0]:.3f}, {last['interval'][1]:.3f}] does not clear {limit:.3g}x: "
                      f"measuring again in {settle_wait_s:.0f} s ({len(tries) + 1} of {settle_tries})", markup=False)
        time.sleep(settle_wait_s)
        known = [q for q in (quiet_teacher_ms, last.get("quiet_teacher_ms")) if q]
        tries.append(check(min(known) if known else None))
    final = next((t for t in tries if not t.get("contended")), tries[-1])
    final = {**final, "settle": {"tries": len(tries), "used": tries.index(final) + 1,
                                 "ratios": [t["ratio"] for t in tries],
                                 "contended": [bool(t.get("contended")) for t in tries]}}
    write_json(out / "final_check.json", final)
    if final.get("contended"):
        console.print(f"WARNING: the machine was contended through the final check (the teacher ran at "
                      f"{final['teacher_ms']:.3g} ms against {final['quiet_teacher_ms']:.3g} ms quiet"
                      + (f", in {len(tries)} checks" if len(tries) > 1 else "") + "): the verdict "
                      f"counts every block; run 'nas-prune check {out}' on a quieter machine to re-check",
                      style="bold red")
    return final


def latency_verdict(final_check: dict[str, Any]) -> dict[str, Any]:
    """The summary's latency fields from a final check: the measured ratio, its interval, the verdict."""
    t_ms, s_ms = final_check["teacher_ms"], final_check["ms"]  # measured in the same rounds
    return {
        # The verdict is the measurement: the median per-round ratio to the teacher, interleaved,
        # with its 95% bootstrap interval; more rounds were taken while the interval straddled the limit.
        "latency_ratio": final_check["ratio"],
        "latency_ratio_interval": final_check["interval"], "latency_ratio_iqr": final_check["iqr"],
        "latency_ratio_rounds": final_check["rounds"], "limit_ratio": final_check["limit"],
        # blocks of fresh sessions judged on: those where the teacher ran at its quiet speed
        "latency_ratio_blocks": {"quiet": final_check.get("quiet_blocks"),
                                 "all": len(final_check.get("block_ratios") or []),
                                 "contended": final_check.get("contended")},
        # checks taken before the verdict (a contended check that did not clear the limit is taken again)
        "latency_checks": final_check.get("settle") or {"tries": 1, "used": 1},
        "feasible": bool(final_check["meets"]),
        "feasible_decided_by": final_check["decided_by"],
        "speedup": t_ms / s_ms,
    }


def recheck_run(run_dir: str | Path) -> dict[str, Any]:
    """Measure a finished run's final network against its teacher again (``nas-prune check``).

    The protocol is the run's own (its calibrated table's timing settings, its limit, blocks of
    fresh sessions). ``final_check.json`` is replaced, ``summary.json`` gets the new verdict and a
    ``rechecks`` entry (when, on which machine, the verdict before and after), and the report is
    rewritten.

    Returns:
        The updated summary.

    Raises:
        NasPruneError: ``run_dir`` is not a finished run (no ``summary.json`` or a file it needs).
    """
    from nas_prune.latency import LatencyTable
    from nas_prune.on_device import machine_info
    from nas_prune.report import write_report
    from nas_prune.space import ChannelSpace

    out = Path(run_dir)
    if not (out / "summary.json").is_file():
        raise NasPruneError(f"{out} holds no finished run (no summary.json): run 'nas-prune run --out {out}' first")
    for name in ("space.json", "table_calibrated.json", "teacher.onnx", "distill/model.onnx", "stages.json"):
        if not (out / name).is_file():
            raise NasPruneError(f"{out} lacks {name}: it is not a complete nas-prune run; re-run 'nas-prune run' there")
    summary = read_json(out / "summary.json", what="run summary")
    stages = read_json(out / "stages.json", what="run stages")
    if not isinstance(summary, dict) or not isinstance(stages, dict):
        raise NasPruneError(f"{out}: summary.json or stages.json is not a JSON object; re-run 'nas-prune run' there")
    try:
        limit = float(stages["budget"]["result"]["limit_ratio"])
        quiet = (stages.get("finalists", {}).get("result") or {}).get("quiet_teacher_ms")
    except (KeyError, TypeError, ValueError):
        raise NasPruneError(f"{out / 'stages.json'} has no budget result; re-run 'nas-prune run' there") from None
    info = machine_info()
    if (summary.get("calibration") or {}).get("machine") != info.get("machine_key"):
        quiet = None  # the teacher's quiet speed on another machine says nothing about this one's
    space = ChannelSpace.load(out / "space.json")
    table = LatencyTable.load(out / "table_calibrated.json")
    before = {k: summary.get(k) for k in ("latency_ratio", "latency_ratio_interval", "feasible")}
    final = measure_final(out, space.input_shape, table.settings, limit, quiet)
    summary.update(latency_verdict(final))
    summary["teacher"]["measured_latency_ms"] = final["teacher_ms"]
    summary["final"]["measured_latency_ms"] = final["ms"]
    summary.setdefault("rechecks", []).append({
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine_key": info.get("machine_key"),
        "cpu_model": info.get("cpu_model"), "before": before,
        "after": {k: summary[k] for k in ("latency_ratio", "latency_ratio_interval", "feasible")},
    })
    write_json(out / "summary.json", summary)
    write_report(out)
    return summary
