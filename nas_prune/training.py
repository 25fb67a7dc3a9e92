"""A small, reusable train / evaluate loop used by every stage (teacher, fine-tuning, distillation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nas_prune.data import batches, num_batches
from nas_prune.progress import progress_bar

__all__ = ["TrainConfig", "evaluate", "train_epoch", "fit", "set_seed"]

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


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, *, batch_size: int = 256, max_batches: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` (eval mode; the mode is restored)."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches(dataset, batch_size, max_batches=max_batches):
        correct += int((model(x).argmax(1) == y).sum())
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
) -> float:
    """One pass over ``dataset``; returns the mean loss. ``loss_fn(model, x, y)`` makes the loss."""
    model.train()
    total, n = 0.0, 0
    steps = num_batches(dataset, batch_size, drop_last=True)
    with progress_bar(label, total=steps) as advance:
        for x, y in batches(dataset, batch_size, shuffle=True, seed=seed, drop_last=True):
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

    ``on_epoch(epoch, record)`` is called after each epoch (checkpoint there to resume with
    ``start_epoch`` and ``optimizer_state``).
    """
    cfg = config or TrainConfig()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    steps = max(1, num_batches(train, cfg.batch_size, drop_last=True)) * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state["optimizer"])
        sched.load_state_dict(optimizer_state["scheduler"])
    history = list(cfg.history)
    for epoch in range(start_epoch, cfg.epochs):
        loss = train_epoch(model, train, opt, batch_size=cfg.batch_size, seed=cfg.seed * 1000 + epoch,
                           loss_fn=loss_fn, scheduler=sched, label=f"{cfg.label} {epoch + 1}/{cfg.epochs}")
        record = {"epoch": epoch + 1, "loss": loss}
        if val is not None:
            record["val_accuracy"] = evaluate(model, val)
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch + 1, {**record, "_optimizer": {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}})  # type: ignore[dict-item]
    return history
