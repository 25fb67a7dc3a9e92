"""``distill``: train a pruned student against its unpruned teacher, then measure both.

Finishing a searched architecture with knowledge distillation follows MetaPruning's and DAFL's
observation that the unpruned original is the best teacher for its pruned self (0.3-1.6 points over
training the pruned net alone; Chen et al. ICCV 2019, table of width-halved WRN).
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from nas_prune.data import DataBundle, ImageArrays, ImageFiles, batches, unaugmented
from nas_prune.distill._config import DistillConfig
from nas_prune.distill._features import classifier_layer, penultimate_features
from nas_prune.distill._kd import HintonKD
from nas_prune.distill._methods import DistillMethod, get_method
from nas_prune.distill._metrics import write_metrics
from nas_prune.distill._schedule import default_epochs
from nas_prune.distill._student_init import get_init_kind, init_student
from nas_prune.distributed import average_gradients, is_main, shard, world
from nas_prune.errors import NasPruneError
from nas_prune.export import export_onnx, load_checkpoint, load_model, save_model, save_state_dict
from nas_prune.progress import progress_bar
from nas_prune.space import Architecture, ChannelSpace
from nas_prune.training import autocast, dataset_on, evaluate, model_device, resolve_device, to_device

__all__ = ["distill"]

_CHECKPOINT = "checkpoint.pt"


def _take(dataset: Dataset, idx: torch.Tensor, device: torch.device,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, ImageArrays):  # on the device already (dataset_on): index (and augment) there
        return dataset.take(idx, generator)
    items = [dataset[int(i)] for i in idx]
    return (to_device(torch.stack([x for x, _ in items]), device),
            to_device(torch.as_tensor([int(y) for _, y in items]), device))


@dataclass
class _TeacherCache:
    logits: torch.Tensor | None
    features: torch.Tensor | None


class _Run:
    """One distillation run: the student, its optimiser and schedule, the teacher's outputs, one epoch.

    What differs between methods (losses, extra modules, batches, steps) is the
    :class:`~nas_prune.distill._methods.DistillMethod` of ``method``.
    """

    def __init__(self, space: ChannelSpace, student: nn.Module, teacher: nn.Module, data: DataBundle,
                 method: str, cfg: DistillConfig, epochs: int, seed: int, device: torch.device | None = None,
                 amp: bool = True) -> None:
        self.space, self.student, self.teacher, self.data = space, student, teacher, data
        self.method, self.cfg, self.epochs, self.seed = method, cfg, epochs, seed
        self.impl: DistillMethod = get_method(method)
        self.device = device or torch.device("cpu")
        self.amp = amp
        self.train_data = dataset_on(data.train, self.device)
        self.cacheable = isinstance(self.train_data, ImageArrays) and self.train_data.augment == "none"
        self.example = space.example_input(2).to(self.device)
        self.s_head = classifier_layer(student, self.example)
        self.t_head = classifier_layer(teacher, self.example)
        # KD and CCKD's instance term; DAFL's student uses its soft term only (generated images have no labels).
        self.kd = HintonKD(temperature=cfg.temperature, soft_weight=cfg.soft_weight, hard_weight=cfg.hard_weight)
        self.kd_free = HintonKD(temperature=cfg.temperature, soft_weight=cfg.data_free_soft_weight, hard_weight=0.0)
        self.extra = nn.ModuleDict()
        self.impl.setup(self)
        self.extra.to(self.device)  # before the optimisers are built over its parameters
        self.steps = self.impl.steps_per_epoch(self)
        params = list(student.parameters()) + self.impl.student_side_parameters(self)
        self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=self.steps * epochs,
                                                         pct_start=0.15)
        self.cache: _TeacherCache | None = None

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {"state_dict": self.student.state_dict(), "extra": self.extra.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), **self.impl.state()}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.student.load_state_dict(ckpt["state_dict"])
        self.extra.load_state_dict(ckpt["extra"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        self.impl.load_state(ckpt)

    # ------------------------------------------------------------------ helpers for the methods
    def batches(self, index_batches: Iterator[torch.Tensor], seed: int
                ) -> Iterator[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]]:
        """``(idx, x, y)`` for each batch of training indices, augmented if the split is (drawn from ``seed``).

        Image folders stream through their multi-worker loader; their ``idx`` is None (an unreadable
        file leaves its batch, so the teacher runs on the batch instead of a cache).
        """
        data = self.train_data
        w = world()  # under torchrun: this process's share of every batch (the gradients are averaged)
        if isinstance(data, ImageFiles):
            index_lists = [b[shard(len(b), w)].tolist() for b in index_batches]
            for x, y in data.batches(self.cfg.batch_size, seed=seed, index_batches=index_lists):
                yield None, to_device(x, self.device), to_device(y, self.device)
            return
        g = torch.Generator().manual_seed(seed)
        for idx in index_batches:
            x, y = _take(data, idx, self.device, g)  # the whole batch (its augmentation as one process draws it)
            rows = shard(len(idx), w)
            yield idx[rows], x[rows], y[rows]

    @torch.no_grad()
    def teacher_outputs(self, x: torch.Tensor, idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The teacher's logits (and penultimate features, if the method asks for them) on ``x = train[idx]``.

        Cached for the whole split when it is in memory and not augmented; ``idx`` None: computed on ``x``.
        """
        need_features = self.impl.teacher_features
        if self.cache is None and (idx is None or not self.cacheable):
            self.cache = _TeacherCache(None, None)  # augmented or streamed images: the teacher sees each batch
        if self.cache is None:
            train = self.train_data
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
                        with autocast(self.device, self.amp):
                            logits.append(self.teacher(to_device(xb, self.device)).float())
                        if need_features:
                            feats.append(ft().float())
                self.cache = _TeacherCache(torch.cat(logits), torch.cat(feats) if need_features else None)
        if self.cache.logits is not None and idx is not None:
            idx = idx.to(self.cache.logits.device)
            return self.cache.logits[idx], self.cache.features[idx] if self.cache.features is not None else None
        with penultimate_features(self.teacher, layer=self.t_head) as ft, autocast(self.device, self.amp):
            logits = self.teacher(x)
            return logits.float(), ft().float() if need_features else None

    def step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, *, schedule: bool = True) -> None:
        """Backpropagate ``loss`` and step ``opt`` (and the student's schedule unless ``schedule=False``)."""
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"distill ({self.method}): loss is {loss.item()}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(p for group in opt.param_groups for p in group["params"])  # torchrun: over processes
        opt.step()
        if schedule:
            self.sched.step()

    # ------------------------------------------------------------------ epochs
    def epoch(self, epoch: int) -> float:
        torch.manual_seed(self.seed * 1000 + epoch)  # dropout etc.: a resumed run repeats the same epoch
        self.student.train()
        self.extra.train()
        total = 0.0
        with progress_bar(f"distill {self.method} {epoch + 1}/{self.epochs}", total=self.steps) as advance:
            for loss in self.impl.train_steps(self, epoch):
                total += loss
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
    epochs: int | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike[str],
    table: str | os.PathLike[str] | Any | None = None,
    budget_ms: float | None = None,
    threads: int = 1,
    config: DistillConfig | None = None,
    measure_latency: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    device: str | torch.device = "cpu",
    amp: bool = True,
) -> dict[str, Any]:
    """Train the student ``arch`` against ``teacher``; write model, architecture, ONNX and metrics.

    Methods: ``kd`` (Hinton et al. 2015), ``cckd`` (Peng et al. ICCV 2019: KD plus correlation
    congruence with class-uniform batches), ``dafl`` (Chen et al. ICCV 2019: data-free, the student
    sees only generated images; ``data_bundle.train`` is never touched, ``val``/``test`` only
    evaluate) and ``none`` (labels only, the teacher is not used for training).

    Every epoch is checkpointed atomically to ``out_dir/checkpoint.pt``; calling again with the same
    arguments resumes after the last finished epoch. Methods that read the training split keep the
    epoch with the best validation accuracy (``config.keep_best``) and may stop early
    (``config.patience``); ``metrics["kept"]`` says which epoch was kept and why.

    Args:
        space: The space of ``arch``.
        arch: The student's architecture.
        teacher: The trained base model, or a checkpoint written by ``nas-prune train``.
        data_bundle: Data (``load_data``).
        method: A registered method (:func:`~nas_prune.distill.method_names`): ``kd | cckd | dafl | none``
            built in, more with :func:`~nas_prune.distill.register_method`.
        init: A registered init kind: ``scratch | teacher | gates:PATH | pnet:PATH`` built in (see
            :func:`init_student`), more with :func:`~nas_prune.distill.register_init`.
        epochs: Training epochs (for DAFL, ``config.dafl_steps_per_epoch`` steps each); ``None``:
            :func:`~nas_prune.distill.default_epochs`, which scales with the training split's size.
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
        device: Where student and teacher train: ``auto | cpu | cuda[:N]``
            (:func:`nas_prune.training.resolve_device`); in-memory data is copied there once. The
            exported models, checkpoints and latency measurement are on the CPU as before.
        amp: bfloat16 autocast for the forward passes on CUDA (losses in float32); ignored on the CPU.

    Returns:
        The metrics written to ``out_dir/metrics.json``.

    Raises:
        NasPruneError: bad method/init, a checkpoint of another run in ``out_dir``, bad files.
    """
    cfg = config or DistillConfig()
    epochs = _checked_epochs(method, init, epochs, data_bundle, cfg)  # unknown names fail here, before any work
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    channels = space.validate(arch)
    if not isinstance(teacher, nn.Module):
        teacher = load_model(space, teacher, what="teacher checkpoint")
    with _frozen_on_cpu(teacher.eval()) as frozen:
        return _distill(space, channels, frozen, data_bundle, method=method, init=init, epochs=epochs, seed=seed,
                        out=out, cfg=cfg, table=table, budget_ms=budget_ms, threads=threads,
                        measure_latency=measure_latency, on_epoch=on_epoch, device=dev, amp=amp)


