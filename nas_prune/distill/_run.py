"""``distill``: train a pruned student against its unpruned teacher, then measure both.

Finishing a searched architecture with knowledge distillation follows MetaPruning's and DAFL's
observation that the unpruned original is the best teacher for its pruned self (0.3-1.6 points over
training the pruned net alone; Chen et al. ICCV 2019, table of width-halved WRN).
"""

from __future__ import annotations

import math
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from nas_prune._io import write_json
from nas_prune.data import DataBundle, ImageArrays, batches
from nas_prune.distill._config import METHODS, DistillConfig
from nas_prune.distill._correlation import CorrelationCongruence
from nas_prune.distill._dafl import DAFLLoss
from nas_prune.distill._features import classifier_layer, penultimate_features
from nas_prune.distill._generator import DAFLGenerator
from nas_prune.distill._init import init_student
from nas_prune.distill._kd import HintonKD
from nas_prune.distill._latency import load_table, measure_pair
from nas_prune.distill._sampler import ClassUniformBatchSampler
from nas_prune.errors import NasPruneError
from nas_prune.export import export_onnx, load_checkpoint, load_model, save_model, save_state_dict
from nas_prune.progress import progress_bar
from nas_prune.space import Architecture, ChannelSpace
from nas_prune.training import evaluate

__all__ = ["distill", "METRICS_FORMAT"]

METRICS_FORMAT = "nas-prune/distill-metrics"
_CHECKPOINT = "checkpoint.pt"


def _take(dataset: Dataset, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, ImageArrays):
        return dataset.transform(dataset.images[idx]), dataset.labels[idx]
    items = [dataset[int(i)] for i in idx]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


def _labels(dataset: Dataset) -> torch.Tensor:
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, torch.Tensor):
        return labels.long()
    return torch.cat([y for _, y in batches(dataset, 512)]).long()


@dataclass
class _TeacherCache:
    logits: torch.Tensor | None
    features: torch.Tensor | None


