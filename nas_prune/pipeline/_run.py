"""``nas-prune run``: every stage of the pipeline in order, each cached in the run directory.

space -> teacher -> latency table -> calibration -> budget -> gates -> pruningnet -> search ->
finalists (measured) -> distill -> latency check (measured) -> summary + report. A stage that finished is skipped on re-run; one that was
killed resumes from its own checkpoint.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from nas_prune._io import atomic_write_bytes, read_json, write_json
from nas_prune.distributed import init_from_env, is_main, world
from nas_prune.errors import NasPruneError
from nas_prune.pipeline._cache import StageCache
from nas_prune.pipeline._check import latency_verdict, measure_final
from nas_prune.pipeline._config import RunConfig
from nas_prune.progress import console

__all__ = ["run_pipeline"]



def pruningnet_check(pnet: Any, space: Any, data: Any, *, seed: int) -> dict[str, Any]:
    """Score uniform widths with the trained PruningNet (on its device); warn loudly when wider does not score higher."""
    from nas_prune.pruningnet import PruningNetEvaluator, uniform_width_check

    check = uniform_width_check(PruningNetEvaluator(pnet, data, seed=seed), space)
    if not check["ordered"]:
        scores = " / ".join(f"{s:.3f}" for s in check["scores"])
        console.print(f"WARNING: the PruningNet scores uniform widths {check['widths']} at {scores}: wider networks "
                      "do not score higher, so its ranking is unreliable (train it longer: --pnet-epochs)",
                      style="bold red")
    return {"uniform_check": check}


def _check_config(cfg: RunConfig, out: Path) -> None:
    """A run directory belongs to one configuration: resuming with other settings is refused."""
    path = out / "config.json"
    new = cfg.to_json()
    if path.exists():
        old = read_json(path, what="run configuration")
        if not isinstance(old, dict):
            raise NasPruneError(f"{path} is not a nas-prune run configuration (a JSON object): use another --out")
        keys = ("model", "data", "budget", "input_size", "threads", "backend", "sampler", "method", "seed",
                "teacher", "weights", "preprocess", "augment")
        before = {"augment": "none"}  # runs made before the setting existed were not augmented
        diff = [k for k in keys if old.get(k, before.get(k)) != new.get(k)]
        if diff:
            raise NasPruneError(
                f"{out} holds a run with other settings ({', '.join(diff)}): use another --out or delete it"
            )
    write_json(path, new)


def run_pipeline(cfg: RunConfig) -> dict[str, Any]:
    """Run (or resume) the whole job; returns the summary also written to ``DIR/summary.json``."""
    from nas_prune.data import load_data
    from nas_prune.export import export_onnx, load_model
    from nas_prune.space import Architecture, ChannelSpace
    from nas_prune.training import set_seed

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if init_from_env(cfg.device).active and not is_main():
        console.quiet = True  # under torchrun rank 0 speaks for every process
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    set_seed(cfg.seed)
    data = load_data(cfg.data, input_size=cfg.input_size, train_subset=cfg.train_subset, seed=cfg.seed,
                     preprocess=cfg.preprocess, augment=cfg.augment, workers=cfg.workers, strict=cfg.strict_data)
    console.print(f"preprocessing: {cfg.preprocess.describe()}; training augmentation: {cfg.augment}", markup=False)
    _check_config(cfg, out)  # after every setting, the data included, is known to be valid
    cache = StageCache(out)

    # 1. space ---------------------------------------------------------------------------
    def stage_space() -> dict[str, Any]:
        from nas_prune.space import TRACE_SECONDS, verify_space

        space = ChannelSpace.from_name(cfg.model, input_size=cfg.input_size, num_classes=data.num_classes,
                                       trace_seconds=TRACE_SECONDS)
        verify_space(space)  # a model nas-prune cannot prune is refused now, in one line, not hours later
        space.save(out / "space.json")
        return {"space_id": space.id, "genes": len(space.searchable_genes)}

    cache.run("space", stage_space, outputs=("space.json",))
    space = ChannelSpace.load(out / "space.json")

    # 2. teacher -------------------------------------------------------------------------
    def stage_teacher() -> dict[str, Any]:
        from nas_prune.teacher import chance_floor, prepare_teacher

        weights = cfg.weights_file()
        if weights is not None:
            console.print(f"teacher: trained weights {weights} (evaluated; fine-tuned only for a new classifier or "
                          "with --teacher-epochs)", markup=False)
        else:
            console.print(f"teacher: trained here from scratch, {cfg.teacher_epochs} epochs of {len(data.train):,} "
                          "images", markup=False)
        res = prepare_teacher(space, data, out / "teacher.pt", weights=weights, epochs=cfg.teacher_epochs,
                              lr=cfg.teacher_lr, batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device)
        if not is_main():
            return {}  # under torchrun the other processes trained beside rank 0, which reports
        if res.get("weights", {}).get("replaced_classifier"):
            console.print(f"teacher: the classifier for {res['weights']['file_classes']} classes was replaced for the "
                          f"data's {data.num_classes} and fine-tuned {res['epochs']} epochs (transfer)", markup=False)
        console.print(f"teacher: validation {res['val_accuracy']:.2%}, test {res['test_accuracy']:.2%}", markup=False)
        floor = chance_floor(len(data.val), data.num_classes)  # type: ignore[arg-type]
        learned = res["val_accuracy"] >= floor
        if not learned:  # every later stage distils and scores against this network: say so loudly
            console.print(f"WARNING: the teacher scores {res['val_accuracy']:.1%} on the validation split, near chance "
                          f"(below {floor:.1%}): it did not learn ({res['epochs']} epochs of {len(data.train):,} "
                          "images); train it longer (--teacher-epochs), on more images, or bring your trained "
                          "network (--teacher)", style="bold red", markup=False)
        export_onnx(load_model(space, out / "teacher.pt"), space.example_input(), out / "teacher.onnx",
                    metadata={"preprocess": cfg.preprocess.to_json()})
        return {"accuracy": res["test_accuracy"], "val_accuracy": res["val_accuracy"], "source": res["source"],
                "epochs": res["epochs"], "lr": res["lr"], "weights": res.get("weights"), "learned": learned,
                "chance_floor": floor}

    teacher_res = cache.run("teacher", stage_teacher, outputs=("teacher.pt", "teacher.onnx"), everyone=True)

    # 3. latency table -------------------------------------------------------------------
    def stage_table() -> dict[str, Any]:
        from nas_prune.latency import LatencyTable, build_table, find_shipped_table, shipped_tables_dir

        if cfg.table is not None:
            table = LatencyTable.load(cfg.table)
            table.check_space(space)
            atomic_write_bytes(out / "table.json", Path(cfg.table).read_bytes())
            return {"source": str(cfg.table)}
        shipped = None if cfg.profile else find_shipped_table(space.id, cfg.threads, retarget_to=space)
        if shipped is not None:
            source = f"shipped:{shipped.relative_to(shipped_tables_dir()).as_posix()}"
            shipped_table = LatencyTable.load(shipped)
            if shipped_table.space_id == space.id:
                atomic_write_bytes(out / "table.json", shipped.read_bytes())
                return {"source": source}
            from nas_prune.latency import retarget_table

            console.print(f"latency table {source} is for {shipped_table.space_id}: used for {space.id} "
                          "(other classes; checked on this machine next)")
            retarget_table(shipped_table, space).save(out / "table.json")
            return {"source": source, "retargeted_from": shipped_table.space_id}
        console.print(f"profiling a latency table for {space.id} at {cfg.threads} thread(s) (saves as it goes)")
        build_table(space, threads=cfg.threads, output=out / "table.json")
        return {"source": "profiled"}

    table_res = cache.run("latency", stage_table, outputs=("table.json",))
    from nas_prune.latency import LatencyTable, calibrated_table, calibration_label

    # 3b. calibration: a table this machine did not calibrate is checked, adapted or rebuilt here ----
    def stage_calibrate() -> dict[str, Any]:
        cal = calibrated_table(out / "table.json", space, mode=cfg.calibration, rebuild="auto",
                               log=lambda m: console.print(m, markup=False))
        cal.save(out / "table_calibrated.json")
        return {"label": calibration_label(cal), **{k: v for k, v in (cal.meta.get("calibration") or {}).items()
                                                    if k not in ("records", "candidates")}}

    cal_res = cache.run("calibration", stage_calibrate, outputs=("table_calibrated.json",))
    table = LatencyTable.load(out / "table_calibrated.json")

    # 4. budget: the teacher and the reference timed now; the budget on the calibrated clock --------
    def stage_budget() -> dict[str, Any]:
        now = table.measure_now(space, {"teacher": out / "teacher.onnx"}, rounds=15)
        teacher_rel = now["teacher"] / now["reference"]
        teacher_cal = teacher_rel * table.reference_ms
        budget_ms = cfg.budget_spec.to_ms(teacher_cal)
        return {"teacher_ms": now["teacher"], "reference_ms": now["reference"], "teacher_ms_calibrated": teacher_cal,
                "budget_ms": budget_ms, "limit_ratio": budget_ms / teacher_cal,
                "teacher_predicted_ms": table.predict(space.full())}

    budget_res = cache.run("budget", stage_budget)
    scaled = table.rescaled(table.reference_ms, name="cpu")

    # 5. gates -----------------------------------------------------------------------------
    def stage_gates() -> dict[str, Any]:
        from nas_prune.data import num_batches
        from nas_prune.gates import MIN_STEPS, gate_epochs, learn_gates

        per_epoch = num_batches(data.train, cfg.batch_size, drop_last=True)
        epochs = gate_epochs(per_epoch, cfg.gate_steps, cfg.gate_epochs)  # what learn_gates will run
        floor = f", at least {MIN_STEPS}" if cfg.gate_steps is not None and cfg.gate_steps < MIN_STEPS else ""
        console.print(f"gates: {epochs} epochs of {per_epoch} batches of {cfg.batch_size} ({epochs * per_epoch} steps"
                      f"{floor}, the validation split scored every epoch once the ratio is reached) on random weights "
                      f"per ratio {list(cfg.ratios)} (--gate-steps / --gate-epochs to change)", markup=False)

        gates = learn_gates(space, data, ratios=cfg.ratios, seeds=(cfg.seed,), epochs=cfg.gate_epochs,
                            steps=cfg.gate_steps, batch_size=cfg.batch_size, checkpoint=out / "gates.ckpt",
                            device=cfg.device)
        if not is_main():
            return {}
        gates.save(out / "gates.json")
        (out / "gates.ckpt").unlink(missing_ok=True)
        runs = [{"ratio": r.ratio, "nonzero_fraction": r.nonzero_fraction, "met_ratio": r.met_ratio}
                for r in gates.runs]
        for r in runs:
            if abs(r["nonzero_fraction"] - r["ratio"]) > 0.05:
                console.print(f"WARNING: gates for ratio {r['ratio']} ended with {r['nonzero_fraction']:.2f} "
                              "non-zero: their priors are unreliable (raise --gate-epochs)", style="bold red")
        return {"ratios": list(gates.ratios), "runs": runs}

    gates_res = cache.run("gates", stage_gates, outputs=("gates.json",), everyone=True)
    from nas_prune.gates import Gates

    gates = Gates.load(out / "gates.json")

    # 6. pruningnet --------------------------------------------------------------------------
    def stage_pnet() -> dict[str, Any]:
        from nas_prune.pruningnet import default_epochs, train_pruningnet

        epochs = cfg.pnet_epochs or default_epochs(len(data.train))  # type: ignore[arg-type]
        console.print(f"pruningnet: {epochs} epochs of {len(data.train):,} images, four candidates a step (about "
                      f"{4 * epochs * len(data.train):,} image passes; --pnet-epochs to change)", markup=False)  # type: ignore[arg-type]
        pnet = train_pruningnet(space, data, epochs=epochs, teacher=out / "teacher.pt", gates=gates,
                                batch_size=cfg.batch_size, checkpoint=out / "pnet.ckpt", seed=cfg.seed,
                                device=cfg.device)
        if not is_main():
            return {}
        pnet.save(out / "pnet.pt")
        (out / "pnet.ckpt").unlink(missing_ok=True)
        return {"parameters": sum(p.numel() for p in pnet.parameters()), "settings": pnet.train_settings,
                **pruningnet_check(pnet, space, data, seed=cfg.seed)}

    pnet_res = cache.run("pruningnet", stage_pnet, outputs=("pnet.pt",), everyone=True)

    # 7. search ----------------------------------------------------------------------------
    def stage_search() -> dict[str, Any]:
        from nas_prune.pipeline._search import search_stage

        return search_stage(cfg, space, data, out, scaled, budget_res["budget_ms"], gates)

    search_res = cache.run("search", stage_search, outputs=("arch.json", "trials.json"))

    # 7b. finalists: the most accurate candidates measured against the teacher; the pick meets the budget
    def stage_finalists() -> dict[str, Any]:
        from nas_prune.pipeline._finalists import finalists_stage

        return finalists_stage(space, out, table, budget_res["limit_ratio"], cfg.finalists, margin=cfg.pick_margin,
                               log=lambda m: console.print(m, markup=False))

    finalists_res = cache.run("finalists", stage_finalists, outputs=("arch.json",))
    arch = Architecture.load(out / "arch.json")

    # 8. distill ---------------------------------------------------------------------------
    def stage_distill() -> dict[str, Any]:
        from nas_prune.distill import DistillConfig, default_epochs, distill

        epochs = cfg.distill_epochs or default_epochs(cfg.method, len(data.train))  # type: ignore[arg-type]
        console.print(f"distill: {cfg.method}, {epochs} epochs of {len(data.train):,} training images "
                      "(--distill-epochs to change)", markup=False)  # type: ignore[arg-type]

        init = {"pnet": f"pnet:{out / 'pnet.pt'}", "gates": f"gates:{out / 'gates.json'}"}.get(cfg.init, cfg.init)
        metrics = distill(space, arch, out / "teacher.pt", data, method=cfg.method, init=init,
                          epochs=cfg.distill_epochs, seed=cfg.seed, out_dir=out / "distill",
                          table=out / "table_calibrated.json", budget_ms=budget_res["budget_ms"], threads=cfg.threads,
                          device=cfg.device,
                          config=DistillConfig(batch_size=cfg.distill_batch_size) if cfg.distill_batch_size else None)
        if not is_main():
            return {}
        return {"accuracy": metrics["student"]["test_accuracy"], "speedup": metrics["speedup"]}

    cache.run("distill", stage_distill, outputs=("distill/metrics.json", "distill/model.onnx"), everyone=True)
    metrics = read_json(out / "distill" / "metrics.json", what="distillation metrics")

    # 9. latency check: the final network against the teacher (the budget's verdict), and predicted
    # vs measured for the chosen and searched architectures (predictions rescaled to the reference
    # timed in the same rounds, so they compare with the measurement, not with the clock of the search)
    def stage_check() -> dict[str, Any]:
        from nas_prune.latency import arch_onnx_bytes

        final = measure_final(out, space.input_shape, table.settings, budget_res["limit_ratio"],
                              finalists_res.get("quiet_teacher_ms"))
        trials = read_json(out / "trials.json", what="search trials")
        picks = [arch] + [Architecture(space.id, t["channels"]) for t in _spread(trials, cfg.validate_n)]
        now = table.measure_now(space, {f"arch{i}": arch_onnx_bytes(space, a) for i, a in enumerate(picks)}, rounds=15)
        rows = [{"label": "chosen" if i == 0 else f"searched {i}",
                 "predicted_ms": table.predict(a, reference_ms=now["reference"]), "measured_ms": now[f"arch{i}"],
                 "predicted_ms_calibrated": table.predict(a)}
                for i, a in enumerate(picks)]
        write_json(out / "latency_check.json", rows)
        errs = sorted(abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in rows)
        return {"n": len(rows), "median_abs_err": errs[len(errs) // 2], "final_ratio": final["ratio"],
                "final_meets": final["meets"]}

    cache.run("check", stage_check, outputs=("latency_check.json", "final_check.json"))
    final_check = read_json(out / "final_check.json", what="final latency check")

    # 10. summary and report ---------------------------------------------------------------
    student, teacher = metrics["student"], metrics["teacher"]
    budget_ms = budget_res["budget_ms"]
    t_ms, s_ms = final_check["teacher_ms"], final_check["ms"]  # measured in the same rounds
    summary = {
        "model": cfg.model, "data": cfg.data, "budget": cfg.budget, "budget_ms": budget_ms,
        "device": f"{platform.processor() or platform.machine()}, {cfg.threads} thread(s), onnxruntime CPU",
        "teacher": {"accuracy": teacher["test_accuracy"], "params": teacher["params"], "flops": teacher["flops"],
                    "measured_latency_ms": t_ms, "val_accuracy": teacher_res.get("val_accuracy"),
                    "source": teacher_res.get("source", "trained from scratch"), "epochs": teacher_res.get("epochs"),
                    "weights": teacher_res.get("weights"), "learned": teacher_res.get("learned")},
        "preprocess": cfg.preprocess.to_json(),
        # where each split came from, the training augmentation, and the unreadable images skipped by this process
        "dataset": {"splits": data.splits, "augment": data.augment, "train_images": len(data.train),  # type: ignore[arg-type]
                 "workers": getattr(data.train, "workers", None), "bad_files": data.bad_files()},
        "final": {"accuracy": student["test_accuracy"], "params": student["params"], "flops": student["flops"],
                  "measured_latency_ms": s_ms,
                  "predicted_latency_ms": metrics.get("predicted_ms_now") or metrics.get("predicted_ms"),
                  "channels": dict(arch.channels)},
        **latency_verdict(final_check),  # the verdict is the measurement (nas_prune.pipeline._check)
        "teacher_predicted_latency_ms": budget_res["teacher_predicted_ms"],
        "gates": gates_res.get("runs"),  # the share of non-zero gates each target ratio ended with
        "pruningnet_check": pnet_res.get("uniform_check"),  # scores at uniform widths: wider must score higher
        "search": search_res,
        "finalists": finalists_res,
        "table": table_res,
        "calibration": cal_res,
        "stage_seconds": cache.seconds(),
        "artifacts": {
            "config": "config.json", "space": "space.json", "teacher": "teacher.pt", "teacher_onnx": "teacher.onnx",
            "table": "table.json", "gates": "gates.json", "pnet": "pnet.pt", "arch": "arch.json",
            "trials": "trials.json", "search": "search.json", "model": "distill/model.pt",
            "model_onnx": "distill/model.onnx", "distill_metrics": "distill/metrics.json",
            "latency_check": "latency_check.json", "report": "report.html",
            "table_calibrated": "table_calibrated.json", "finalists": "finalists.json",
            "final_check": "final_check.json",
        },
    }
    summary["finish"] = {"method": cfg.method, "init": cfg.init, "data_free": not _reads_train(cfg.method)}
    summary["data_use"] = _data_use(cfg)
    w = world()  # the training processes (torchrun): batch_size is the global batch, batch_size / processes each
    summary["training_processes"] = {"processes": w.size, "batch_size": cfg.batch_size,
                                     "per_process_batch": (cfg.batch_size or 0) // w.size,
                                     "backend": torch.distributed.get_backend() if w.active else None}
    write_json(out / "summary.json", summary)
    if is_main():
        from nas_prune.report import write_report

        write_report(out)
    return summary


def _reads_train(method: str) -> bool:
    from nas_prune.distill import get_method

    return get_method(method).reads_train_data


def _data_use(cfg: RunConfig) -> dict[str, str]:
    """Which splits of the data each stage of ``cfg``'s run reads, in words (summary and report).

    The finish reads the training split unless its method is data-free
    (:attr:`~nas_prune.distill.DistillMethod.reads_train_data` false, e.g. ``dafl``): then no
    training image is read by the finish, its PruningNet or gates initialisation is not
    BatchNorm-recalibrated on them, and the validation and test splits only evaluate it.
    """
    data_free = not _reads_train(cfg.method)
    finish = ("no training image (data-free method): generated images only; validation split for the "
              "per-epoch accuracy, test split for the final accuracy") if data_free else \
        "training split (training, BatchNorm recalibration of a generated init), validation per epoch, test at the end"
    return {
        "teacher": "training split (training), validation per epoch, test at the end",
        "latency": "none (timed on random inputs)",
        "gates": "training split (training), validation split (accuracy)",
        "pruningnet": "training split (training, BatchNorm recalibration), validation split (check)",
        "search": "training split (BatchNorm recalibration per candidate), validation split (score)",
        "finalists": "none (latency only)",
        "distill": finish,
        "check": "none (latency only)",
    }


def _spread(trials: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Up to ``n`` distinct trials spread evenly over the predicted-latency range."""
    ranked = sorted((t for t in trials if t.get("channels")), key=lambda t: t["latency_ms"])
    if len(ranked) <= n:
        return ranked
    step = (len(ranked) - 1) / max(n - 1, 1)
    return [ranked[round(i * step)] for i in range(n)]
