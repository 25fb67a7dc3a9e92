"""nas-prune vs the usual ways to shrink a network, each at the latency budget it names (issue 30).

For each model (mobilenet_v2, resnet18 at 32x32) and latency budget (a fraction of the teacher's
onnxruntime latency on this machine), one architecture per method, every one finished identically:

  uniform              the widest uniform width the (calibrated) table puts under the target
  tp-l1-global         Torch-Pruning, global pruning, L1 magnitude (``MagnitudePruner``)
  tp-groupnorm-global  Torch-Pruning, global pruning, group-norm importance (its default)
  tp-taylor-global     Torch-Pruning, global pruning, first-order Taylor importance (8 training batches' gradients)
  tp-l1-layer          Torch-Pruning, the same ratio in every layer, L1 (not run by default)
  modelopt-fastnas     NVIDIA Model Optimizer 0.47 FastNAS (``mtp.prune(mode="fastnas",
                       constraints={"flops": "<pct>%"})``, validation accuracy as its score_func);
                       skipped with its reason in the JSON when nvidia-modelopt does not import or run
  gates                Pruning from Scratch gates + bisection on the table (nas-prune)
  random / tpe / evolution / gate-prior
                       nas-prune's search with the PruningNet evaluator, the table as a hard
                       constraint, the same number of PruningNet evaluations each

**The budget it names.** A pick aimed at the table's prediction can measure far from it (the
previous run labelled rows 0.3x that measured 0.146x). So every pick is measured against the
teacher with ``nas-prune run``'s protocol (:func:`nas_prune.latency.measure_ratios`: each candidate
alone with the teacher, 3 blocks of fresh sessions, judged on the quiet blocks), and a row counts
(``in_band``) only when its measured ratio lies in [0.9, 1.0] x budget. Otherwise the method's
target is re-aimed and it picks again, up to 3 re-aims (:func:`next_target`): first the target
scaled by (0.95 x budget) / measured (the band's centre), then a secant through the last two aims
while they lie on one side of the band, and bisection between the last aim under the band and the
last over it once both are known. Targets are the table's predicted latency ratio for uniform,
gates and the searches, and a FLOPs fraction for the FLOPs tools (Torch-Pruning, FastNAS), which
start from the FLOPs of the uniform width the table puts at the budget: the FLOPs target is moved
until the pick *measures* inside the band, the most generous aim a FLOPs tool can get. The picks
of one round are measured in one ``measure_ratios`` call; every measurement and pick is cached
under ``--work``. Rows outside the band are kept (``in_band: false``) but never win a verdict.

**Two phases.** First, for every model, the shared artefacts (teacher, gates, PruningNet) and every
method's pick aimed and measured at every budget: the part that needs a quiet machine, written to the
JSON as it comes (rows with ``finished: false`` and no accuracy; the speed view of the report already
has them). Then every pick is finished, budget by budget; that part only trains, so it may share the
machine. Torch uses ``--train-threads`` (every core by default); onnxruntime measures alone, with the
table's threads.

**Finished identically.** KD from the teacher, initialised from the teacher's L1-ranked channels,
same epochs, training split and seeds (:func:`nas_prune.distill.distill`), scored on the test split.

**FLOPs counted one way**: ``flops_ratio`` is nas-prune's count (conv + linear multiply-accumulates,
``space.count``) over the teacher's, ``flops_ratio_tp`` Torch-Pruning's counter; the JSON says how.

**Verdicts** per model and budget: the best nas-prune row vs the best peer row among in-band rows,
the margin and seed spread, ``never_below_beyond_spread`` and ``leads_by_half_point_beyond_spread``.
The report (``--figure``, plotly HTML beside the JSON, not committed; ``benchmarks/render.py``
rebuilds it) has two views: accuracy vs measured latency ratio (every seed, the mean, the budget
bands) and measured speed-up vs FLOPs removed per method.

Full benchmark (issue 30, item 5), resumable, the JSON rewritten after every (model, budget)::

    nice -n 5 .venv/bin/python -m pip install -c constraints.txt -e '.[bench]'   # FastNAS; optional
    nice -n 5 .venv/bin/python benchmarks/compare_methods.py --work runs/compare_methods

(defaults: mobilenet_v2 and resnet18, the whole Fashion-MNIST training split (``--train-subset 0``), budgets 0.2, 0.3,
0.5x, 3 seeds, teacher and PruningNet 8 epochs, KD 8 epochs, 30 PruningNet evaluations per search.)
Cost on the 2-vCPU dev VM, both cores for torch (measured for mobilenet_v2, AMD EPYC, 2026-12-07):
teacher 983 s (8 epochs of 60k images, 91.8 %), gates 168 s, PruningNet about 7.4 min per epoch
(about 1 h); then the picks (FastNAS's sensitivity map, Torch-Pruning's bisections, the searches,
<= 4 measurement rounds of 10-60 s per budget). KD dominates the rest (estimated, not yet measured at 60k: ~75 s an
epoch at one thread in the issue-14 run, scaled): 8 methods x 3 budgets (<= 24 distinct
architectures per model) x 3 seeds x 8 epochs of 60k images, 6-10 h for mobilenet_v2 and 2-3x that
for resnet18: about 1.5 days in all on this VM, an hour or two on one GPU
(``--device cuda``). ``--smoke`` runs every stage end to end in a few minutes (digits, 1 model, 1 budget,
1 seed, 1 epoch).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _compare_peers import FLOPS_COUNTING, FastNAS, describe, modelopt_unavailable  # noqa: E402
from _compare_report import SELECT_METHOD, figure, verdicts  # noqa: E402

from nas_prune.errors import NasPruneError  # noqa: E402
from nas_prune.files import read_json, write_json  # noqa: E402
from nas_prune.pipeline import SELECT_IMAGES, SELECT_STEPS, StageCache  # noqa: E402
from nas_prune.space import Architecture, ChannelSpace, flops_cost  # noqa: E402
from nas_prune.training import resolve_device  # noqa: E402

__all__ = ["BAND", "METHODS", "Picker", "aim_loop", "chosen", "figure", "in_band", "main", "next_target", "verdicts"]

#: method -> (tool, what its target is)
METHODS: dict[str, tuple[str, str]] = {
    "uniform": ("uniform", "predicted"),
    "tp-l1-global": ("torch-pruning", "flops"),
    "tp-groupnorm-global": ("torch-pruning", "flops"),
    "tp-taylor-global": ("torch-pruning", "flops"),
    "tp-l1-layer": ("torch-pruning", "flops"),
    "modelopt-fastnas": ("modelopt", "flops"),
    "gates": ("nas-prune", "predicted"),
    "random": ("nas-prune", "predicted"),
    "tpe": ("nas-prune", "predicted"),
    "evolution": ("nas-prune", "predicted"),
    "gate-prior": ("nas-prune", "predicted"),
    SELECT_METHOD: ("nas-prune", "select"),
}
#: ``nas-prune run --select finetune`` at one budget: the winner of a short real fine-tune (successive halving)
#: among nas-prune's own in-band picks (gates, searches) and the baselines nas-prune computes itself
#: (``nas_prune.search.BASELINES``: uniform width and global L1 magnitude); its pick is one of theirs.
SELECT_BASELINES = ("uniform", "tp-l1-global")
TP_SETTINGS = {"tp-l1-global": (True, "l1"), "tp-groupnorm-global": (True, "group_norm"),
               "tp-taylor-global": (True, "taylor"), "tp-l1-layer": (False, "l1")}
TAYLOR_BATCHES = 8  # training batches whose gradients Taylor importance reads
SEARCH_METHODS = ("random", "tpe", "evolution", "gate-prior")
TARGET_UNITS = {"predicted": "the calibrated table's predicted latency ratio to the teacher",
                "flops": "a fraction of the teacher's FLOPs (nas-prune's count for Torch-Pruning, FastNAS's own for modelopt)",
                "select": (f"none: the winner of {SELECT_STEPS} epochs of successive halving over {SELECT_IMAGES:,} training "
                           f"images among the in-band nas-prune rows and {', '.join(SELECT_BASELINES)} at the same budget")}
RESULT_FORMAT = "nas-prune/compare-methods"
PROTOCOL = "issue-30: closed loop on measure_ratios, band [0.9, 1] x budget"
BAND = (0.9, 1.0)  # a row counts when its measured ratio lies in [0.9, 1.0] x budget
AIM = 0.95  # re-aims aim at the band's centre
MAX_REAIMS = 3
SESSIONS = 3  # blocks of fresh sessions per candidate, as nas-prune run's finalists
MAX_DRAWS_PER_EVAL = 100  # trials (mostly infeasible, unevaluated draws) per PruningNet evaluation
PNET_PROTOCOL = "teacher-init, L1 order, sandwich + in-place distillation, size-targeted + gate priors"

DEFAULT_METHODS = ("uniform", "tp-l1-global", "tp-groupnorm-global", "tp-taylor-global", "modelopt-fastnas", "gates",
                   "evolution", "gate-prior", SELECT_METHOD)
DEFAULTS = dict(models="mobilenet_v2,resnet18", budgets="0.2,0.3,0.5", seeds="0,1,2", train_subset=0, epochs=8,
                gate_steps=240, gate_ratios="0.3,0.5,0.7", pnet_epochs=8, distill_epochs=8, n_evals=30,
                data="fashion-mnist", threads=1, train_threads=os.cpu_count() or 1, device="cpu", methods=",".join(DEFAULT_METHODS), rounds=30, max_rounds=120,
                max_reaims=MAX_REAIMS, tp_steps=12, fastnas_score_images=2048, fastnas_calib_batches=50,
                work=ROOT / "runs" / "compare_methods", output=ROOT / "benchmarks" / "results" / "compare_methods.json")
#: ``--smoke``: every stage end to end in minutes (explicit options still win).
SMOKE = dict(models="mobilenet_v2", budgets="0.5", seeds="0", data="digits", train_subset=0, epochs=1, gate_steps=8,
             gate_ratios="0.5", pnet_epochs=1, distill_epochs=1, n_evals=4, rounds=5, max_rounds=10, max_reaims=1,
             tp_steps=6, fastnas_score_images=256, fastnas_calib_batches=4,
             methods=f"uniform,tp-l1-global,modelopt-fastnas,gates,{SELECT_METHOD}", work=ROOT / "runs" / "compare_methods_smoke",
             output=ROOT / "runs" / "compare_methods_smoke.json")


def _key(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------- the closed loop (pure)
class MethodSkipped(Exception):
    """A method cannot run here (e.g. its tool does not import): its row is skipped with this reason."""


@dataclass
class Picker:
    """One method's pick at a target: ``pick(target) -> (channels, extra)``; targets grow with latency."""

    start: float
    pick: Callable[[float], tuple[dict[str, int], dict[str, Any]]]
    low: float = 1e-4
    high: float = 1.0


