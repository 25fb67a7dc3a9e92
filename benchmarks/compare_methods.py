"""nas-prune vs the usual ways to shrink a network, at equal *measured* latency.

For each model (mobilenet_v2, resnet18 at 32x32) and latency budget (a fraction of the teacher's
onnxruntime latency measured now, on the host CPU table's settings), one architecture per method:

  uniform           largest uniform width multiplier the table predicts under the budget
  tp-l1-global-flops / tp-l1-layer-flops
                    Torch-Pruning L1 magnitude pruning (global / per-layer), pruning ratio bisected
                    until FLOPs = budget fraction x teacher FLOPs (what users do today)
  tp-l1-global-table / tp-l1-layer-table
                    the same, ratio bisected until the table's prediction meets the budget
  gates             Pruning from Scratch gates + bisection (Wang et al., AAAI 2020) on the table
  random / tpe / evolution / gate-prior
                    run_search with the PruningNet evaluator (MetaPruning, Liu et al. ICCV 2019),
                    the table as a hard constraint, the same number of evaluations each

The PruningNet is trained as ``nas-prune run`` trains it: shared weights from the teacher, channels
in the teacher's L1 order (the order the finish uses too), the sandwich rule with in-place
distillation, size-targeted candidates mixed with the gate priors; it scores by validation
cross-entropy on the whole validation split. ``--methods`` picks the rows (default: the baselines a
user would try first and nas-prune's searches).

Every architecture is then finished identically (KD from the teacher, init from the teacher's
L1-ranked channels, same epochs, training subset and seeds), timed with onnxruntime interleaved
with the teacher and the table's reference network in the same rounds (``table.measure_now``),
and scored on the test split. A row is ``feasible`` when measured latency / teacher latency
<= budget x (1 + tolerance), tolerance 3% by default (how far the interleaved ratio repeats on
this machine, see REFERENCE.md section 4); ``feasible_strict`` has no tolerance. Infeasible
rows are kept.

Everything expensive is cached under ``--work`` (teacher, gates, PruningNet, searches in SQLite,
each distilled student, latency measurements): re-running the same command resumes.

Full benchmark (defaults: mobilenet_v2, Fashion-MNIST 10k images, budgets 0.3x and 0.35x, KD 8
epochs, 3 seeds; about 90 minutes of one core on the 2-vCPU dev VM)::

    nice -n 5 .venv/bin/python benchmarks/compare_methods.py

Bigger box: ``--train-subset 0 --epochs 30 --distill-epochs 20 --n-evals 200 --threads 4
--data cifar10:/data/cifar10``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_baselines import TorchPruningL1, describe, flops_cost, uniform_under  # noqa: E402

from nas_prune.errors import NasPruneError  # noqa: E402
from nas_prune.files import read_json, write_json  # noqa: E402
from nas_prune.pipeline import StageCache  # noqa: E402
from nas_prune.space import Architecture, ChannelSpace  # noqa: E402

METHODS = ("uniform", "tp-l1-global-flops", "tp-l1-layer-flops", "tp-l1-global-table", "tp-l1-layer-table",
           "gates", "random", "tpe", "evolution", "gate-prior")
SEARCH_METHODS = ("random", "tpe", "evolution", "gate-prior")
NAS_PRUNE_METHODS = ("gates",) + SEARCH_METHODS
RESULT_FORMAT = "nas-prune/compare-methods"
MAX_DRAWS_PER_EVAL = 100  # trials (mostly infeasible, unevaluated draws) per PruningNet evaluation

# Cost of the defaults, one core of the 2-vCPU VM (measured per stage, 1 thread): a mobilenet_v2
# epoch on 10k images takes ~47 s full width, ~14-23 s at 0.3-0.5x; teacher 8 epochs ~6 min, gates
# 3 x 240 steps, the PruningNet (sandwich: ~2.3x a teacher step) ~15 min, distillation of <= 12
# architectures x 3 seeds x 8 epochs ~60 min. Re-running the same command resumes from --work.
DEFAULT_METHODS = ("uniform", "tp-l1-global-table", "tp-l1-layer-table", "gates", "evolution", "gate-prior")
DEFAULTS = dict(models="mobilenet_v2", budgets="0.3,0.35", seeds="0,1,2", train_subset=10000,
                epochs=8, gate_steps=240, pnet_epochs=8, distill_epochs=8, n_evals=30, data="fashion-mnist",
                threads=1, tolerance=0.03, methods=",".join(DEFAULT_METHODS))
PNET_PROTOCOL = "teacher-init, L1 order, sandwich + in-place distillation, size-targeted + gate priors"


def _key(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = DEFAULTS
    ap.add_argument("--models", default=d["models"], help="comma-separated: mobilenet_v2,resnet18")
    ap.add_argument("--budgets", default=d["budgets"], help="fractions of the teacher's measured latency")
    ap.add_argument("--seeds", default=d["seeds"], help="distillation seeds per architecture")
    ap.add_argument("--train-subset", type=int, default=d["train_subset"], help="training images (0: all)")
    ap.add_argument("--epochs", type=int, default=d["epochs"], help="teacher training epochs")
    ap.add_argument("--gate-steps", type=int, default=d["gate_steps"])
    ap.add_argument("--methods", default=d["methods"], help=f"comma-separated, of: {','.join(METHODS)}")
    ap.add_argument("--pnet-epochs", type=int, default=d["pnet_epochs"])
    ap.add_argument("--distill-epochs", type=int, default=d["distill_epochs"])
    ap.add_argument("--n-evals", type=int, default=d["n_evals"], help="PruningNet evaluations per search")
    ap.add_argument("--data", default=d["data"], help="digits | fashion-mnist[:ROOT] | cifar10:ROOT | imagefolder:ROOT")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "compare_methods", help="cache folder (resumable)")
    ap.add_argument("--threads", type=int, default=d["threads"], help="torch and onnxruntime threads (table's)")
    ap.add_argument("--tables", type=Path, default=ROOT / "latency_tables",
                    help="folder searched for a CPU table of each space at --threads (profile one on a new machine)")
    ap.add_argument("--tolerance", type=float, default=d["tolerance"], help="feasibility tolerance on the ratio")
    ap.add_argument("--gate-ratios", default="0.3,0.5,0.7", help="Pruning from Scratch target ratios")
    ap.add_argument("--tp-steps", type=int, default=10, help="bisection steps on Torch-Pruning's ratio")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved latency rounds")
    ap.add_argument("--calibration", default="auto", choices=("auto", "refresh", "off"),
                    help="the table as calibrated on this machine (auto, as nas-prune run) or as stored (off)")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "compare_methods.json")
    ap.add_argument("--figure", type=Path, default=None, help="default: OUTPUT with .html")
    args = ap.parse_args(argv)
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
    if min(args.epochs, args.tp_steps, args.gate_steps, args.pnet_epochs, args.distill_epochs, args.n_evals, args.threads) < 1:
        ap.error("epochs, n-evals and threads must be >= 1")
    args.figure = args.figure or args.output.with_suffix(".html")
    return args


# ---------------------------------------------------------------------------- one model
class ModelBench:
    """Every stage of the comparison for one model, cached under ``work/<model>``."""

    def __init__(self, args: argparse.Namespace, model: str) -> None:
        from nas_prune.data import load_data
        from nas_prune.latency import calibrated_table, find_shipped_table

        self.args, self.model = args, model
        self.out = args.work / model
        self.out.mkdir(parents=True, exist_ok=True)
        subset = args.train_subset or None
        self.config = {"model": model, "data": args.data, "train_subset": subset, "epochs": args.epochs,
                       "gate_steps": args.gate_steps, "gate_ratios": args.gate_ratio_list, "pnet_epochs": args.pnet_epochs,
                       "pnet_protocol": PNET_PROTOCOL, "threads": args.threads}
        cfg_path = self.out / "config.json"
        if cfg_path.exists():
            old = read_json(cfg_path, what="benchmark configuration")
            diff = [k for k in self.config if not isinstance(old, dict) or old.get(k) != self.config[k]]
            if diff:
                raise NasPruneError(f"{self.out} caches a run with other settings ({', '.join(diff)}): "
                                    "use another --work or delete it")
        write_json(cfg_path, self.config)
        self.cache = StageCache(self.out)
        self.data = load_data(args.data, input_size=32, train_subset=subset, seed=0)
        self.space = ChannelSpace.from_name(model, input_size=32, num_classes=self.data.num_classes)
        shipped = find_shipped_table(self.space.id, args.threads, root=args.tables)
        if shipped is None:
            raise NasPruneError(f"no latency table in {args.tables} for space {self.space.id} at {args.threads} "
                                "thread(s): profile one with 'nas-prune profile' or pass --threads 1|2")
        self.table_path = shipped
        # as nas-prune run does: a table this machine did not build is checked and adapted here first
        self.table = calibrated_table(shipped, self.space, mode=args.calibration,
                                      log=lambda m: print(m, file=sys.stderr))
        self.seconds: dict[str, float] = {}

    # -------------------------------------------------------------- shared artefacts
    def prepare(self) -> None:
        a, out, space = self.args, self.out, self.space

        def teacher() -> dict[str, Any]:
            from nas_prune.export import export_onnx, load_model
            from nas_prune.teacher import train_teacher

            res = train_teacher(space, a.data, out / "teacher.pt", epochs=a.epochs, batch_size=128,
                                train_subset=a.train_subset or None, seed=0)
            export_onnx(load_model(space, out / "teacher.pt"), space.example_input(), out / "teacher.onnx")
            return {"accuracy": res["test_accuracy"]}

        self.teacher_res = self.cache.run("teacher", teacher, outputs=("teacher.pt", "teacher.onnx"))

        def clock() -> dict[str, Any]:
            now = self.table.measure_now(space, {"teacher": out / "teacher.onnx"}, rounds=a.rounds)
            return {"teacher_ms": now["teacher"], "reference_ms": now["reference"]}

        self.clock = self.cache.run("clock", clock)
        self.scaled = self.table.rescaled(self.clock["reference_ms"])

        def gates() -> dict[str, Any]:
            from nas_prune.gates import learn_gates

            g = learn_gates(space, self.data, ratios=a.gate_ratio_list, seeds=(0,), steps=a.gate_steps,
                            batch_size=128, checkpoint=out / "gates.ckpt")
            g.save(out / "gates.json")
            (out / "gates.ckpt").unlink(missing_ok=True)
            return {"ratios": list(g.ratios), "nonzero": [r.nonzero_fraction for r in g.runs]}

        self.cache.run("gates", gates, outputs=("gates.json",))

        def pnet() -> dict[str, Any]:
            from nas_prune.gates import Gates
            from nas_prune.pruningnet import train_pruningnet

            g = Gates.load(out / "gates.json")
            # The teacher's L1 order: the order every architecture is finished from (init="teacher").
            net = train_pruningnet(space, self.data, epochs=a.pnet_epochs, teacher=out / "teacher.pt", gates=g,
                                   batch_size=128, checkpoint=out / "pnet.ckpt", seed=0)
            net.save(out / "pnet.pt")
            (out / "pnet.ckpt").unlink(missing_ok=True)
            return {"parameters": sum(p.numel() for p in net.parameters()), "settings": net.train_settings}

        self.cache.run("pruningnet", pnet, outputs=("pnet.pt",))
        self.seconds = self.cache.seconds()

    # -------------------------------------------------------------- architectures
    def architectures(self, budget: float) -> dict[str, dict[str, Any]]:
        """``{method: {"channels", "search_seconds", "setup_seconds", ...}}`` at ``budget``, cached."""
        path = self.out / "archs" / f"budget{budget:g}_evals{self.args.n_evals}.json"
        done: dict[str, Any] = read_json(path, what="cached architectures") if path.exists() else {}
        budget_ms = budget * self.clock["teacher_ms"]
        for method in self.args.method_list:
            if method in done:
                continue
            start = time.perf_counter()
            try:
                arch, extra = self._select(method, budget, budget_ms)
            except NasPruneError as exc:  # budget out of the method's reach: keep a row, it will be infeasible
                from nas_prune.search import min_latency_architecture

                arch, extra = min_latency_architecture(self.space), {"note": f"no feasible pick ({exc}); smallest"}
            rec = {"channels": dict(arch.channels), "search_seconds": time.perf_counter() - start,
                   "setup_seconds": self._setup_seconds(method), "predicted_ms": self.scaled.predict(arch), **extra}
            done[method] = rec
            write_json(path, done)
            print(f"  {self.model} {budget:g}x {method:<19} predicted {rec['predicted_ms']:.4f} ms "
                  f"(budget {budget_ms:.4f}) in {rec['search_seconds']:.1f} s", flush=True)
        return done

    def _setup_seconds(self, method: str) -> float:
        s = self.seconds
        if method == "gates":
            return s.get("gates", 0.0)
        if method in SEARCH_METHODS:  # the PruningNet samples candidates from the gate priors
            return s.get("gates", 0.0) + s.get("pruningnet", 0.0)
        return 0.0

    def _tp(self, global_pruning: bool) -> TorchPruningL1:
        attr = f"_tp_{global_pruning}"
        if not hasattr(self, attr):
            from nas_prune.export import load_model

            setattr(self, attr, TorchPruningL1(space=self.space, model=load_model(self.space, self.out / "teacher.pt"),
                                               global_pruning=global_pruning))
        return getattr(self, attr)

    def _select(self, method: str, budget: float, budget_ms: float) -> tuple[Architecture, dict[str, Any]]:
        space = self.space
        if method == "uniform":
            return uniform_under(space, self.scaled.predict, budget_ms), {}
        if method.startswith("tp-l1"):
            tp = self._tp("global" in method)
            if method.endswith("flops"):
                limit = budget * space.count(space.full())["flops"]
                arch, ratio = tp.aim(flops_cost(space), limit, steps=self.args.tp_steps)
            else:
                arch, ratio = tp.aim(self.scaled.predict, budget_ms, steps=self.args.tp_steps)
            return arch, {"pruning_ratio": ratio}
        if method == "gates":
            from nas_prune.gates import Budget, Gates

            return Gates.load(self.out / "gates.json").prune(space, Budget("latency", budget_ms, self.scaled)), {}
        return self._search(method, budget, budget_ms)

    def _search(self, sampler: str, budget: float, budget_ms: float) -> tuple[Architecture, dict[str, Any]]:
        from nas_prune.gates import Gates
        from nas_prune.pruningnet import PruningNet, PruningNetEvaluator
        from nas_prune.search import LatencyBudget, run_search

        if not hasattr(self, "_evaluator"):
            self._evaluator = PruningNetEvaluator(PruningNet.load(self.out / "pnet.pt", space=self.space), self.data,
                                                  recal_batches=20, seed=0)
        budgets = LatencyBudget.for_tables([self.scaled], [budget_ms], names=["cpu"])
        n = self.args.n_evals
        # Same number of PruningNet *evaluations* per sampler. An infeasible draw costs a table
        # look-up, not an evaluation (the objective skips it), so random / TPE / gate-prior keep
        # drawing (the same study, resumed) until n candidates were evaluated; evolution redraws
        # infeasible candidates itself. Capped at MAX_DRAWS_PER_EVAL * n trials.
        trials, result = n, None
        while True:
            # Only the gate-prior sampler gets the gates (and the gate architectures enqueued with them).
            study, result = run_search(
                self.space, self._evaluator, budgets, storage=f"sqlite:///{(self.out / 'search.db').resolve()}",
                study_name=f"{sampler}-b{budget:g}-n{n}-evals", n_trials=trials, sampler=sampler,
                gates=Gates.load(self.out / "gates.json") if sampler == "gate-prior" else None,
                population_size=min(50, max(6, n // 4)), seed=0, heartbeat_interval=None)
            missing = n - result["n_evaluated"]
            if missing <= 0 or trials >= MAX_DRAWS_PER_EVAL * n:
                break
            trials = min(MAX_DRAWS_PER_EVAL * n, trials + max(missing, 10))
        best = result["best"]
        return Architecture.from_json(best["architecture"]), {"pnet_accuracy": best["accuracy"],
                                                              "pnet_score": best.get("score"),
                                                              "n_complete": result["n_complete"],
                                                              "n_feasible": result["n_feasible"],
                                                              "n_evaluated": result["n_evaluated"]}

    # -------------------------------------------------------------- finishing
    def distill(self, channels: dict[str, int], seed: int) -> dict[str, Any]:
        """KD-finish one architecture (shared by every method that chose it); cached per seed."""
        from nas_prune.distill import distill

        a = self.args
        folder = self.out / "students" / f"{_key(channels)}-e{a.distill_epochs}" / f"seed{seed}"
        if (folder / "metrics.json").exists():
            return {**read_json(folder / "metrics.json", what="distillation metrics"), "cached": True}
        if not hasattr(self, "_teacher"):
            from nas_prune.export import load_model

            self._teacher = load_model(self.space, self.out / "teacher.pt")
        return distill(self.space, Architecture(self.space.id, channels), self._teacher, self.data,
                       method="kd", init="teacher", epochs=a.distill_epochs, seed=seed, out_dir=folder,
                       threads=a.threads, measure_latency=False)

    def measure(self, archs: list[dict[str, int]]) -> dict[str, Any]:
        """Teacher, reference and every architecture timed in the same interleaved rounds (cached)."""
        from nas_prune.latency import arch_onnx_bytes

        keys = sorted({_key(c) for c in archs})
        path = self.out / f"latency_{_key(keys)}.json"
        if path.exists():
            return read_json(path, what="latency measurement")
        by_key = {_key(c): c for c in archs}
        models: dict[str, Any] = {"teacher": self.out / "teacher.onnx"}
        models.update({k: arch_onnx_bytes(self.space, Architecture(self.space.id, by_key[k])) for k in keys})
        now = self.table.measure_now(self.space, models, rounds=self.args.rounds)
        res = {"teacher_ms": now["teacher"], "reference_ms": now["reference"], "ms": {k: now[k] for k in keys}}
        write_json(path, res)
        return res

    def rows(self) -> list[dict[str, Any]]:
        a, space = self.args, self.space
        self.prepare()
        picks = {b: {m: r for m, r in self.architectures(b).items() if m in a.method_list} for b in a.budget_list}
        unique = {_key(r["channels"]): r["channels"] for p in picks.values() for r in p.values()}
        print(f"  {self.model}: {len(unique)} distinct architectures x {len(a.seed_list)} seeds to distill", flush=True)
        acc: dict[str, list[float]] = {}
        for i, (k, ch) in enumerate(sorted(unique.items())):
            acc[k] = []
            for s in a.seed_list:
                start = time.perf_counter()
                m = self.distill(ch, s)
                acc[k].append(float(m["student"]["test_accuracy"]))
                if not m.get("cached"):
                        print(f"  {self.model} student {i + 1}/{len(unique)} seed {s}: {acc[k][-1]:.4f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
        lat = self.measure(list(unique.values()))
        t_ms = lat["teacher_ms"]
        rows = []
        for b, methods in picks.items():
            for method, rec in methods.items():
                k = _key(rec["channels"])
                ms = lat["ms"][k]
                accs = acc[k]
                ratio = ms / t_ms
                rows.append({
                    "method": method, "family": "nas-prune" if method in NAS_PRUNE_METHODS else "baseline",
                    "model": self.model, "budget": b, "budget_ms": b * t_ms,
                    "measured_ms": ms, "teacher_ms": t_ms, "latency_ratio": ratio,
                    "predicted_ms": self.scaled.table.predict(rec["channels"], reference_ms=lat["reference_ms"]),
                    "feasible": bool(ratio <= b * (1 + a.tolerance)), "feasible_strict": bool(ratio <= b),
                    "accuracy_mean": statistics.fmean(accs),
                    "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "accuracy_min": min(accs), "accuracy_max": max(accs), "accuracies": accs,
                    **describe(Architecture(space.id, rec["channels"]), space),
                    "search_seconds": rec["search_seconds"], "setup_seconds": rec["setup_seconds"],
                    **{x: rec[x] for x in ("pruning_ratio", "pnet_accuracy", "pnet_score", "n_complete", "n_feasible",
                                           "n_evaluated", "note")
                       if x in rec},
                    "arch_key": k, "channels": rec["channels"],
                })
        full = describe(space.full(), space)
        rows.append({"method": "teacher", "family": "teacher", "model": self.model, "budget": 1.0,
                     "budget_ms": t_ms, "measured_ms": t_ms, "teacher_ms": t_ms, "latency_ratio": 1.0,
                     "predicted_ms": self.scaled.table.predict(space.full(), reference_ms=lat["reference_ms"]),
                     "feasible": True, "feasible_strict": True,
                     "accuracy_mean": float(self.teacher_res["accuracy"]), "accuracy_std": 0.0,
                     "accuracy_min": float(self.teacher_res["accuracy"]),
                     "accuracy_max": float(self.teacher_res["accuracy"]), "accuracies": [float(self.teacher_res["accuracy"])],
                     **full, "search_seconds": 0.0, "setup_seconds": self.seconds.get("teacher", 0.0),
                     "arch_key": _key(space.full().channels), "channels": dict(space.full().channels)})
        return rows


# ---------------------------------------------------------------------------- output
def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and budget: best feasible nas-prune method vs best feasible baseline."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        for b in sorted({r["budget"] for r in rows if r["model"] == model and r["method"] != "teacher"}):
            sel = [r for r in rows if r["model"] == model and r["budget"] == b and r["feasible"]]
            ours = max((r for r in sel if r["family"] == "nas-prune"), key=lambda r: r["accuracy_mean"], default=None)
            base = max((r for r in sel if r["family"] == "baseline"), key=lambda r: r["accuracy_mean"], default=None)
            v: dict[str, Any] = {"model": model, "budget": b,
                                 "best_nas_prune": ours and ours["method"], "best_baseline": base and base["method"]}
            if ours and base:
                margin = ours["accuracy_mean"] - base["accuracy_mean"]
                spread = max(ours["accuracy_std"], base["accuracy_std"])
                v.update(margin_points=100 * margin, spread_points=100 * spread,
                         beats_by_1pt_beyond_spread=bool(margin >= 0.01 + spread))
            v["nas_prune_all_feasible"] = all(r["feasible"] for r in rows if r["model"] == model and r["budget"] == b
                                              and r["family"] == "nas-prune")
            out.append(v)
    return out


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    models = sorted({r["model"] for r in rows})
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=models)
    methods = ["teacher"] + list(METHODS)
    palette = ["#000000", "#1f77b4", "#ff7f0e", "#ffbb78", "#d62728", "#ff9896", "#2ca02c", "#9467bd", "#8c564b",
               "#e377c2", "#17becf"]
    for col, model in enumerate(models, start=1):
        for i, method in enumerate(methods):
            sel = sorted((r for r in rows if r["model"] == model and r["method"] == method), key=lambda r: r["measured_ms"])
            if not sel:
                continue
            fig.add_trace(go.Scatter(
                x=[r["measured_ms"] for r in sel], y=[100 * r["accuracy_mean"] for r in sel],
                error_y={"type": "data", "array": [100 * r["accuracy_std"] for r in sel]},
                mode="markers+lines" if method != "teacher" else "markers", name=method, legendgroup=method,
                showlegend=col == 1,
                marker={"color": palette[i % len(palette)], "size": 11 if method == "teacher" else 8,
                        "symbol": ["circle" if r["feasible"] else "x" for r in sel]},
                text=[f"budget {r['budget']:g}x, ratio {r['latency_ratio']:.3f}, "
                      f"{'feasible' if r['feasible'] else 'INFEASIBLE'}" for r in sel],
                hovertemplate="%{x:.4f} ms, %{y:.2f}%<br>%{text}"), row=1, col=col)
        teacher = next((r for r in rows if r["model"] == model and r["method"] == "teacher"), None)
        if teacher:
            for b in sorted({r["budget"] for r in rows if r["model"] == model and r["method"] != "teacher"}):
                fig.add_vline(x=b * teacher["teacher_ms"], line_dash="dot", line_color="grey", row=1, col=col)
        fig.update_xaxes(title_text="measured onnxruntime latency (ms; dotted: budgets)", row=1, col=col)
        fig.update_yaxes(title_text="test accuracy (%, mean ± std over seeds)", row=1, col=col)
    fig.update_layout(title="Accuracy vs measured latency at equal budgets (x markers: over budget)",
                      height=520, width=560 * len(models))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True)  # self-contained: viewable offline


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        for model in args.model_list:
            print(f"== {model}", flush=True)
            rows += ModelBench(args, model).rows()
    except NasPruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise RuntimeError(f"non-finite {k} in row {r['method']} {r['model']}")
    result = {
        "format": RESULT_FORMAT, "version": 1, "benchmark": "compare_methods",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("model_list", "budget_list", "seed_list", "gate_ratio_list", "method_list", "output",
                                  "figure", "work")},
        "device": f"{platform.processor() or platform.machine()}, {args.threads} thread(s), onnxruntime CPU",
        "distillation": "kd, init from the teacher's L1-ranked channels, same epochs/subset/seeds for all",
        "feasible_rule": f"measured latency / teacher latency (same interleaved rounds) <= budget x (1 + {args.tolerance:g})",
        "wall_seconds": time.perf_counter() - start,
        "verdicts": verdicts(rows),
        "rows": rows,
    }
    write_json(args.output, result)
    figure(rows, args.figure)
    print(f"{'model':<13}{'budget':>7} {'method':<20}{'ratio':>7}{'feas':>6}{'acc%':>8}{'±':>6}{'MFLOPs':>8}{'search s':>9}")
    for r in rows:
        print(f"{r['model']:<13}{r['budget']:>7g} {r['method']:<20}{r['latency_ratio']:>7.3f}{str(r['feasible'])[0]:>6}"
              f"{100 * r['accuracy_mean']:>8.2f}{100 * r['accuracy_std']:>6.2f}{r['flops'] / 1e6:>8.2f}"
              f"{r['search_seconds']:>9.1f}")
    for v in result["verdicts"]:
        print(json.dumps(v))
    print(f"wrote {args.output} and {args.figure} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
