"""Training a PruningNet: a new random candidate every batch (MetaPruning, arXiv 1903.10258)."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from nas_prune.data import DataBundle, num_batches
from nas_prune.export import load_checkpoint
from nas_prune.pruningnet._net import PruningNet
from nas_prune.space import Architecture, ChannelSpace
from nas_prune.training import train_epoch

__all__ = ["ArchSampler", "train_pruningnet"]


class ArchSampler:
    """Draws candidates: uniform over each gene's choices, or from per-gene width priors.

    Args:
        space: The channel space.
        prior: ``{gene: (mean, std)}`` of the kept width in channels (e.g. ``Gates.prior``);
            a gene is drawn from ``Normal(mean, std)`` and snapped to its nearest choice. Genes
            without a prior stay uniform.
    """

    def __init__(self, space: ChannelSpace, *, prior: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.space = space
        self.prior = {g: (float(m), float(s)) for g, (m, s) in (prior or {}).items()}
        for name, (mean, std) in self.prior.items():
            space.gene(name)  # unknown gene -> InvalidArchitectureError
            if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
                raise ValueError(f"prior of gene {name!r} is ({mean}, {std}): need finite mean and std >= 0")

    def sample(self, rng: random.Random) -> Architecture:
        channels = {}
        for g in self.space.genes:
            if g.name in self.prior and g.searchable:
                mean, std = self.prior[g.name]
                channels[g.name] = g.snap(rng.gauss(mean, std) if std > 0 else mean)
            else:
                channels[g.name] = rng.choice(g.choices)
        return Architecture(self.space.id, channels)


def _gate_parts(gates: Any, space: ChannelSpace) -> tuple[dict | None, dict | None]:
    if gates is None:
        return None, None
    if hasattr(gates, "check_space"):
        gates.check_space(space)
    prior = gates.prior() if callable(getattr(gates, "prior", None)) else getattr(gates, "prior", None)
    order = gates.order() if callable(getattr(gates, "order", None)) else None
    return (dict(prior) if prior else None), (dict(order) if order else None)


def train_pruningnet(
    space: ChannelSpace,
    data_bundle: DataBundle,
    *,
    epochs: int,
    gates: Any = None,
    importance: Mapping[str, Sequence[int]] | None = None,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 4e-5,
    batch_size: int = 64,
    generator: str = "lowrank",
    hidden: int = 32,
    rank: int = 4,
    per_choice_bn: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> PruningNet:
    """Train a PruningNet of ``space`` on ``data_bundle.train``.

    Every batch runs a freshly drawn candidate ("to train all combinations equally"), with SGD
    (momentum, cosine decay per step). With ``checkpoint``, the state is written atomically after
    every epoch and a later call with the same path resumes after the last finished epoch (a
    finished checkpoint is returned as is unless ``epochs`` grew).

    Args:
        space: The channel space.
        data_bundle: Data from :func:`nas_prune.data.load_data`.
        epochs: Passes over the training split.
        gates: Learned gates (:class:`nas_prune.gates.Gates` or anything with ``prior`` and
            ``order()``): candidates are drawn from the gate priors, channels kept in gate order.
        importance: ``{gene: [channels, most important first]}``; overrides the gates' order.
        lr, momentum, weight_decay, batch_size: SGD settings.
        generator, hidden, rank, per_choice_bn: The PruningNet's settings (see :class:`PruningNet`);
            a resumed run keeps the checkpoint's.
        checkpoint: Where to save the checkpoint every epoch (and resume from).
        seed: Seeds the initial weights, the candidates and the batch order.

    Raises:
        SpaceMismatchError: the checkpoint or the gates belong to another space.
    """
    prior, gate_order = _gate_parts(gates, space)
    importance = importance if importance is not None else gate_order
    start, history, opt_state = 0, [], None
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        ckpt = load_checkpoint(path, what="PruningNet checkpoint")
        pnet = PruningNet.from_checkpoint(ckpt, path, space)
        start, history, opt_state = int(ckpt.get("epoch", 0)), list(ckpt.get("history", [])), ckpt.get("optimizer")
    else:
        with torch.random.fork_rng():  # the initial weights follow ``seed`` too: a re-run is reproducible
            torch.manual_seed(seed)
            pnet = PruningNet(space, generator=generator, hidden=hidden, rank=rank, importance=importance,
                              per_choice_bn=per_choice_bn)
    sampler = ArchSampler(space, prior=prior)
    params = [p for p in pnet.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    per_epoch = max(1, num_batches(data_bundle.train, batch_size, drop_last=True))
    total = per_epoch * max(epochs, 1)
    for group in opt.param_groups:
        group.setdefault("initial_lr", lr)
    # Cosine decay per batch over the whole run; a resumed run continues at its step.
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)),
                                                 last_epoch=start * per_epoch - 1)
    for epoch in range(start, epochs):
        rng = random.Random(seed * 100_003 + epoch)  # the sampled architectures of this epoch

        def loss_fn(model: PruningNet, x: torch.Tensor, y: torch.Tensor, rng: random.Random = rng) -> torch.Tensor:
            return F.cross_entropy(model(x, sampler.sample(rng)), y)

        loss = train_epoch(pnet, data_bundle.train, opt, batch_size=batch_size, seed=seed * 1000 + epoch,
                           loss_fn=loss_fn, scheduler=schedule, label=f"pruningnet {epoch + 1}/{epochs}")
        history.append({"epoch": epoch + 1, "loss": loss})
        if path is not None:
            pnet.save(path, epoch=epoch + 1, epochs=epochs, optimizer=opt.state_dict(), history=history, seed=seed)
    pnet.history = history  # type: ignore[attr-defined]
    return pnet.eval()