def _checked_epochs(method: str, init: str, epochs: int | None, data_bundle: DataBundle, cfg: DistillConfig) -> int:
    """The run's epochs (``None``: :func:`default_epochs`), once ``method`` and ``init`` are known to be registered.

    Raises:
        NasPruneError: an unknown method or init kind, or fewer than one epoch.
    """
    reads_train_data = get_method(method).reads_train_data
    get_init_kind(init)
    if epochs is None:  # a data-free method must not even ask for the training split's size
        epochs = default_epochs(method, len(data_bundle.train) if reads_train_data else 0, cfg)  # type: ignore[arg-type]
    if epochs < 1:
        raise NasPruneError(f"epochs={epochs}: need at least one epoch")
    return epochs


@contextmanager
def _frozen_on_cpu(teacher: nn.Module) -> Iterator[nn.Module]:
    """``teacher`` on the CPU with its parameters frozen; afterwards trainable again and back on its device."""
    home = model_device(teacher)  # the caller's teacher goes back where it was
    teacher.cpu()  # the student is initialised from it on the CPU
    trainable = [p for p in teacher.parameters() if p.requires_grad]
    for p in trainable:  # frozen while distilling (DAFL backpropagates through it to the generator)
        p.requires_grad_(False)
    try:
        yield teacher
    finally:
        for p in trainable:
            p.requires_grad_(True)
        teacher.to(home)


