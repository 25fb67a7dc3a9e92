"""Learning channel gates on a network whose weights stay at their random initialisation.

Pruning from Scratch (Wang et al., AAAI 2020, arXiv 1909.12579): for a target ratio ``r``, train
only the gates with ``CE + gamma * (mean|gate| - r)^2`` and Adam, project them onto [0, 1] after
every step, and keep the best-validation gates among those whose non-zero fraction is <= ``r``.
The weights are never updated and batch norm runs in train mode, so the structure found reflects
the architecture rather than any trained weights; it costs a fraction of pretraining.

The regulariser pulls the *mean* gate to ``r``, not the share of non-zero gates: measured here
(mobilenet_v2 on digits, r = 0.3), 200 Adam steps left 99 % of the gates non-zero at a mean of 0.82,
and the demo's three ratios ended with nearly identical gates. So the gates are also projected onto
"at most ``k`` non-zero" after every step (iterative hard thresholding), with ``k`` shrinking from
all gates to ``r`` of them on the cubic schedule of gradual pruning (Zhu & Gupta, 2017, arXiv
1710.01878) over the first :data:`PRUNE_SHARE` of the steps: the share of non-zero gates then ends
at ``r`` while the loss decides which gates survive.

Gates learn on ``device`` (``auto``: the first CUDA GPU when there is one): the model, its gates
and an in-memory dataset live there, other batches travel through pinned memory, and on CUDA the
forward pass runs under bfloat16 autocast (``amp``; the loss and the gates stay in float32).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.data import DataBundle, batches, check_num_classes, num_batches, to_bundle
from nas_prune.distributed import world, wrap
from nas_prune.errors import NasPruneError
from nas_prune.export import load_checkpoint, save_state_dict
from nas_prune.gates._gates import GateRun, Gates
from nas_prune.gates._hooks import GateHooks
from nas_prune.progress import progress_bar
from nas_prune.space import ChannelSpace
from nas_prune.training import autocast, dataset_on, evaluate, resolve_device, set_seed, to_device

__all__ = ["learn_gates", "default_epochs", "default_gamma", "gate_epochs", "kept_gates", "MIN_STEPS", "PRUNE_SHARE"]

#: Fewest optimiser steps per run: Adam at lr 0.01 moves a gate by about 0.01 a step, so a gate
#: needs on the order of a hundred steps to travel from 1 to 0 (the paper's CIFAR setting runs
#: ~3.5k steps, its ImageNet setting ~10k). The projection reaches the ratio in any number of
#: steps; this floor leaves the loss enough steps to choose the surviving gates. Small datasets get
#: more epochs to reach it.
MIN_STEPS = 150

#: Share of the steps over which the number of non-zero gates shrinks to its target (the rest
#: trains the surviving gates at the target ratio, where the best checkpoint is chosen).
PRUNE_SHARE = 0.7


def kept_gates(step: int, total: int, n_gates: int, ratio: float) -> int:
    """Non-zero gates allowed after ``step`` of ``total``: all at 0, ``ratio`` of them from
    :data:`PRUNE_SHARE` of the steps on (cubic schedule, Zhu & Gupta 2017)."""
    end = max(1, round(PRUNE_SHARE * total))
    t = min(step / end, 1.0)
    target = ratio * n_gates
    return int(math.floor(target + (n_gates - target) * (1 - t) ** 3))


def default_epochs(steps_per_epoch: int) -> int:
    """The paper's schedule scaled to the data: 10 epochs (CIFAR), one pass on ImageNet-size data,
    and at least :data:`MIN_STEPS` steps on small datasets."""
    if steps_per_epoch >= 5000:
        return 1
    return max(10, math.ceil(MIN_STEPS / max(1, steps_per_epoch)))


def gate_epochs(steps_per_epoch: int, steps: int | None = None, epochs: int | None = None) -> int:
    """Epochs per gate run: ``epochs`` as given, else ``steps`` (at least :data:`MIN_STEPS`) rounded up
    to whole epochs, else :func:`default_epochs`."""
    if epochs is not None:
        return int(epochs)
    if steps is None:
        return default_epochs(steps_per_epoch)
    return math.ceil(max(int(steps), MIN_STEPS) / max(1, steps_per_epoch))


def default_gamma(num_classes: int) -> float:
    """The paper's regulariser weight: 0.5 for CIFAR-size problems, 0.05 for ImageNet (1000 classes)."""
    return 0.5 if num_classes <= 100 else 0.05


def _fingerprint(space: ChannelSpace, data: str, ratios: Sequence[float], seeds: Sequence[int], epochs: int,
                 gamma: float, lr: float, batch_size: int, n_train: int) -> dict[str, Any]:
    return {"space": space.id, "data": data, "ratios": [float(r) for r in ratios], "seeds": [int(s) for s in seeds],
            "epochs": epochs, "gamma": gamma, "lr": lr, "batch_size": batch_size, "n_train": n_train}