class _Run:
    """One distillation run: the modules, their optimisers and one epoch of each method."""

    def __init__(self, space: ChannelSpace, student: nn.Module, teacher: nn.Module, data: DataBundle,
                 method: str, cfg: DistillConfig, epochs: int, seed: int) -> None:
        self.space, self.student, self.teacher, self.data = space, student, teacher, data
        self.method, self.cfg, self.epochs, self.seed = method, cfg, epochs, seed
        self.example = space.example_input(2)
        self.s_head = classifier_layer(student, self.example)
        self.t_head = classifier_layer(teacher, self.example)
        # KD and CCKD's instance term; DAFL's student uses its soft term only (generated images have no labels).
        self.kd = HintonKD(temperature=cfg.temperature, soft_weight=cfg.soft_weight, hard_weight=cfg.hard_weight)
        self.extra = nn.ModuleDict()
        if method == "cckd":
            with torch.no_grad(), penultimate_features(student, layer=self.s_head) as fs, \
                    penultimate_features(teacher, layer=self.t_head) as ft:
                student.eval()(self.example), teacher(self.example)
                s_dim, t_dim = fs().shape[1], ft().shape[1]
            self.extra["cc"] = CorrelationCongruence(student_dim=s_dim, teacher_dim=t_dim, embed_dim=cfg.embed_dim,
                                                     gamma=cfg.cc_gamma, order=cfg.cc_order, seed=seed)
        if method == "dafl":
            self.extra["generator"] = DAFLGenerator(image_shape=space.input_shape, latent_dim=cfg.latent_dim)
            self.dafl = DAFLLoss(one_hot_weight=cfg.one_hot_weight, activation_weight=cfg.activation_weight,
                                 entropy_weight=cfg.entropy_weight)
            self.steps = cfg.dafl_steps_per_epoch
        else:
            self.steps = max(1, len(data.train) // cfg.batch_size)  # type: ignore[arg-type]
        params = list(student.parameters()) + ([] if method == "dafl" else list(self.extra.parameters()))
        self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=self.steps * epochs,
                                                         pct_start=0.15)
        self.opt_g = (torch.optim.Adam(self.extra["generator"].parameters(), lr=cfg.generator_lr)
                      if method == "dafl" else None)
        self.cache: _TeacherCache | None = None

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {"state_dict": self.student.state_dict(), "extra": self.extra.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "generator_optimizer": self.opt_g.state_dict() if self.opt_g else {}}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.student.load_state_dict(ckpt["state_dict"])
        self.extra.load_state_dict(ckpt["extra"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        if self.opt_g:
            self.opt_g.load_state_dict(ckpt["generator_optimizer"])

    # ------------------------------------------------------------------ teacher outputs
    @torch.no_grad()
    def _teacher_outputs(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        need_features = self.method == "cckd"
        if self.cache is None:
            train = self.data.train
            n = len(train)  # type: ignore[arg-type]
            with penultimate_features(self.teacher, layer=self.t_head) as ft:
                self.teacher(self.example)
                dim = ft().shape[1] if need_features else 0
            k = self.space.model["num_classes"]
            fits = n * (k + dim) * 4 / 2**20 <= self.cfg.cache_teacher_mb
            self.cache = _TeacherCache(None, None)
            if fits:
                logits, feats = [], []
                with penultimate_features(self.teacher, layer=self.t_head) as ft:
                    for xb, _ in batches(train, 256):
                        logits.append(self.teacher(xb))
                        if need_features:
                            feats.append(ft())
                self.cache = _TeacherCache(torch.cat(logits), torch.cat(feats) if need_features else None)
        if self.cache.logits is not None:
            return self.cache.logits[idx], self.cache.features[idx] if self.cache.features is not None else None
        with penultimate_features(self.teacher, layer=self.t_head) as ft:
            logits = self.teacher(x)
            return logits, ft() if need_features else None

    # ------------------------------------------------------------------ epochs
    def _index_batches(self, epoch: int) -> Iterator[torch.Tensor]:
        cfg = self.cfg
        if self.method == "cckd":
            sampler = ClassUniformBatchSampler(_labels(self.data.train), batch_size=cfg.batch_size,
                                               per_class=cfg.per_class, seed=self.seed * 1000 + epoch)
            for b in sampler:
                yield torch.tensor(b)
            return
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(len(self.data.train), generator=g)  # type: ignore[arg-type]
        for s in range(self.steps):
            yield order[s * cfg.batch_size:(s + 1) * cfg.batch_size]

    def _real_step(self, idx: torch.Tensor) -> float:
        x, y = _take(self.data.train, idx)
        if self.method == "none":
            loss = nn.functional.cross_entropy(self.student(x), y)
        else:
            t_logits, t_feats = self._teacher_outputs(x, idx)
            with penultimate_features(self.student, layer=self.s_head) as fs:
                s_logits = self.student(x)
                loss = self.kd(s_logits, t_logits, y)
                if self.method == "cckd":
                    loss = loss + self.cfg.cc_weight * self.extra["cc"](fs(), t_feats)
        self._step(self.opt, loss)
        return loss.item()

    def _dafl_step(self, g: torch.Generator) -> float:
        gen = self.extra["generator"]
        gen.train()
        z = torch.randn(self.cfg.dafl_batch_size, self.cfg.latent_dim, generator=g)
        images = gen(z)
        with penultimate_features(self.teacher, layer=self.t_head) as ft:
            t_logits = self.teacher(images)
            g_loss = self.dafl(t_logits, ft())
        assert self.opt_g is not None
        self._step(self.opt_g, g_loss, schedule=False)
        s_loss = self.kd(self.student(images.detach()), t_logits.detach())
        self._step(self.opt, s_loss)
        return s_loss.item()

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, *, schedule: bool = True) -> None:
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"distill ({self.method}): loss is {loss.item()}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if schedule:
            self.sched.step()

    def epoch(self, epoch: int) -> float:
        torch.manual_seed(self.seed * 1000 + epoch)  # dropout etc.: a resumed run repeats the same epoch
        self.student.train()
        self.extra.train()
        total = 0.0
        with progress_bar(f"distill {self.method} {epoch + 1}/{self.epochs}", total=self.steps) as advance:
            if self.method == "dafl":
                g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
                for _ in range(self.steps):
                    total += self._dafl_step(g)
                    advance()
            else:
                for idx in self._index_batches(epoch):
                    total += self._real_step(idx)
                    advance()
        return total / self.steps


def _run_key(space: ChannelSpace, channels: dict[str, int], method: str, init: str, epochs: int, seed: int,
             cfg: DistillConfig) -> dict[str, Any]:
    return {"space": space.id, "arch": channels, "method": method, "init": init, "epochs": epochs, "seed": seed,
            "config": cfg.to_json()}


def distill(
    space: ChannelSpace,
    arch: Architecture,
    teacher: nn.Module | str | os.PathLike[str],
    data_bundle: DataBundle,
    *,
    method: str = "kd",
    init: str = "teacher",
    epochs: int = 5,
    seed: int = 0,
    out_dir: str | os.PathLike[str],
    table: str | os.PathLike[str] | Any | None = None,
    budget_ms: float | None = None,
    threads: int = 1,
    config: DistillConfig | None = None,
    measure_latency: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train the student ``arch`` against ``teacher``; write model, architecture, ONNX and metrics.

    Methods: ``kd`` (Hinton et al. 2015), ``cckd`` (Peng et al. ICCV 2019: KD plus correlation
    congruence with class-uniform batches), ``dafl`` (Chen et al. ICCV 2019: data-free, the student
    sees only generated images; ``data_bundle.train`` is never touched, ``val``/``test`` only
    evaluate) and ``none`` (labels only, the teacher is not used for training).

    Every epoch is checkpointed atomically to ``out_dir/checkpoint.pt``; calling again with the same
    arguments resumes after the last finished epoch.

    Args:
        space: The space of ``arch``.
        arch: The student's architecture.
        teacher: The trained base model, or a checkpoint written by ``nas-prune train``.
        data_bundle: Data (``load_data``).
        method: ``kd | cckd | dafl | none``.
        init: ``scratch | teacher | gates:PATH | pnet:PATH`` (see :func:`init_student`).
        epochs: Training epochs (for DAFL, ``config.dafl_steps_per_epoch`` steps each).
        seed: Seed of initialisation, batch order, noise.
        out_dir: Output folder: ``model.pt``, ``arch.json``, ``model.onnx``, ``teacher.onnx``,
            ``metrics.json``, ``checkpoint.pt``.
        table: Latency table (path or ``LatencyTable``) for the student's predicted latency.
        budget_ms: Latency budget (ms); ``metrics["budget_holds"]`` compares the student's measured
            latency to it (the table's statistic, see ``metrics["latency"]["statistic"]``), and
            ``budget_holds_predicted`` the table's prediction.
        threads: onnxruntime intra-op threads for the latency measurement (a table's own settings,
            threads included, take precedence so measurement and prediction are comparable).
        config: Hyper-parameters (:class:`DistillConfig`).
        measure_latency: Time both ONNX models (switch off only in tests).
        on_epoch: Called with each epoch's record after its checkpoint is written.

    Returns:
        The metrics written to ``out_dir/metrics.json``.

    Raises:
        NasPruneError: bad method/init, a checkpoint of another run in ``out_dir``, bad files.
    """
    if method not in METHODS:
        raise NasPruneError(f"unknown distillation method {method!r}: use one of {', '.join(METHODS)}")
    if epochs < 1:
        raise NasPruneError(f"epochs={epochs}: need at least one epoch")
    cfg = config or DistillConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    channels = space.validate(arch)
    if not isinstance(teacher, nn.Module):
        teacher = load_model(space, teacher, what="teacher checkpoint")
    teacher = teacher.eval()
    trainable = [p for p in teacher.parameters() if p.requires_grad]
    for p in trainable:  # frozen while distilling (DAFL backpropagates through it to the generator)
        p.requires_grad_(False)
    try:
        return _distill(space, channels, teacher, data_bundle, method=method, init=init, epochs=epochs, seed=seed,
                        out=out, cfg=cfg, table=table, budget_ms=budget_ms, threads=threads,
                        measure_latency=measure_latency, on_epoch=on_epoch)
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _distill(space: ChannelSpace, channels: dict[str, int], teacher: nn.Module, data_bundle: DataBundle, *,
             method: str, init: str, epochs: int, seed: int, out: Path, cfg: DistillConfig, table: Any,
             budget_ms: float | None, threads: int, measure_latency: bool,
             on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    torch.manual_seed(seed)
    recal = None
    if init.startswith("pnet:") and method != "dafl":  # BN statistics of the generated weights (DAFL reads no data)
        from itertools import islice

        recal = [x for x, _ in islice(batches(data_bundle.train, cfg.batch_size, shuffle=True, seed=seed), 10)]
    student = init_student(space, Architecture(space.id, channels), teacher, init, seed=seed, recal=recal)
    for p in student.parameters():
        p.requires_grad_(True)
    run = _Run(space, student, teacher, data_bundle, method, cfg, epochs, seed)
    key = _run_key(space, channels, method, init, epochs, seed, cfg)

    ckpt_path = out / _CHECKPOINT
    start, history, seconds = 0, [], 0.0
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, what="distillation checkpoint")
        if ckpt.get("run") != key:
            raise NasPruneError(
                f"{ckpt_path} belongs to another distillation run (different arch, method, init, epochs, seed "
                "or settings): use another output folder or delete it"
            )
        run.load_state(ckpt)
        start, history, seconds = int(ckpt["epoch"]), list(ckpt["history"]), float(ckpt.get("seconds", 0.0))

    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        loss = run.epoch(epoch)
        seconds += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "loss": loss, "val_accuracy": evaluate(student, data_bundle.val)}
        history.append(record)
        state = run.state()
        save_state_dict(state.pop("state_dict"), ckpt_path, **state, run=key, epoch=epoch + 1, history=history,
                        seconds=seconds)
        if on_epoch is not None:
            on_epoch(record)

    student.eval()
    save_model(student, out / "model.pt", space_id=space.id, arch=channels, method=method, init=init)
    Architecture(space.id, channels).save(out / "arch.json")
    export_onnx(student, space.example_input(), out / "model.onnx")
    export_onnx(teacher, space.example_input(), out / "teacher.onnx")
    return _write_metrics(space, arch=Architecture(space.id, channels), student=student, teacher=teacher,
                          data=data_bundle, out=out, key=key, history=history, seconds=seconds, table=table,
                          budget_ms=budget_ms, threads=threads, measure_latency=measure_latency)


_TEACHER_ACCURACY: "weakref.WeakKeyDictionary[nn.Module, dict[int, float]]" = weakref.WeakKeyDictionary()


def _teacher_accuracy(teacher: nn.Module, test: Dataset) -> float:
    """Test accuracy of the (frozen) teacher, computed once per teacher and test split."""
    memo = _TEACHER_ACCURACY.setdefault(teacher, {})
    if id(test) not in memo:
        memo[id(test)] = evaluate(teacher, test)
    return memo[id(test)]


def _write_metrics(space: ChannelSpace, *, arch: Architecture, student: nn.Module, teacher: nn.Module,
                   data: DataBundle, out: Path, key: dict[str, Any], history: list[dict[str, Any]], seconds: float,
                   table: Any, budget_ms: float | None, threads: int, measure_latency: bool) -> dict[str, Any]:
    s_count, t_count = space.count(arch), space.count(space.full())
    tab = load_table(table, space) if table is not None else None
    if tab is not None:
        tab.check_space(space)
    metrics: dict[str, Any] = {
        "format": METRICS_FORMAT, "version": 1, "data": data.name, **key,
        "train_seconds": seconds, "history": history,
        "student": {"test_accuracy": evaluate(student, data.test), "val_accuracy": evaluate(student, data.val), **s_count},
        "teacher": {"test_accuracy": _teacher_accuracy(teacher, data.test), **t_count},
        "latency": None, "speedup": None, "predicted_ms": None, "budget_ms": budget_ms, "budget_holds": None,
    }
    stat = "median_ms"
    if measure_latency:
        lat = measure_pair({"teacher": out / "teacher.onnx", "student": out / "model.onnx"}, space.input_shape,
                           threads=threads, table=tab)
        # The table predicts (and the search budgets) its own statistic: per-round low percentile.
        stat = "round_ms" if "round_ms" in lat["student"] else "median_ms"
        metrics["latency"] = {"statistic": stat, **lat}
        for who in ("student", "teacher"):
            metrics[who]["latency_ms"] = lat[who][stat]
            metrics[who]["median_ms"] = lat[who]["median_ms"]
            metrics[who]["iqr_ms"] = lat[who]["iqr_ms"]
        metrics["speedup"] = lat["teacher"][stat] / lat["student"][stat]
        metrics["speedup_median"] = lat["teacher"]["median_ms"] / lat["student"]["median_ms"]
    if tab is not None:
        from nas_prune.latency import calibration_label

        metrics["predicted_ms"] = float(tab.predict(arch))  # on the calibration's clock (search, latency predict)
        metrics["calibration"] = calibration_label(tab)
        if measure_latency:  # rescaled to the table's reference network timed just now (machine drift)
            metrics["predicted_ms_now"] = float(tab.predict(arch, reference_ms=tab.measure_reference(space)))
    if budget_ms is not None:
        if metrics["latency"] is not None:
            # a budget in ms is on the table's clock; the machine's speed drifts, the ratio does not
            limit = budget_ms / float(tab.predict(space.full())) if tab is not None else None
            metrics["budget_holds"] = bool(1 / metrics["speedup"] <= limit) if limit is not None \
                else bool(metrics["student"]["latency_ms"] <= budget_ms)
        if metrics["predicted_ms"] is not None:
            metrics["budget_holds_predicted"] = bool(metrics["predicted_ms"] <= budget_ms)
    write_json(out / "metrics.json", metrics)
    return metrics