def _distill(space: ChannelSpace, channels: dict[str, int], teacher: nn.Module, data_bundle: DataBundle, *,
             method: str, init: str, epochs: int, seed: int, out: Path, cfg: DistillConfig, table: Any,
             budget_ms: float | None, threads: int, measure_latency: bool,
             on_epoch: Callable[[dict[str, Any]], None] | None, device: torch.device = torch.device("cpu"),
             amp: bool = True) -> dict[str, Any]:
    torch.manual_seed(seed)
    recal = None
    # BatchNorm statistics of generated weights, from real images (not for data-free methods).
    if get_init_kind(init).wants_recalibration and get_method(method).reads_train_data:
        from itertools import islice

        recal = [x for x, _ in islice(batches(unaugmented(data_bundle.train), cfg.batch_size, shuffle=True, seed=seed),
                                      10)]
    student = init_student(space, Architecture(space.id, channels), teacher, init, seed=seed, recal=recal)
    for p in student.parameters():
        p.requires_grad_(True)
    student.to(device)
    teacher.to(device)
    val = dataset_on(data_bundle.val, device)
    run = _Run(space, student, teacher, data_bundle, method, cfg, epochs, seed, device=device, amp=amp)
    key = _run_key(space, channels, method, init, epochs, seed, cfg)

    ckpt_path = out / _CHECKPOINT
    start, history, seconds, best = _resume(ckpt_path, run, key)
    select = cfg.keep_best and run.impl.reads_train_data  # data-free methods never select on labels
    stopped = _patience_ran_out(history, best, cfg) if select else False
    for epoch in range(start, epochs):
        if stopped:
            break
        t0 = time.perf_counter()
        loss = run.epoch(epoch)
        seconds += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "steps": (epoch + 1) * run.steps, "seconds": seconds, "loss": loss,
                  "val_accuracy": _val_accuracy(student, val, amp), **run.impl.epoch_record(run)}
        history.append(record)
        if select and record["val_accuracy"] >= best["val_accuracy"]:  # ties: the later (longer-trained) epoch
            improved = epoch + 1 if record["val_accuracy"] > best["val_accuracy"] else best["improved"]
            best = {"epoch": epoch + 1, "improved": improved, "val_accuracy": record["val_accuracy"],
                    "state_dict": {k: v.detach().cpu().clone() for k, v in student.state_dict().items()}}
        stopped = _patience_ran_out(history, best, cfg) if select else False
        state = run.state()
        save_state_dict(state.pop("state_dict"), ckpt_path, **state, run=key, epoch=epoch + 1, history=history,
                        seconds=seconds, best=best)
        if on_epoch is not None:
            on_epoch(record)

    kept = {"epoch": len(history), "rule": "last epoch", "stopped_early": bool(stopped and len(history) < epochs)}
    if select and best["state_dict"] is not None:
        student.load_state_dict(best["state_dict"])
        kept.update(epoch=int(best["epoch"]), rule="best validation accuracy")

    if not is_main():  # under torchrun rank 0 exports, evaluates and times the result alone
        return {"history": history, "kept": kept}
    student.eval().cpu()  # exports, metrics and latency on the CPU, as the tables are
    teacher.cpu()
    preprocess = getattr(data_bundle, "preprocess", None)  # what a deployment must feed the network
    meta = {"preprocess": preprocess.to_json()} if preprocess is not None else None
    save_model(student, out / "model.pt", space_id=space.id, arch=channels, method=method, init=init,
               preprocess=meta["preprocess"] if meta else None)
    Architecture(space.id, channels).save(out / "arch.json")
    export_onnx(student, space.example_input(), out / "model.onnx", metadata=meta)
    export_onnx(teacher, space.example_input(), out / "teacher.onnx", metadata=meta)
    return write_metrics(space, arch=Architecture(space.id, channels), student=student, teacher=teacher,
                         data=data_bundle, out=out, key=key, history=history, seconds=seconds, table=table,
                         budget_ms=budget_ms, threads=threads, measure_latency=measure_latency, kept=kept)