def learn_gates(
    space: ChannelSpace,
    data_bundle: Any,
    *,
    ratios: Iterable[float] = (0.3, 0.5, 0.7),
    seeds: Iterable[int] = (0,),
    epochs: int | None = None,
    steps: int | None = None,
    gamma: float | None = None,
    lr: float = 0.01,
    batch_size: int = 128,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    amp: bool = True,
) -> Gates:
    """Learn one set of gates per (target ratio, seed) on the space's randomly initialised model.

    Args:
        space: The channel space (its model is built with random weights from each seed).
        data_bundle: Training data (gates) and validation data (checkpoint choice): a
            :class:`~nas_prune.data.DataBundle` or your ``(train, val[, test])`` splits (torch
            Datasets, DataLoaders or ``(images, labels)`` tensors, :func:`nas_prune.data.to_bundle`).
        ratios: Target non-zero fractions ``r`` in (0, 1).
        seeds: Seeds of the random weights and batch order; runs are deterministic per seed.
        epochs: Passes over the training data; ``None`` scales the paper's schedule to the data
            (:func:`default_epochs`) or follows ``steps``.
        steps: Optimiser steps per run (rounded up to whole epochs, at least :data:`MIN_STEPS`);
            used when ``epochs`` is ``None``.
        gamma: Weight of the ratio regulariser; ``None`` uses the paper's (:func:`default_gamma`).
        lr: Adam learning rate (paper: 0.01).
        batch_size: Batch size (paper: 128).
        checkpoint: File written atomically after every epoch; an existing one resumes the work
            (finished runs are kept, the current run continues after its last epoch), on any device.
        device: Where to learn: ``auto | cpu | cuda[:N]`` (:func:`nas_prune.training.resolve_device`).
        amp: bfloat16 autocast of the forward pass on CUDA (ignored on the CPU).

    Returns:
        The :class:`Gates` of every run.

    Raises:
        DataError: the data's class count is not the model's (both counts named), or the data
            is unusable.
        NasPruneError: a ratio outside (0, 1), a checkpoint written with other settings, or
            ``device`` unknown or absent here.
    """
    ratios, seeds = _checked_targets(ratios, seeds)
    data_bundle = to_bundle(data_bundle)
    check_num_classes(space, data_bundle)  # before any training, in one line
    dev = resolve_device(device)
    steps_per_epoch = num_batches(data_bundle.train, batch_size, drop_last=True)
    epochs = gate_epochs(steps_per_epoch, steps, epochs)
    if epochs < 1:
        raise NasPruneError(f"epochs={epochs}: need at least one epoch")
    gamma = default_gamma(data_bundle.num_classes) if gamma is None else float(gamma)
    fp = _fingerprint(space, data_bundle.name, ratios, seeds, epochs, gamma, lr, batch_size, len(data_bundle.train))  # type: ignore[arg-type]
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    state = _load_progress(ckpt_path, fp)
    done = [GateRun.from_json(r) for r in state.get("done", [])]
    widths: dict[str, int] = {}
    on_device = dataclasses.replace(data_bundle, train=dataset_on(data_bundle.train, dev),
                                    val=dataset_on(data_bundle.val, dev))  # in-memory splits copied once
    with progress_bar("gates", total=len(ratios) * len(seeds) * epochs * steps_per_epoch) as advance:
        advance(sum(epochs * steps_per_epoch for _ in done))
        for ratio in ratios:
            for seed in seeds:
                if any(r.ratio == ratio and r.seed == seed for r in done):
                    continue
                run, widths = _learn_one(space, on_device, ratio=ratio, seed=seed, epochs=epochs, gamma=gamma,
                                         lr=lr, batch_size=batch_size, resume=_current_run(state, ratio, seed),
                                         advance=advance, save=_saver(ckpt_path, fp, done), device=dev, amp=amp)
                done.append(run)
                state["current"] = None
                if ckpt_path is not None:
                    save_state_dict({}, ckpt_path, fingerprint=fp, done=[r.to_json() for r in done], current=None)
    if not widths:
        widths = {g: len(v) for g, v in done[0].gates.items()}
    settings = {"gamma": gamma, "lr": lr, "epochs": epochs, "batch_size": batch_size,
                "data": data_bundle.name, "n_train": len(data_bundle.train)}  # type: ignore[arg-type]
    return Gates(space.id, widths, tuple(done), settings)


def _checked_targets(ratios: Iterable[float], seeds: Iterable[int]) -> tuple[list[float], list[int]]:
    """``ratios`` and ``seeds`` as lists, each ratio in (0, 1) and at least one of each.

    Raises:
        NasPruneError: no ratio, a ratio outside (0, 1), or no seed.
    """
    ratios = [float(r) for r in ratios]
    seeds = [int(s) for s in seeds]
    if not ratios or any(not 0 < r < 1 for r in ratios):
        raise NasPruneError(f"ratios {ratios}: every target ratio must lie in (0, 1), e.g. 0.3,0.5,0.7")
    if not seeds:
        raise NasPruneError("no seeds given: pass at least one seed")
    return ratios, seeds


