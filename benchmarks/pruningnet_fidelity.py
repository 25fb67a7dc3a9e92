"""Fidelity of PruningNet scores: do they rank architectures the way training each one alone does?

32 architectures of mobilenet_v2 (32 px, Fashion-MNIST) = 4 latency levels (0.3, 0.4, 0.55, 0.75 of
the full network by the shipped 1-thread table) x 8 shapes within +-5 % of the level (the uniform
width nearest the level is one of them where it falls inside). Ground truth: each architecture
trained alone from scratch with 2 seeds, test accuracy on the whole test split. The PruningNet is
trained with nas-prune's default protocol (teacher-initialised, sandwich rule, in-place
distillation, size-targeted candidates) and scores each architecture as the search does.

The figure (``.html`` beside the JSON) is rebuilt from the JSON by ``make figures``. Reported at the
top level of the JSON: ``tau_pruningnet``, ``tau_flops``, ``tau_params``,
``tau_latency`` (global Kendall tau against the mean stand-alone accuracy),
``tau_within_level_mean`` (PruningNet, mean over levels; also per level and for FLOPs),
``tau_diff_ci95`` (paired bootstrap 95 % interval of tau(PruningNet) - tau(FLOPs)),
``tau_seed_to_seed`` (seed 0 vs seed 1 of the ground truth: the noise ceiling), ``top2_hits`` out of
``levels`` (the PruningNet's top pick of a level is among the level's stand-alone top 2).

Resumable and parallel: every stand-alone run is one small JSON under ``--work`` (committed, so a
later session can finish the ground truth), claimed with an exclusive lock file, so several
workers (``--stage alone``) can share the jobs; the teacher and PruningNet checkpoints live under
``--cache``.

    nice -n 5 .venv/bin/python benchmarks/pruningnet_fidelity.py            # everything, resumes
    nice -n 5 .venv/bin/python benchmarks/pruningnet_fidelity.py --stage alone   # a ground-truth worker
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import torch

from nas_prune.data import load_data
from nas_prune.files import read_json, write_json
from nas_prune.latency import LatencyTable, find_shipped_table
from nas_prune.space import Architecture, ChannelSpace, draw_near, materialize
from nas_prune.training import TrainConfig, evaluate, fit, set_seed

LEVELS = (0.3, 0.4, 0.55, 0.75)


def find_table(space: ChannelSpace, threads: int) -> LatencyTable:
    path = find_shipped_table(space.id, threads)
    if path is None:
        raise SystemExit(f"no shipped table for {space.id} at {threads} thread(s)")
    return LatencyTable.load(path)


def make_archs(space: ChannelSpace, table: LatencyTable, per_level: int, seed: int) -> list[dict[str, Any]]:
    """``per_level`` architectures within +-5 % of each level's predicted latency ratio."""
    full = table.relative(space.full())

    def lat(a: Architecture) -> float:
        return table.relative(a) / full

    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for level in LEVELS:
        shapes: list[dict[str, Any]] = []
        uni = min((space.uniform(r / 100) for r in range(5, 101)), key=lambda a: abs(lat(a) - level))
        if abs(lat(uni) / level - 1) <= 0.05:
            shapes.append({"channels": dict(uni.channels), "uniform": True})
        seen = {tuple(uni.channels.values())}
        while len(shapes) < per_level:
            a = draw_near(space, lat, level, rng, spread=0.6)
            key = tuple(a.channels.values())
            if abs(lat(a) / level - 1) <= 0.05 and key not in seen:
                seen.add(key)
                shapes.append({"channels": dict(a.channels), "uniform": False})
        for s in shapes:
            a = Architecture(space.id, s["channels"])
            c = space.count(a)
            out.append({"level": level, "predicted_ratio": lat(a), "flops": c["flops"], "params": c["params"], **s})
    return out