def in_band(ratio: float, budget: float, band: tuple[float, float] = BAND) -> bool:
    """Whether a measured latency ratio lies in ``[band[0], band[1]] x budget``."""
    return band[0] * budget <= ratio <= band[1] * budget


def next_target(history: list[dict[str, Any]], budget: float, *, band: tuple[float, float] = BAND,
                aim: float = AIM) -> float:
    """The next target after the aims in ``history`` (each with ``target`` and measured ``ratio``) missed the band.

    Bisection between the last aim under the band and the last over it once both are known;
    before that a secant through the last two aims (both on one side: the ratio is often affine in
    the target with an offset, e.g. FLOPs at small inputs, where scaling alone never crosses), and
    for the first re-aim the target scaled by ``aim x budget / measured``. A secant step stays
    within a factor 4 of the last target and must move towards the band, else scaling is used.
    """
    lo, hi = band[0] * budget, band[1] * budget
    unders = [h for h in history if h["ratio"] < lo]
    overs = [h for h in history if h["ratio"] > hi]
    if unders and overs:
        return (unders[-1]["target"] + overs[-1]["target"]) / 2
    last, goal = history[-1], aim * budget
    if len(history) >= 2:
        prev = history[-2]
        dt, dr = last["target"] - prev["target"], last["ratio"] - prev["ratio"]
        if dt != 0 and dr / dt > 0:
            step = (goal - last["ratio"]) / (dr / dt)
            t = last["target"] + step
            if (goal - last["ratio"]) * step > 0 and last["target"] / 4 <= t <= last["target"] * 4:
                return t
    return last["target"] * goal / last["ratio"]


