"""A small, reusable train / evaluate loop used by every stage (teacher, fine-tuning, distillation).

Training runs where :func:`resolve_device` says (``auto``: the first CUDA GPU when there is one):
in-memory datasets are copied to the device once (:func:`dataset_on`), other batches travel through
pinned memory (:func:`to_device`), and on CUDA the forward pass runs in bfloat16 autocast
(:func:`autocast`; no loss scaling needed, losses and softmax stay in float32). Checkpoints are
read with ``map_location="cpu"``, so one written on a GPU resumes anywhere.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nas_prune.data import ImageArrays, batches, num_batches
from nas_prune.errors import NasPruneError
from nas_prune.progress import progress_bar

__all__ = [
    "DEVICE_HELP",
    "TrainConfig",
    "autocast",
    "dataset_on",
    "evaluate",
    "fit",
    "model_device",
    "resolve_device",
    "set_seed",
    "to_device",
    "train_epoch",
]

#: The ``--device`` help text every training command shares.
DEVICE_HELP = "auto (CUDA when present) | cpu | cuda | cuda:N"


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device a ``--device`` value names: ``auto`` (first CUDA GPU, else CPU), ``cpu``, ``cuda[:N]``.

    Raises:
        NasPruneError: an unknown spelling, or a CUDA device this machine does not have.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    from nas_prune.distributed import world

    # under torchrun, each process its own GPU (LOCAL_RANK before the process group is joined)
    w = world()
    local = w.local_rank if w.active else int(os.environ.get("LOCAL_RANK", "0"))
    if text == "auto":
        return torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not m:
        raise NasPruneError(f"--device {spec!r} is not understood: use {DEVICE_HELP}")
    index = int(m.group(1)) if m.group(1) is not None else local
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if index >= count:
        have = ", ".join(f"cuda:{i}" for i in range(count)) or "none"
        raise NasPruneError(f"--device {spec}: this machine has {count} CUDA device(s) ({have}): "
                            "use --device cpu, auto, or one of those")
    return torch.device(f"cuda:{index}")


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); CPU for a model without either."""
    for t in model.parameters():
        return t.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``; CPU tensors bound for CUDA go through pinned memory, asynchronously."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def dataset_on(dataset: Dataset, device: torch.device) -> Dataset:
    """An in-memory dataset (:class:`~nas_prune.data.ImageArrays`, uint8) copied to ``device`` once; others as is."""
    if isinstance(dataset, ImageArrays) and dataset.images.device != device:
        return ImageArrays(dataset.images.to(device), dataset.labels.to(device), dataset.num_classes,
                           dataset.preprocess, dataset.augment)
    return dataset


def autocast(device: torch.device, enabled: bool = True) -> ContextManager[Any]:
    """bfloat16 autocast on CUDA when ``enabled`` (mixed precision); a no-op on the CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def set_seed(seed: int) -> None:
    """Seed torch's and Python's generators (runs are deterministic on the CPU)."""
    import random

    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainConfig:
    """Plain SGD with cosine decay, the usual recipe for CIFAR-size CNNs."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    label: str = "train"
    history: list[dict[str, float]] = field(default_factory=list)
    device: str | torch.device = "cpu"  # see resolve_device; "auto" uses CUDA when present
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on the CPU)


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, *, batch_size: int = 256, max_batches: int | None = None,
             amp: bool = True) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` (eval mode; the mode is restored), on the model's device."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = total = 0
    for x, y in batches(dataset, batch_size, max_batches=max_batches):
        x, y = to_device(x, device), to_device(y, device)
        with autocast(device, amp):
            logits = model(x)
        correct += int((logits.argmax(1) == y).sum())
        total += len(y)
    model.train(was_training)
    return correct / max(total, 1)


def train_epoch(
    model: nn.Module,
    dataset: Dataset,
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int = 128,
    seed: int = 0,
    loss_fn: LossFn = cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    label: str = "epoch",
    amp: bool = True,
) -> float:
    """One pass over ``dataset``; returns the mean loss. ``loss_fn(model, x, y)`` makes the loss.

    Batches go to the model's device; on CUDA the loss is computed under bfloat16 autocast (``amp``).
    A :class:`~torch.nn.parallel.DistributedDataParallel` model reads this process's share of every
    batch of ``batch_size`` (:mod:`nas_prune.distributed`); every process must call this.
    """
    from torch.nn.parallel import DistributedDataParallel

    from nas_prune.distributed import world

    model.train()
    device = model_device(model)
    total, n = 0.0, 0
    steps = num_batches(dataset, batch_size, drop_last=True)
    # a DDP model: this process's share of every global batch (DDP averages the gradients)
    w = world() if isinstance(model, DistributedDataParallel) else None
    with progress_bar(label, total=steps) as advance:
        for x, y in batches(dataset, batch_size, shuffle=True, seed=seed, drop_last=True, world=w):
            x, y = to_device(x, device), to_device(y, device)
            with autocast(device, amp):
                loss = loss_fn(model, x, y)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"{label}: loss is {value}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += value * len(y)
            n += len(y)
            advance()
    if w is not None:
        import torch.distributed as dist

        sums = torch.tensor([total, float(n)], dtype=torch.float64, device=device)
        dist.all_reduce(sums)  # the mean loss over every process's share
        total, n = float(sums[0]), int(sums[1])
    return total / max(n, 1)


def fit(
    model: nn.Module,
    train: Dataset,
    val: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    loss_fn: LossFn = cross_entropy,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    start_epoch: int = 0,
    optimizer_state: dict | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` for ``config.epochs`` epochs (SGD, cosine schedule); returns per-epoch history.

    The model is moved to ``config.device`` (and stays there); in-memory data is copied there once.
    Under ``torchrun`` every process calls this and trains in DDP (:func:`nas_prune.distributed.wrap`),
    ``config.batch_size`` being the global batch.
    ``on_epoch(epoch, record)`` is called after each epoch (checkpoint there to resume with
    ``start_epoch`` and ``optimizer_state``).

    Raises:
        NasPruneError: ``config.device`` is unknown or absent here.
    """
    from nas_prune.distributed import wrap

    cfg = config or TrainConfig()
    device = resolve_device(cfg.device)
    model.to(device)
    train = dataset_on(train, device)
    val = dataset_on(val, device) if val is not None else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    steps = max(1, num_batches(train, cfg.batch_size, drop_last=True)) * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state["optimizer"])
        sched.load_state_dict(optimizer_state["scheduler"])
    history = list(cfg.history)
    trained = wrap(model)  # DDP under torchrun: every process trains its share of each batch
    for epoch in range(start_epoch, cfg.epochs):
        loss = train_epoch(trained, train, opt, batch_size=cfg.batch_size, seed=cfg.seed * 1000 + epoch,
                           loss_fn=loss_fn, scheduler=sched, label=f"{cfg.label} {epoch + 1}/{cfg.epochs}",
                           amp=cfg.amp)
        record = {"epoch": epoch + 1, "loss": loss}
        if val is not None:
            record["val_accuracy"] = evaluate(model, val, amp=cfg.amp)
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch + 1, {**record, "_optimizer": {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}})  # type: ignore[dict-item]
    return history