def _resume(ckpt_path: Path, run: _Run, key: dict[str, Any]
            ) -> tuple[int, list[dict[str, Any]], float, dict[str, Any]]:
    """``(epochs done, history, seconds, best epoch)`` of the checkpoint at ``ckpt_path`` (loaded into ``run``), if any.

    Raises:
        NasPruneError: the checkpoint belongs to another run or does not fit this run's modules.
    """
    best: dict[str, Any] = {"epoch": 0, "improved": 0, "val_accuracy": -1.0, "state_dict": None}
    if not ckpt_path.exists():
        return 0, [], 0.0, best
    ckpt = load_checkpoint(ckpt_path, what="distillation checkpoint")
    if ckpt.get("run") != key:
        raise NasPruneError(
            f"{ckpt_path} belongs to another distillation run (different arch, method, init, epochs, seed "
            "or settings): use another output folder or delete it"
        )
    try:
        run.load_state(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise NasPruneError(f"{ckpt_path} does not fit this run's modules (written by another version of "
                            "nas-prune?): delete it to start this distillation over") from None
    start, history, seconds = int(ckpt["epoch"]), list(ckpt["history"]), float(ckpt.get("seconds", 0.0))
    if isinstance(ckpt.get("best"), dict):
        best = ckpt["best"]
    return start, history, seconds, best


def _val_accuracy(student: nn.Module, val: Dataset, amp: bool) -> float:
    """The epoch's validation accuracy (what ``keep_best`` and ``patience`` decide on)."""
    return evaluate(student, val, amp=amp)


def _patience_ran_out(history: list[dict[str, Any]], best: dict[str, Any], cfg: DistillConfig) -> bool:
    """Whether ``cfg.patience`` epochs have passed since the validation accuracy last rose."""
    return cfg.patience is not None and bool(history) and len(history) - int(best["improved"]) >= cfg.patience