def _load_progress(ckpt_path: Path | None, fp: dict[str, Any]) -> dict[str, Any]:
    """The work a checkpoint holds (``done`` runs, the ``current`` one); nothing done without one.

    Raises:
        NasPruneError: the checkpoint was written with settings other than ``fp``.
    """
    state: dict[str, Any] = {"done": [], "current": None}
    if ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, what="gates checkpoint")
        if state.get("fingerprint") != fp:
            raise NasPruneError(
                f"gates checkpoint {ckpt_path} was written with other settings: delete it or rerun with the same "
                "space, data, ratios, seeds, epochs, gamma, lr and batch size"
            )
    return state


def _current_run(state: dict[str, Any], ratio: float, seed: int) -> dict[str, Any] | None:
    """The checkpointed state of the unfinished run (``ratio``, ``seed``) to resume, if it is that one."""
    current = state.get("current")
    return current if current and current["ratio"] == ratio and current["seed"] == seed else None


def _saver(path: Path | None, fp: dict[str, Any], done: list[GateRun]) -> Any:
    def save(current: dict[str, Any], model_state: dict[str, torch.Tensor]) -> None:
        if path is not None:
            save_state_dict(model_state, path, fingerprint=fp, done=[r.to_json() for r in done], current=current)
    return save


class _Gated(nn.Module):
    """The frozen network and its gates as one module (what DDP wraps: the gates are its parameters)."""

    def __init__(self, model: nn.Module, hooks: GateHooks) -> None:
        super().__init__()
        self.model = model
        self.gates = nn.ParameterList(hooks.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _learn_one(space: ChannelSpace, data: DataBundle, *, ratio: float, seed: int, epochs: int, gamma: float,
               lr: float, batch_size: int, resume: dict[str, Any] | None, advance: Any,
               save: Any, device: torch.device = torch.device("cpu"),
               amp: bool = True) -> tuple[GateRun, dict[str, int]]:
    set_seed(seed)
    model = space.build_model().to(device)  # built on the CPU from the seed: the same weights on any device
    for p in model.parameters():
        p.requires_grad_(False)
    start_epoch, best = 0, None
    initial = None
    if resume is not None:
        model.load_state_dict(resume["model"])
        initial = {k: torch.as_tensor(v) for k, v in resume["gates"].items()}
        start_epoch, best = int(resume["epoch"]), resume["best"]
    hooks = GateHooks(model, space, initial=initial)
    if not hooks.gates:
        raise NasPruneError(f"space {space.id} has no gateable searchable gene: nothing to learn")
    opt = torch.optim.Adam(hooks.parameters(), lr=lr)
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
    steps = num_batches(data.train, batch_size, drop_last=True)
    advance(start_epoch * steps)
    n_gates, total = int(hooks.flat().numel()), epochs * steps
    # under torchrun, DDP averages the gates' gradients; each process reads its share of every batch
    gated = wrap(_Gated(model, hooks))
    with hooks:
        for epoch in range(start_epoch, epochs):
            model.train()  # batch norm in train mode; the weights have no gradient and no optimiser
            for i, (x, y) in enumerate(batches(data.train, batch_size, shuffle=True, seed=seed * 1000 + epoch,
                                               drop_last=True, world=world())):
                x, y = to_device(x, device), to_device(y, device)
                flat = hooks.flat()
                with autocast(device, amp):
                    logits = gated(x)
                loss = F.cross_entropy(logits.float(), y) + gamma * (flat.abs().mean() - ratio) ** 2
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"gate learning: loss is {loss.item()}; lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                hooks.clamp_()
                hooks.keep_top_(kept_gates(epoch * steps + i + 1, total, n_gates, ratio))
                advance()
            nonzero = float((hooks.flat() != 0).float().mean())
            # only gates at the ratio can be the best: before it is reached, a validation pass is wasted
            acc = evaluate(model, data.val, amp=amp) if nonzero <= ratio else None
            if acc is not None and (best is None or acc > best["val_accuracy"]):
                best = GateRun(ratio, seed, {k: tuple(v) for k, v in hooks.values().items()}, acc, nonzero,
                               epoch + 1, True).to_json()
            save({"ratio": ratio, "seed": seed, "epoch": epoch + 1, "best": best,
                  "gates": {k: g.detach().to("cpu", copy=True) for k, g in hooks.gates.items()},
                  "optimizer": opt.state_dict(), "model": model.state_dict()}, {})
        widths = {k: int(g.numel()) for k, g in hooks.gates.items()}
        if best is not None:
            return GateRun.from_json(best), widths
        # The ratio was never reached: keep the last gates (as the reference code does), flagged.
        nonzero = float((hooks.flat() != 0).float().mean())
        last = GateRun(ratio, seed, {k: tuple(v) for k, v in hooks.values().items()},
                       evaluate(model, data.val, amp=amp), nonzero, epochs, False)
        return last, widths