def chosen(history: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The aim a method's row reports: the last in the band, else the closest under it, else the fastest."""
    inside = [h for h in history if h["in_band"]]
    if inside:
        return inside[-1]
    under = [h for h in history if h["ratio"] <= BAND[1] * budget]
    if under:
        return max(under, key=lambda h: h["ratio"])
    return min(history, key=lambda h: h["ratio"])


def aim_loop(pickers: Mapping[str, Picker], measure: Callable[[dict[str, dict[str, int]]], dict[str, dict[str, Any]]],
             budget: float, *, max_reaims: int = MAX_REAIMS,
             log: Callable[[str], None] = lambda _m: None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Pick, measure and re-aim every method until its measured ratio is in the band (or the re-aims run out).

    Each round, every unsettled method picks at its target and the new architectures are measured
    together (one ``measure({arch_key: channels})`` call returning ``{arch_key: {"ratio",
    "interval", ...}}``). A method settles when its pick lands in the band, after ``1 + max_reaims``
    aims, or when its next target repeats one already tried. A picker raising
    :class:`MethodSkipped` drops out: with its reason in ``skipped`` when it never picked, noted as
    ``stopped`` on its last aim otherwise. Returns ``(histories, skipped)``.
    """
    histories: dict[str, list[dict[str, Any]]] = {m: [] for m in pickers}
    targets = {m: p.start for m, p in pickers.items()}
    skipped: dict[str, str] = {}
    active = list(pickers)
    for _ in range(max_reaims + 1):
        picks: dict[str, tuple[float, dict[str, int], dict[str, Any]]] = {}
        for m in active:
            try:
                channels, extra = pickers[m].pick(targets[m])
            except MethodSkipped as exc:  # no row without a pick; after one, the row keeps what was measured
                if histories[m]:
                    histories[m][-1]["stopped"] = str(exc)
                else:
                    skipped[m] = str(exc)
                continue
            picks[m] = (targets[m], channels, extra)
        measured = measure({_key(ch): ch for _, ch, _ in picks.values()}) if picks else {}
        active = []
        for m, (t, channels, extra) in picks.items():
            k = _key(channels)
            r = measured[k]
            h = {"target": t, "arch_key": k, "ratio": float(r["ratio"]), "interval": list(r["interval"]),
                 "in_band": in_band(float(r["ratio"]), budget), "channels": channels, **extra}
            histories[m].append(h)
            log(f"{m:<20} aim {len(histories[m])}: target {t:.4g} -> measured {h['ratio']:.3f}x "
                f"[{h['interval'][0]:.3f}, {h['interval'][1]:.3f}]{'  in band' if h['in_band'] else ''}")
            if h["in_band"]:
                continue
            nt = min(pickers[m].high, max(pickers[m].low, next_target(histories[m], budget)))
            if all(not math.isclose(nt, x["target"], rel_tol=1e-9) for x in histories[m]):
                targets[m] = nt
                active.append(m)
        if not active:
            break
    return {m: h for m, h in histories.items() if h}, skipped


# ---------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--smoke`` changes the defaults to a tiny end-to-end run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--smoke", action="store_true", help="tiny end-to-end run: digits, 1 model, 1 budget, 1 seed, 1 epoch")
    add("--models", help="comma-separated: mobilenet_v2,resnet18")
    add("--budgets", help="fractions of the teacher's measured latency")
    add("--seeds", help="distillation seeds per architecture")
    add("--train-subset", type=int, help="training images (0: the whole training split)")
    add("--epochs", type=int, help="teacher training epochs")
    add("--gate-steps", type=int)
    add("--gate-ratios", help="Pruning from Scratch target ratios")
    add("--methods", help=f"comma-separated, of: {','.join(METHODS)}")
    add("--pnet-epochs", type=int)
    add("--distill-epochs", type=int)
    add("--n-evals", type=int, help="PruningNet evaluations per search")
    add("--data", help="digits | fashion-mnist[:ROOT] | cifar10:ROOT | imagefolder:ROOT")
    add("--work", type=Path, help="cache folder (resumable)")
    add("--threads", type=int, help="the latency table's threads (its CPU table at that many threads)")
    add("--train-threads", type=int, help="torch threads for training, pruning and scoring (default: every core; "
                                          "latency is measured alone, with the table's threads)")
    add("--device", help="where the networks train and the PruningNet scores: cpu, cuda[:N] or auto (latency is "
                         "always measured with onnxruntime on this machine's CPU, the budget's device)")
    add("--tables", type=Path, default=ROOT / "latency_tables", help="folder searched for a CPU table of each space")
    add("--tp-steps", type=int, help="bisection steps on Torch-Pruning's ratio per FLOPs target")
    add("--rounds", type=int, help="measure_ratios: rounds of the first pass")
    add("--max-rounds", type=int, help="measure_ratios: rounds at most (contended machine, undecided verdict)")
    add("--max-reaims", type=int, help="re-aims per method and budget after the first pick")
    add("--fastnas-score-images", type=int, help="validation images per FastNAS score")
    add("--fastnas-calib-batches", type=int, help="training batches for FastNAS's BatchNorm calibration")
    add("--calibration", default="auto", choices=("auto", "refresh", "off"),
        help="the table as calibrated on this machine (auto, as nas-prune run) or as stored (off)")
    add("--output", type=Path)
    add("--figure", type=Path, default=None, help="default: OUTPUT with .html")
    ap.set_defaults(**{**DEFAULTS, **(SMOKE if "--smoke" in argv else {})})
    args = ap.parse_args(argv)
    _check(ap, args)
    try:
        args.device = str(resolve_device(args.device))
    except NasPruneError as exc:
        ap.error(str(exc))
    args.figure = args.figure or args.output.with_suffix(".html")
    return args


def _check(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
        args.budget_list = [float(b) for b in args.budgets.split(",")]
        args.seed_list = [int(s) for s in args.seeds.split(",")]
        args.gate_ratio_list = [float(r) for r in args.gate_ratios.split(",")]
        args.method_list = [m.strip() for m in args.methods.split(",") if m.strip()]
    except ValueError as exc:
        ap.error(f"bad list: {exc}")
    if not args.model_list or not all(0 < b <= 1 for b in args.budget_list) or not args.seed_list:
        ap.error("need models, budgets in (0, 1] and seeds")
    if not args.gate_ratio_list or not all(0 < r < 1 for r in args.gate_ratio_list):
        ap.error("--gate-ratios must lie in (0, 1)")
    if not args.method_list or set(args.method_list) - set(METHODS):
        ap.error(f"--methods: choose among {', '.join(METHODS)}")
    if min(args.epochs, args.tp_steps, args.gate_steps, args.pnet_epochs, args.distill_epochs, args.n_evals, args.threads,
           args.train_threads,
           args.rounds, args.max_rounds, args.fastnas_score_images, args.fastnas_calib_batches) < 1 or args.max_reaims < 0:
        ap.error("epochs, steps, evaluations, rounds and threads must be >= 1 (re-aims >= 0)")


# ---------------------------------------------------------------------------- one model
class ModelBench:
    """Every stage of the comparison for one model, cached under ``work/<model>``."""

    def __init__(self, args: argparse.Namespace, model: str) -> None:
        from nas_prune.data import load_data
        from nas_prune.latency import LatencyTable, calibrated_table, find_shipped_table

        self.args, self.model = args, model
        self.out = args.work / model
        self.out.mkdir(parents=True, exist_ok=True)
        subset = args.train_subset or None
        self.config = {"model": model, "data": args.data, "train_subset": subset, "epochs": args.epochs,
                       "gate_steps": args.gate_steps, "gate_ratios": args.gate_ratio_list, "pnet_epochs": args.pnet_epochs,
                       "pnet_protocol": PNET_PROTOCOL, "threads": args.threads, "protocol": PROTOCOL,
                       "calibration": args.calibration}
        self._check_config()
        self.cache = StageCache(self.out)
        self.data = load_data(args.data, input_size=32, train_subset=subset, seed=0)
        self.space = ChannelSpace.from_name(model, input_size=32, num_classes=self.data.num_classes)
        shipped = find_shipped_table(self.space.id, args.threads, root=args.tables)
        if shipped is None:
            raise NasPruneError(f"no latency table in {args.tables} for space {self.space.id} at {args.threads} "
                                "thread(s): profile one with 'nas-prune profile' or pass --threads 1|2")
        # As nas-prune run does: a table this machine did not build is checked and adapted here first,
        # once: the run keeps that table, so a resumed run aims exactly as the first did.
        kept = self.out / "table_calibrated.json"
        if kept.exists():
            self.table = LatencyTable.load(kept)
        else:
            self.table = calibrated_table(shipped, self.space, mode=args.calibration, log=lambda m: print(m, file=sys.stderr))
            self.table.save(kept)
        self.scaled = self.table.rescaled()
        self._full_ms = self.scaled.predict(self.space.full())
        self.seconds: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        self._described: dict[str, dict[str, Any]] = {}
        self._aimed: dict[float, list[dict[str, Any]]] = {}  # phase 1's unfinished rows per budget

    def _check_config(self) -> None:
        cfg_path = self.out / "config.json"
        if cfg_path.exists():
            old = read_json(cfg_path, what="benchmark configuration")
            diff = [k for k in self.config if not isinstance(old, dict) or old.get(k) != self.config[k]]
            if diff:
                raise NasPruneError(f"{self.out} caches a run with other settings ({', '.join(diff)}): "
                                    "use another --work or delete it")
        write_json(cfg_path, self.config)

    def predicted_ratio(self, arch: Architecture) -> float:
        """The calibrated table's predicted latency of ``arch`` over the teacher's."""
        return float(self.scaled.predict(arch) / self._full_ms)

    def describe(self, channels: Mapping[str, int]) -> dict[str, Any]:
        """FLOPs, parameters and both FLOPs ratios (memoised)."""
        k = _key(dict(channels))
        if k not in self._described:
            teacher = self._described.get("teacher") or describe(self.space.full(), self.space)
            self._described["teacher"] = teacher
            self._described[k] = describe(Architecture(self.space.id, dict(channels)), self.space, teacher)
        return self._described[k]

    # -------------------------------------------------------------- shared artefacts
    def prepare(self) -> None:
        """Teacher (always), gates and PruningNet (when a method needs them); cached stages."""
        a, out, space = self.args, self.out, self.space

        def teacher() -> dict[str, Any]:
            from nas_prune.export import export_onnx, load_model
            from nas_prune.teacher import train_teacher

            res = train_teacher(space, a.data, out / "teacher.pt", epochs=a.epochs, batch_size=128,
                                train_subset=a.train_subset or None, seed=0, device=a.device)
            export_onnx(load_model(space, out / "teacher.pt"), space.example_input(), out / "teacher.onnx")
            return {"accuracy": res["test_accuracy"]}

        self.teacher_res = self.cache.run("teacher", teacher, outputs=("teacher.pt", "teacher.onnx"))
        if ({"gates"} | set(SEARCH_METHODS)) & set(a.method_list):  # the PruningNet samples from the gate priors
            self.cache.run("gates", self._gates, outputs=("gates.json",))
        if set(SEARCH_METHODS) & set(a.method_list):
            self.cache.run("pruningnet", self._pnet, outputs=("pnet.pt",))
        self.seconds = self.cache.seconds()

    def _gates(self) -> dict[str, Any]:
        from nas_prune.gates import learn_gates

        a, out = self.args, self.out
        g = learn_gates(self.space, self.data, ratios=a.gate_ratio_list, seeds=(0,), steps=a.gate_steps,
                        batch_size=128, checkpoint=out / "gates.ckpt", device=a.device)
        g.save(out / "gates.json")
        (out / "gates.ckpt").unlink(missing_ok=True)
        return {"ratios": list(g.ratios), "nonzero": [r.nonzero_fraction for r in g.runs]}

    def _pnet(self) -> dict[str, Any]:
        from nas_prune.gates import Gates
        from nas_prune.pruningnet import train_pruningnet

        out = self.out
        # The teacher's L1 order: the order every architecture is finished from (init="teacher").
        net = train_pruningnet(self.space, self.data, epochs=self.args.pnet_epochs, teacher=out / "teacher.pt",
                               gates=Gates.load(out / "gates.json"), batch_size=128, checkpoint=out / "pnet.ckpt", seed=0,
                               device=self.args.device)
        net.save(out / "pnet.pt")
        (out / "pnet.ckpt").unlink(missing_ok=True)
        return {"parameters": sum(p.numel() for p in net.parameters()), "settings": net.train_settings}

    def teacher_model(self) -> torch.nn.Module:
        """The trained teacher (loaded once)."""
        if not hasattr(self, "_teacher"):
            from nas_prune.export import load_model

            self._teacher = load_model(self.space, self.out / "teacher.pt")
        return self._teacher

    # -------------------------------------------------------------- pickers
    def pickers(self, budget: float) -> dict[str, Picker]:
        """Every requested method's :class:`Picker` at ``budget`` (modelopt's skip is noted, not raised)."""
        from nas_prune.search import uniform_under

        start_flops = self.describe(uniform_under(self.space, self.predicted_ratio, budget).channels)["flops_ratio"]
        out = {}
        for method in self.args.method_list:
            if method == SELECT_METHOD:  # not a picker: chosen among the others' picks (select_row)
                continue
            if method == "modelopt-fastnas" and (why := modelopt_unavailable()):
                self.skipped[method] = why
                continue
            unit = METHODS[method][1]
            out[method] = Picker(start=budget if unit == "predicted" else start_flops,
                                 pick=lambda t, m=method: self._cached_pick(m, t))
        return out

    def _cached_pick(self, method: str, target: float) -> tuple[dict[str, int], dict[str, Any]]:
        """``method``'s pick at ``target``, from ``work/<model>/picks/<method>.picks.json`` when made before."""
        path = self.out / "picks" / f"{method}.picks.json"
        done: dict[str, Any] = read_json(path, what="cached picks") if path.exists() else {}
        key = repr(float(target))
        if key not in done:
            start = time.perf_counter()
            try:
                arch, extra = self._select(method, float(target))
            except NasPruneError as exc:  # out of the method's reach: keep a row, it will be out of the band
                from nas_prune.search import min_latency_architecture

                arch, extra = min_latency_architecture(self.space), {"note": f"no pick ({exc}); the smallest"}
            done[key] = {"channels": dict(arch.channels), "pick_seconds": time.perf_counter() - start,
                         "predicted_ratio": self.predicted_ratio(arch), **extra}
            write_json(path, done)
        rec = dict(done[key])
        return rec.pop("channels"), rec

    def _select(self, method: str, target: float) -> tuple[Architecture, dict[str, Any]]:
        from nas_prune.search import MagnitudePruner, uniform_under

        space = self.space
        if method == "uniform":
            return uniform_under(space, self.predicted_ratio, target), {}
        if method in TP_SETTINGS:
            if method not in getattr(self, "_tp", {}):
                glob, importance = TP_SETTINGS[method]
                grads = self._taylor_batches() if importance == "taylor" else []
                self._tp = {**getattr(self, "_tp", {}),
                            method: MagnitudePruner(space, self.teacher_model(), global_pruning=glob, importance=importance,
                                                    batches=grads)}
            arch, ratio = self._tp[method].aim(flops_cost(space), target, steps=self.args.tp_steps)
            return arch, {"pruning_ratio": ratio}
        if method == "modelopt-fastnas":
            return self._fastnas(target), {}
        if method == "gates":
            from nas_prune.gates import Budget, Gates

            budget = Budget("latency", target * self._full_ms, self.scaled)
            return Gates.load(self.out / "gates.json").prune(space, budget), {}
        return self._search(method, target)

    def _taylor_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A few seeded training batches, normalised as the teacher expects (Taylor importance's gradients)."""
        from nas_prune.data import batches, unaugmented

        return [(x, y) for x, y in batches(unaugmented(self.data.train), 64, shuffle=True, seed=0,
                                           max_batches=TAYLOR_BATCHES)]

    def _fastnas(self, target: float) -> Architecture:
        a = self.args
        try:
            if not hasattr(self, "_fastnas_tool"):
                ckpt = self.out / f"fastnas_s{a.fastnas_score_images}_c{a.fastnas_calib_batches}.pth"
                self._fastnas_tool = FastNAS(self.space, self.teacher_model(), self.data, checkpoint=ckpt,
                                             score_images=a.fastnas_score_images, calib_batches=a.fastnas_calib_batches)
            return self._fastnas_tool.architecture(target)
        except Exception as exc:  # modelopt failing to run is a skipped row, not a crash
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise MethodSkipped(f"modelopt FastNAS failed: {type(exc).__name__}: {first}") from exc

    def _search(self, sampler: str, target: float) -> tuple[Architecture, dict[str, Any]]:
        from nas_prune.gates import Gates
        from nas_prune.pruningnet import PruningNet, PruningNetEvaluator
        from nas_prune.search import LatencyBudget, run_search

        if not hasattr(self, "_evaluator"):
            self._evaluator = PruningNetEvaluator(PruningNet.load(self.out / "pnet.pt", space=self.space), self.data,
                                                  recal_batches=20, seed=0, device=self.args.device)
        budgets = LatencyBudget.for_tables([self.scaled], [target * self._full_ms], names=["cpu"])
        n = self.args.n_evals
        # Same number of PruningNet *evaluations* per sampler: an infeasible draw costs a table look-up,
        # not an evaluation, so random / TPE / gate-prior keep drawing (the same study, resumed) until n
        # candidates were evaluated; evolution redraws infeasible ones itself. At most MAX_DRAWS_PER_EVAL * n.
        trials, result = n, None
        while True:
            _, result = run_search(
                self.space, self._evaluator, budgets, storage=f"sqlite:///{(self.out / 'search.db').resolve()}",
                study_name=f"{sampler}-t{target:.6g}-n{n}-evals", n_trials=trials, sampler=sampler,
                gates=Gates.load(self.out / "gates.json") if sampler == "gate-prior" else None,
                population_size=min(50, max(6, n // 4)), seed=0, heartbeat_interval=None)
            missing = n - result["n_evaluated"]
            if missing <= 0 or trials >= MAX_DRAWS_PER_EVAL * n:
                break
            trials = min(MAX_DRAWS_PER_EVAL * n, trials + max(missing, 10))
        best = result["best"]
        return Architecture.from_json(best["architecture"]), {
            "pnet_accuracy": best["accuracy"], "pnet_score": best.get("score"), "n_complete": result["n_complete"],
            "n_feasible": result["n_feasible"], "n_evaluated": result["n_evaluated"]}

    # -------------------------------------------------------------- measuring and finishing
    def measure(self, archs: dict[str, dict[str, int]], limit: float) -> dict[str, dict[str, Any]]:
        """Each architecture's latency ratio to the teacher (``nas-prune run``'s protocol), cached per architecture.

        The ones not measured before go into one :func:`~nas_prune.latency.measure_ratios` call.
        """
        from nas_prune.latency import QUIET_TOL, arch_onnx_bytes, measure_ratios

        folder = self.out / "measured"
        todo = {k: ch for k, ch in archs.items() if not (folder / f"{k}.json").exists()}
        if todo:
            print(f"  {self.model}: measuring {len(todo)} architecture(s) against the teacher", flush=True)
            res = measure_ratios({k: arch_onnx_bytes(self.space, Architecture(self.space.id, ch)) for k, ch in todo.items()},
                                 self.out / "teacher.onnx", self.space.input_shape, self.table.settings, limit=limit,
                                 rounds=self.args.rounds, max_rounds=self.args.max_rounds, sessions=SESSIONS, pairs=True,
                                 quiet_tol=QUIET_TOL)
            for k, r in res.items():
                write_json(folder / f"{k}.json", {**r, "channels": todo[k]})
        return {k: read_json(folder / f"{k}.json", what="latency measurement") for k in archs}

    def distill(self, channels: dict[str, int], seed: int) -> dict[str, Any]:
        """KD-finish one architecture (shared by every method that chose it); cached per seed."""
        from nas_prune.distill import distill

        a = self.args
        folder = self.out / "students" / f"{_key(channels)}-e{a.distill_epochs}" / f"seed{seed}"
        if (folder / "metrics.json").exists():
            return {**read_json(folder / "metrics.json", what="distillation metrics"), "cached": True}
        return distill(self.space, Architecture(self.space.id, channels), self.teacher_model(), self.data,
                       method="kd", init="teacher", epochs=a.distill_epochs, seed=seed, out_dir=folder,
                       threads=a.threads, measure_latency=False, device=a.device)

    def accuracies(self, channels: dict[str, int]) -> list[float]:
        """Test accuracy of ``channels`` finished with every seed."""
        out = []
        for s in self.args.seed_list:
            start = time.perf_counter()
            m = self.distill(channels, s)
            out.append(float(m["student"]["test_accuracy"]))
            if not m.get("cached"):
                print(f"  {self.model} student {_key(channels)} seed {s}: {out[-1]:.4f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
        return out

    # -------------------------------------------------------------- rows
    def aim(self, budget: float) -> list[dict[str, Any]]:
        """Phase 1 at ``budget``: every method's closed-loop pick and measured ratio, rows not finished yet.

        Latency is only measured here, so the phases that need a quiet machine come first (for every
        model); their rows (``accuracy_mean`` None) are written before any network is finished.
        """
        histories, skipped = aim_loop(self.pickers(budget), lambda archs: self.measure(archs, budget), budget,
                                      max_reaims=self.args.max_reaims,
                                      log=lambda m: print(f"  {self.model} {budget:g}x {m}", flush=True))
        self.skipped.update(skipped)
        rows = [self.row(method, budget, chosen(hist, budget), hist, None) for method, hist in histories.items()]
        self._aimed[budget] = rows
        return rows

    def budget_rows(self, budget: float) -> list[dict[str, Any]]:
        """Phase 2 at ``budget``: phase 1's rows, each pick finished with every seed (and the select row)."""
        aimed = self._aimed[budget] if budget in self._aimed else self.aim(budget)
        rows = [{**r, **_accuracy_fields(self.accuracies(r["channels"]))} for r in aimed]
        if SELECT_METHOD in self.args.method_list:
            row = self.select_row(budget, rows)
            if row is None:
                self.skipped[SELECT_METHOD] = f"at {budget:g}x no nas-prune or baseline pick measured in the band"
            else:
                rows.append(row)
        return rows

    def select_row(self, budget: float, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """``--select finetune`` at ``budget``: successive halving over the in-band candidates; the winner's row."""
        from nas_prune.search import successive_halving

        pool = [r for r in rows if r["in_band"] and (r["tool"] == "nas-prune" or r["method"] in SELECT_BASELINES)]
        cands: dict[str, dict[str, Any]] = {}  # one per architecture, nas-prune's own first (as the run's finalists)
        for r in sorted(pool, key=lambda r: (r["tool"] != "nas-prune", -float(r.get("pnet_score") or 0.0))):
            cands.setdefault(r["arch_key"], r)
        order = list(cands.values())
        if not order:
            return None
        seconds = 0.0

        def step(i: int, s: int) -> float:
            nonlocal seconds
            m = self._select_step(order[i]["channels"], s)
            seconds += float(m.get("train_seconds", 0.0))
            return float(m["student"]["val_accuracy"])

        res = successive_halving(len(order), step, steps=SELECT_STEPS, seed=0)
        win = order[res.winner]
        return {**win, "method": SELECT_METHOD, "tool": "nas-prune", "family": "nas-prune", "selected_from": win["method"],
                "target_unit": "select",
                "aims": [], "search_seconds": seconds,
                "setup_seconds": max(self._setup_seconds(c["method"]) for c in order),
                "select": {"images": SELECT_IMAGES, "steps": SELECT_STEPS, "epochs_trained": res.steps_trained,
                           "seconds": seconds,
                           "candidates": [{"method": c["method"], "arch_key": c["arch_key"], "val_accuracy": sc, "state": st,
                                           "accuracy_mean": c["accuracy_mean"]}
                                          for c, sc, st in zip(order, res.scores, res.states)]}}

    def _select_folder(self, channels: dict[str, int], step: int) -> Path:
        return self.out / "select" / _key(channels) / f"step{step}"

    def _select_step(self, channels: dict[str, int], step: int) -> dict[str, Any]:
        """One epoch of the finish over the select subset, continuing the previous step (its metrics; cached per step)."""
        from nas_prune.data import with_train_subset
        from nas_prune.distill import distill

        folder = self._select_folder(channels, step)
        if not (folder / "metrics.json").exists():
            if not hasattr(self, "_select_data"):
                self._select_data = with_train_subset(self.data, SELECT_IMAGES, seed=0)
            init = "teacher" if step == 1 else f"model:{self._select_folder(channels, step - 1) / 'model.pt'}"
            distill(self.space, Architecture(self.space.id, channels), self.teacher_model(), self._select_data,
                    method="kd", init=init, epochs=1, seed=0, out_dir=folder, threads=self.args.threads,
                    measure_latency=False, device=self.args.device)
        return read_json(folder / "metrics.json", what="select metrics")

    def row(self, method: str, budget: float, pick: dict[str, Any], hist: list[dict[str, Any]],
            accs: list[float] | None) -> dict[str, Any]:
        """The result row of one method at one budget (``accs`` None: not finished yet, accuracy fields None)."""
        tool, unit = METHODS[method]
        m = self.measure({pick["arch_key"]: pick["channels"]}, budget)[pick["arch_key"]]
        extra = {x: pick[x] for x in ("pruning_ratio", "pnet_accuracy", "pnet_score", "n_complete", "n_feasible",
                                      "n_evaluated", "note") if x in pick}
        aims = [{k: v for k, v in h.items() if k != "channels"} for h in hist]
        return {
            "model": self.model, "budget": budget, "method": method, "tool": tool,
            "family": "nas-prune" if tool == "nas-prune" else "baseline",
            "latency_ratio": pick["ratio"], "measured_interval": pick["interval"], "in_band": pick["in_band"],
            "measured_ms": m["ms"], "teacher_ms": m["teacher_ms"], "predicted_ratio": pick["predicted_ratio"],
            "target_unit": unit, "aims": aims,
            **_accuracy_fields(accs),
            **self.describe(pick["channels"]),
            "search_seconds": sum(h.get("pick_seconds", 0.0) for h in hist), "setup_seconds": self._setup_seconds(method),
            **extra, "arch_key": pick["arch_key"], "channels": pick["channels"],
        }

    def _setup_seconds(self, method: str) -> float:
        s = self.seconds
        if method == "gates":
            return s.get("gates", 0.0)
        if method in SEARCH_METHODS:  # the PruningNet samples candidates from the gate priors
            return s.get("gates", 0.0) + s.get("pruningnet", 0.0)
        return 0.0

    def teacher_row(self) -> dict[str, Any]:
        """The unpruned network's row (ratio 1 by definition)."""
        full = dict(self.space.full().channels)
        acc = float(self.teacher_res["accuracy"])
        return {"model": self.model, "budget": 1.0, "method": "teacher", "tool": "teacher", "family": "teacher",
                "latency_ratio": 1.0, "measured_interval": [1.0, 1.0], "in_band": None, "predicted_ratio": 1.0,
                "target_unit": None, "aims": [], **_accuracy_fields([acc]), **self.describe(full), "search_seconds": 0.0,
                "setup_seconds": self.seconds.get("teacher", 0.0), "arch_key": _key(full), "channels": full}


def _accuracy_fields(accs: list[float] | None) -> dict[str, Any]:
    """A row's accuracy over seeds (all None while the pick is not finished)."""
    if accs is None:
        return {"accuracy_mean": None, "accuracy_std": None, "accuracy_min": None, "accuracy_max": None,
                "accuracies": [], "finished": False}
    return {"accuracy_mean": statistics.fmean(accs), "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "accuracy_min": min(accs), "accuracy_max": max(accs), "accuracies": accs, "finished": True}


# ---------------------------------------------------------------------------- output
def result_json(args: argparse.Namespace, rows: list[dict[str, Any]], skipped: list[dict[str, Any]],
                seconds: float) -> dict[str, Any]:
    """The result file's content (rewritten after every model and budget)."""
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise RuntimeError(f"non-finite {k} in row {r['method']} {r['model']}")
    hidden = ("model_list", "budget_list", "seed_list", "gate_ratio_list", "method_list", "output", "figure", "work")
    return {
        "format": RESULT_FORMAT, "version": 2, "benchmark": "compare_methods", "protocol": PROTOCOL,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in hidden},
        "device": (f"{platform.processor() or platform.machine()}, onnxruntime CPU at {args.threads} thread(s) (the "
                   f"table's), torch training at {args.train_threads}"),
        "training_device": args.device,
        "distillation": "kd, init from the teacher's L1-ranked channels, same epochs/training split/seeds for all",
        "latency": f"nas_prune.latency.measure_ratios: each candidate alone with the teacher (pairs), {SESSIONS} blocks "
                   "of fresh sessions, judged on quiet blocks (QUIET_TOL); latency_ratio is the median per-round ratio",
        "band_rule": f"in_band: measured ratio in [{BAND[0]:g}, {BAND[1]:g}] x budget; only in-band rows enter verdicts",
        "aim_rule": (f"up to {args.max_reaims} re-aims: first target x {AIM:g} budget / measured, then a secant while on "
                     "one side, bisection between the last under and the last over once both are known"),
        "targets": TARGET_UNITS,
        "flops_counting": FLOPS_COUNTING,
        "skipped": skipped,
        "wall_seconds": seconds,
        "verdicts": verdicts(rows),
        "rows": rows,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':<13}{'budget':>7} {'method':<21}{'ratio':>7}{'band':>6}{'acc%':>8}{'±':>6}{'FLOPs':>7}{'aims':>5}")
    for r in rows:
        band = "-" if r["in_band"] is None else ("yes" if r["in_band"] else "NO")
        acc = "-" if r["accuracy_mean"] is None else f"{100 * r['accuracy_mean']:.2f}"
        std = "-" if r["accuracy_std"] is None else f"{100 * r['accuracy_std']:.2f}"
        print(f"{r['model']:<13}{r['budget']:>7g} {r['method']:<21}{r['latency_ratio']:>7.3f}{band:>6}"
              f"{acc:>8}{std:>6}{r['flops_ratio']:>7.3f}{len(r['aims']):>5}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison in two phases; the JSON (and figure) is rewritten after every model and budget of each.

    Phase 1, for every model: teacher, gates, PruningNet, then every method's pick aimed and measured at
    every budget (the latency-sensitive part, written as unfinished rows). Phase 2: every pick finished
    with every seed, budget by budget, and the select row.
    """
    args = parse_args(argv)
    torch.set_num_threads(args.train_threads)  # torch's work; onnxruntime measures with the table's own threads
    start = time.perf_counter()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (model, budget or "teacher") -> rows, in order
    skipped: list[dict[str, Any]] = []

    def write() -> dict[str, Any]:
        rows = [r for g in groups.values() for r in g]
        result = result_json(args, rows, skipped, time.perf_counter() - start)
        write_json(args.output, result)
        figure(rows, args.figure)
        return result

    def note_skipped(bench: ModelBench) -> None:
        skipped[:] = [s for s in skipped if s["model"] != bench.model]
        skipped.extend({"model": bench.model, "method": m, "reason": why} for m, why in sorted(bench.skipped.items()))

    try:
        benches = []
        for model in args.model_list:
            print(f"== {model}: teacher, gates, PruningNet, picks at {args.budgets}", flush=True)
            bench = ModelBench(args, model)
            bench.prepare()
            groups[(model, "teacher")] = [bench.teacher_row()]
            for b in args.budget_list:
                groups[(model, repr(b))] = bench.aim(b)
                note_skipped(bench)
                write()
            benches.append(bench)
        for bench in benches:
            print(f"== {bench.model}: finishing every pick, {len(args.seed_list)} seed(s)", flush=True)
            for b in args.budget_list:
                groups[(bench.model, repr(b))] = bench.budget_rows(b)
                note_skipped(bench)
                write()
    except NasPruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = write()
    _print_table([r for g in groups.values() for r in g])
    for s in skipped:
        print(f"skipped {s['model']} {s['method']}: {s['reason']}")
    for v in result["verdicts"]:
        print(json.dumps(v))
    print(f"wrote {args.output} and {args.figure} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