# ---------------------------------------------------------------------- ground truth
def _claim(lock: Path) -> bool:
    """Take ``lock`` (exclusive create); a lock left by a dead process on this host is taken over."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            host, pid = lock.read_text().split(":")
            if host == socket.gethostname() and not Path(f"/proc/{pid}").exists():
                lock.unlink()
                return _claim(lock)
        except (OSError, ValueError):
            pass
        return False
    os.write(fd, f"{socket.gethostname()}:{os.getpid()}".encode())
    os.close(fd)
    return True


def run_alone(args: argparse.Namespace, space: ChannelSpace, archs: list[dict[str, Any]], data: Any) -> None:
    alone = args.work / "alone"
    alone.mkdir(parents=True, exist_ok=True)
    jobs = [(s, i) for s in range(args.seeds) for i in range(len(archs))]  # seed 0 of every arch first
    for seed, i in jobs:
        out = alone / f"{i:02d}_s{seed}.json"
        lock = alone / f"{i:02d}_s{seed}.lock"
        if out.exists() or not _claim(lock):
            continue
        try:
            set_seed(1000 * seed + i)
            model = materialize(space.build_model(), Architecture(space.id, archs[i]["channels"]), space=space)
            start = time.perf_counter()
            fit(model, data.train, None, TrainConfig(epochs=args.alone_epochs, batch_size=128, lr=0.05,
                                                      seed=1000 * seed + i, label=f"alone {i} s{seed}"))
            res = {"arch": i, "seed": seed, "test_accuracy": evaluate(model, data.test),
                   "train_seconds": round(time.perf_counter() - start, 1), "epochs": args.alone_epochs,
                   "threads": torch.get_num_threads(), "host": socket.gethostname(),
                   "date": time.strftime("%Y-%m-%d %H:%M")}
            write_json(out, res)
            print(f"alone arch {i} seed {seed}: {res['test_accuracy']:.4f} in {res['train_seconds']} s", flush=True)
        finally:
            lock.unlink(missing_ok=True)


def load_alone(work: Path, n: int, seeds: int) -> dict[int, dict[int, float]]:
    got: dict[int, dict[int, float]] = {}
    for i in range(n):
        for s in range(seeds):
            p = work / "alone" / f"{i:02d}_s{s}.json"
            if p.exists():
                got.setdefault(i, {})[s] = float(json.loads(p.read_text())["test_accuracy"])
    return got


# ---------------------------------------------------------------------- PruningNet
def run_pnet(args: argparse.Namespace, space: ChannelSpace, archs: list[dict[str, Any]], data: Any) -> None:
    from nas_prune.pruningnet import PruningNet, PruningNetEvaluator, train_pruningnet
    from nas_prune.teacher import train_teacher

    args.cache.mkdir(parents=True, exist_ok=True)
    teacher = args.cache / "teacher.pt"
    if not teacher.exists():
        train_teacher(space, args.data, teacher, epochs=args.teacher_epochs, batch_size=128,
                      train_subset=args.train_subset, seed=0)
    pnet_path = args.cache / "pnet.pt"
    start = time.perf_counter()
    if pnet_path.exists():
        pnet = PruningNet.load(pnet_path, space=space)
        info = read_json(args.work / "pnet_train.json", what="PruningNet training record")
    else:
        pnet = train_pruningnet(space, data, epochs=args.pnet_epochs, teacher=teacher,
                                batch_size=128, checkpoint=args.cache / "pnet.ckpt", seed=0)
        pnet.save(pnet_path)
        info = {"seconds_this_run": round(time.perf_counter() - start, 1), "history": pnet.history,
                "config": pnet.config, "settings": getattr(pnet, "train_settings", {}),
                "threads": torch.get_num_threads()}
        write_json(args.work / "pnet_train.json", info)
    evaluator = PruningNetEvaluator(pnet, data, recal_batches=args.recal_batches)
    scores = []
    for i, a in enumerate(archs):
        s = evaluator.score(Architecture(space.id, a["channels"]))
        scores.append({k: float(v) for k, v in s.items()})
        print(f"pnet arch {i} (level {a['level']}): score {s['score']:.4f} acc {s['accuracy']:.4f}", flush=True)
    write_json(args.work / "scores.json", scores)


# ---------------------------------------------------------------------- statistics
def _tau(x: list[float], y: list[float]) -> float:
    from scipy.stats import kendalltau

    t = kendalltau(x, y).statistic
    return float(t) if t == t else 0.0


def tau_ceiling(tau_s2s: float, seeds: int) -> float:
    """Expected Kendall tau of a *perfect* predictor against the mean of ``seeds`` training runs.

    Ground truth from short stand-alone runs is noisy: two seeds agree only to ``tau_s2s``. Under a
    bivariate-normal model (Greiner: Pearson r = sin(pi tau / 2)) one run's reliability is r; the
    mean of k runs has reliability k r / (1 + (k - 1) r) (Spearman-Brown); a noise-free predictor
    correlates with that mean by the square root of its reliability, and back to tau.
    """
    r = max(1e-9, math.sin(math.pi * tau_s2s / 2))
    rel = seeds * r / (1 + (seeds - 1) * r)
    return 2 / math.pi * math.asin(math.sqrt(rel))


def report(args: argparse.Namespace, archs: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    alone = load_alone(args.work, len(archs), args.seeds)
    scores_path = args.work / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.exists() else None
    idx = [i for i in range(len(archs)) if i in alone]
    truth = {i: float(np.mean(list(alone[i].values()))) for i in idx}
    res: dict[str, Any] = {"format": "nas-prune/pruningnet-fidelity", "benchmark": "pruningnet_fidelity",
                           "levels": len(LEVELS), "archs": len(archs),
                           "archs_with_truth": len(idx),
                           "archs_with_both_seeds": sum(len(alone[i]) == args.seeds for i in idx)}
    both = [i for i in idx if len(alone[i]) >= 2]
    res["tau_seed_to_seed"] = _tau([alone[i][0] for i in both], [alone[i][1] for i in both]) if len(both) > 2 else None
    if res["tau_seed_to_seed"] is not None:
        res["tau_ceiling_estimate"] = tau_ceiling(res["tau_seed_to_seed"], args.seeds)
    y = [truth[i] for i in idx]
    feats = {"flops": [archs[i]["flops"] for i in idx], "params": [archs[i]["params"] for i in idx],
             "latency": [archs[i]["predicted_ratio"] for i in idx]}
    if scores is not None:
        feats["pruningnet"] = [scores[i]["score"] for i in idx]
        feats["pruningnet_accuracy"] = [scores[i]["accuracy"] for i in idx]
    for name, x in feats.items():
        res[f"tau_{name}"] = _tau(x, y) if len(idx) > 2 else None
    within: dict[str, dict[str, float]] = {}
    hits = 0
    for level in LEVELS:
        li = [i for i in idx if archs[i]["level"] == level]
        if len(li) < 3:
            continue
        yl = [truth[i] for i in li]
        within[str(level)] = {"flops": _tau([archs[i]["flops"] for i in li], yl), "n": len(li)}
        if scores is not None:
            within[str(level)]["pruningnet"] = _tau([scores[i]["score"] for i in li], yl)
            pick = max(li, key=lambda i: scores[i]["score"])
            top2 = sorted(li, key=lambda i: -truth[i])[:2]
            within[str(level)]["top_pick"] = pick
            within[str(level)]["top_pick_in_top2"] = pick in top2
            uni = [i for i in li if archs[i]["uniform"]]
            if uni:
                within[str(level)]["uniform_truth"] = truth[uni[0]]
                within[str(level)]["uniform_rank"] = 1 + sorted(li, key=lambda i: -truth[i]).index(uni[0])
            within[str(level)]["top_pick_truth"] = truth[pick]
            within[str(level)]["best_truth"] = max(yl)
            hits += pick in top2
    res["within_level"] = within
    if len(both) > 2:
        # Each predictor against ONE seed's accuracies, beside one seed against the other: a predictor at
        # the seed-to-seed figure predicts a training run as well as a second training run does.
        for name, x in feats.items():
            xb = [x[idx.index(i)] for i in both]
            res[f"tau_{name}_vs_single_seed"] = float(np.mean([_tau(xb, [alone[i][s_] for i in both])
                                                              for s_ in range(2)]))
        s2s = []
        for level in LEVELS:
            lb = [i for i in both if archs[i]["level"] == level]
            if len(lb) >= 3:
                within.setdefault(str(level), {})["seed_to_seed"] = _tau([alone[i][0] for i in lb],
                                                                         [alone[i][1] for i in lb])
                s2s.append(within[str(level)]["seed_to_seed"])
        if s2s:
            res["tau_within_level_seed_to_seed_mean"] = float(np.mean(s2s))
    if scores is not None and within:
        res["tau_within_level_mean"] = float(np.mean([w["pruningnet"] for w in within.values()]))
        res["tau_within_level_mean_flops"] = float(np.mean([w["flops"] for w in within.values()]))
        res["top2_hits"] = hits
        rng = np.random.default_rng(0)
        diffs = []
        x_p, x_f, yy = np.array(feats["pruningnet"]), np.array(feats["flops"]), np.array(y)
        for _ in range(2000):
            b = rng.integers(0, len(idx), len(idx))
            diffs.append(_tau(list(x_p[b]), list(yy[b])) - _tau(list(x_f[b]), list(yy[b])))
        res["tau_diff_ci95"] = [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "stage"}
    res["settings"] = settings
    pnet_info = args.work / "pnet_train.json"
    if pnet_info.exists():
        res["pruningnet_training"] = json.loads(pnet_info.read_text())
    res["rows"] = [{**{k: archs[i][k] for k in ("level", "predicted_ratio", "flops", "params", "uniform")},
                    "alone": alone.get(i, {}), "score": scores[i] if scores else None} for i in range(len(archs))]
    res["date"] = time.strftime("%Y-%m-%d")
    return res


def figure(res: dict[str, Any], path: Path) -> None:
    """Plotly figure: PruningNet score vs stand-alone accuracy, one colour per level."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for level in LEVELS:
        rows = [r for r in res["rows"] if r["level"] == level and r["alone"] and r["score"]]
        fig.add_trace(go.Scatter(
            x=[r["score"]["score"] for r in rows], y=[100 * sum(r["alone"].values()) / len(r["alone"]) for r in rows],
            mode="markers", name=f"{level}x latency",
            marker={"symbol": ["star" if r["uniform"] else "circle" for r in rows], "size": 10}))
    fig.update_layout(title=f"PruningNet fidelity: tau {res.get('tau_pruningnet')}, FLOPs {res.get('tau_flops')}",
                      xaxis_title="PruningNet score (exp(-validation cross-entropy))",
                      yaxis_title="stand-alone test accuracy % (mean of seeds)")
    fig.write_html(path, include_plotlyjs=True)  # self-contained; not committed (make figures rebuilds it)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=("all", "alone", "pnet", "report"), default="all")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--per-level", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--alone-epochs", type=int, default=4)
    ap.add_argument("--teacher-epochs", type=int, default=8)
    ap.add_argument("--pnet-epochs", type=int, default=None, help="default: nas-prune's own (steps >= the teacher's)")
    ap.add_argument("--recal-batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("benchmarks/results/pruningnet_fidelity_work"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/pruningnet_fidelity_cache"))
    ap.add_argument("-o", "--output", type=Path, default=Path("benchmarks/results/pruningnet_fidelity.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    space = ChannelSpace.from_name("mobilenet_v2", input_size=32, num_classes=10)
    archs_path = args.work / "archs.json"
    if archs_path.exists():
        archs = read_json(archs_path, what="fidelity architectures")
    else:
        archs = make_archs(space, find_table(space, 1), args.per_level, seed=0)
        write_json(archs_path, archs)
    if args.stage in ("all", "alone", "pnet"):
        data = load_data(args.data, input_size=32, train_subset=args.train_subset, seed=0)
    if args.stage in ("all", "alone"):
        run_alone(args, space, archs, data)
    if args.stage in ("all", "pnet"):
        run_pnet(args, space, archs, data)
    res = report(args, archs)
    write_json(args.output, res)
    if res.get("tau_pruningnet") is not None:
        figure(res, args.output.with_suffix(".html"))
    print(json.dumps({k: v for k, v in res.items() if k.startswith(("tau", "top2", "archs"))}, indent=1))


if __name__ == "__main__":
    main()
