"""Training a PruningNet that ranks candidates the way training them does.

MetaPruning (Liu et al., ICCV 2019, arXiv 1903.10258) trains its PruningNet on one random
candidate per batch, from random weights. Measured here, that ranks wide candidates below narrow
ones (scored at uniform widths 0.25 / 0.5 / 0.75 / 1.0 on digits: 28 / 38 / 38 / 31 %). The default
protocol is the one weight-sharing NAS converged on since:

- the shared weights start from the trained teacher and every candidate keeps the teacher's most
  important channels (L1 order), the order that scoring and finishing use too (Once-for-All, Cai et
  al., ICLR 2020, arXiv 1908.09791);
- the sandwich rule: every step trains the full network, the smallest and ``n_random`` random
  candidates, gradients accumulated into one optimiser step (Yu & Huang, Universally Slimmable
  Networks, ICCV 2019, arXiv 1903.05134; BigNAS, arXiv 2003.11142);
- in-place distillation: only the full network sees the labels, the others learn its detached
  soft output (same papers);
- random candidates drawn by size (AttentiveNAS, arXiv 2011.09011; :class:`ArchSampler`),
  optionally mixed with the gate priors.

``sandwich=False`` gives MetaPruning's original one-candidate-per-batch training.

Training runs on ``device`` (``auto``: the first CUDA GPU when there is one): an in-memory training
split is copied there once, other batches travel through pinned memory, and on CUDA the forward
passes run under bfloat16 autocast (``amp``; the losses are computed in float32).
"""

from __future__ import annotations

import copy
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_prune.data import check_num_classes, num_batches, to_bundle
from nas_prune.distributed import wrap
from nas_prune.errors import NasPruneError
from nas_prune.export import load_checkpoint, load_model
from nas_prune.pruningnet._net import PruningNet
from nas_prune.pruningnet._sampling import ArchSampler
from nas_prune.space import ChannelSpace, l1_importance
from nas_prune.training import dataset_on, model_device, resolve_device, train_epoch

__all__ = ["ArchSampler", "train_pruningnet", "default_epochs", "DEFAULT_EPOCHS", "PNET_IMAGES", "MAX_EPOCHS"]

#: The training split is seen about this many times' worth of images (four candidates each), capped
#: at :data:`MAX_EPOCHS` epochs: 10 epochs of digits' 1,078 training images and 8 of a 10,000-image
#: Fashion-MNIST subset (the two measured recipes), 1 of a 55,000-image or larger split. The
#: schedule depends on the data only, never on how the teacher was made (a pretrained teacher's
#: 90-600 ImageNet epochs say nothing about what the PruningNet needs).
PNET_IMAGES = 80_000
MAX_EPOCHS = 10
#: Epochs when the training split's size is unknown (a dataset without ``len``).
DEFAULT_EPOCHS = 15


def default_epochs(n_train: int) -> int:
    """PruningNet epochs for a training split of ``n_train`` images (:data:`PNET_IMAGES`, 1 to :data:`MAX_EPOCHS`)."""
    return int(min(MAX_EPOCHS, max(1, round(PNET_IMAGES / max(1, n_train)))))


def _teacher(space: ChannelSpace, teacher: Any) -> nn.Module:
    """The teacher model on the CPU, where its channel order is traced; one on another device is copied, not moved."""
    if isinstance(teacher, nn.Module):
        return teacher if model_device(teacher).type == "cpu" else copy.deepcopy(teacher).cpu()
    return load_model(space, Path(teacher), what="teacher checkpoint")


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` against the soft ``target`` distribution (in-place distillation)."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def _gate_parts(gates: Any, space: ChannelSpace) -> tuple[dict | None, dict | None]:
    """The gates' width prior and channel order (each ``None`` when absent), once they are checked against ``space``."""
    if gates is None:
        return None, None
    if hasattr(gates, "check_space"):
        gates.check_space(space)
    prior = gates.prior() if callable(getattr(gates, "prior", None)) else getattr(gates, "prior", None)
    order = gates.order() if callable(getattr(gates, "order", None)) else None
    return (dict(prior) if prior else None), (dict(order) if order else None)


def _epoch_count(epochs: int | None, bundle: Any) -> int:
    """``epochs``, or :func:`default_epochs` of the training split (:data:`DEFAULT_EPOCHS` when it has no size).

    Raises:
        NasPruneError: ``epochs`` < 1.
    """
    if epochs is None:
        try:
            epochs = default_epochs(len(bundle.train))
        except TypeError:
            epochs = DEFAULT_EPOCHS
    if epochs < 1:
        raise NasPruneError(f"epochs={epochs}: need at least one epoch")
    return epochs


@dataclass(frozen=True)
class _Recipe:
    """The training protocol of :func:`train_pruningnet` (its arguments of the same names).

    Raises:
        NasPruneError: ``n_random`` < 0.
    """

    sandwich: bool
    n_random: int
    inplace_distill: bool
    sampling: str
    prior_mix: float
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    seed: int
    amp: bool

    def __post_init__(self) -> None:
        if self.n_random < 0:
            raise NasPruneError(f"n_random={self.n_random}: need 0 or more random candidates per step")


def _new_or_resumed(space: ChannelSpace, path: Path | None, seed: int, teacher_model: nn.Module | None,
                    **build: Any) -> tuple[PruningNet, int, list[dict[str, Any]], Any]:
    """The PruningNet to train, resumed from the checkpoint at ``path`` when there is one, else built anew.

    Args:
        space: The channel space.
        path: The run's checkpoint, if any.
        seed: Seeds a new PruningNet's initial weights.
        teacher_model: Gives a new PruningNet's initial weights, if any.
        **build: :class:`PruningNet`'s other arguments for a new one (a resumed one keeps the checkpoint's).

    Returns:
        The PruningNet, the epoch to start at, the history of the finished epochs and the saved
        optimiser state (``None`` for a new PruningNet).
    """
    if path is not None and path.exists():
        ckpt = load_checkpoint(path, what="PruningNet checkpoint")
        pnet = PruningNet.from_checkpoint(ckpt, path, space)
        return pnet, int(ckpt.get("epoch", 0)), list(ckpt.get("history", [])), ckpt.get("optimizer")
    with torch.random.fork_rng():  # the initial weights follow ``seed`` too: a re-run is reproducible
        torch.manual_seed(seed)
        init = teacher_model.state_dict() if teacher_model is not None else None
        pnet = PruningNet(space, init_state=init, **build)
    return pnet, 0, [], None


class _Run:
    """One training run of a PruningNet: its data, candidates, optimiser, schedule and DDP wrapper.

    Args:
        pnet: The PruningNet (new or resumed), moved to ``dev`` here.
        bundle: The data; the PruningNet trains on its training split.
        dev: Where to train.
        prior: The gates' width prior, if any (for :class:`ArchSampler`).
        recipe: The training protocol.
        epochs: The run's total number of epochs.
        start: The first epoch to train (the finished ones of a resumed run are skipped).
        opt_state: The optimiser state of a resumed run.
        teacher_init: Whether the shared weights started from a teacher (recorded in the settings).
    """

    def __init__(self, pnet: PruningNet, bundle: Any, dev: torch.device, prior: dict | None, recipe: _Recipe, *,
                 epochs: int, start: int, opt_state: Any, teacher_init: bool) -> None:
        r = self.recipe = recipe
        self.pnet, self.epochs = pnet, epochs
        pnet.to(dev)  # before the optimiser is built over its parameters (a resumed state follows them)
        pnet.preprocess = getattr(bundle, "preprocess", None)  # recorded: scoring must normalise the same way
        self.train_set = dataset_on(bundle.train, dev)
        self.sampler = ArchSampler(pnet.space, prior=prior, mode=r.sampling, prior_mix=r.prior_mix)
        self.full, self.small = pnet.space.full(), self.sampler.smallest()
        params = [p for p in pnet.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay, nesterov=True)
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)
        per_epoch = max(1, num_batches(self.train_set, r.batch_size, drop_last=True))
        total = per_epoch * max(epochs, 1)
        for group in self.opt.param_groups:
            group.setdefault("initial_lr", r.lr)
        # Cosine decay per batch over the whole run; a resumed run continues at its step.
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)),
                                                          last_epoch=start * per_epoch - 1)
        self.settings = {"sandwich": r.sandwich, "n_random": r.n_random, "inplace_distill": r.inplace_distill,
                         "sampling": r.sampling, "prior_mix": self.sampler.prior_mix, "teacher_init": teacher_init,
                         "epochs": epochs, "steps": total, "batch_size": r.batch_size, "lr": r.lr}
        # DDP under torchrun: every process draws the same candidates (the same rng, step by step), so the
        # averaged gradients belong to one set of subnetworks
        self.trained = wrap(pnet)

    def epoch_loss(self, epoch: int) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
        """The loss of a batch in ``epoch``: the sandwich rule's summed candidates, or one random candidate."""
        r, sampler, full, small = self.recipe, self.sampler, self.full, self.small
        rng = random.Random(r.seed * 100_003 + epoch)  # the sampled architectures of this epoch

        def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: random.Random = rng) -> torch.Tensor:
            if not r.sandwich:
                return F.cross_entropy(model(x, sampler.sample(rng)), y)
            # One graph per candidate, summed: the gradients accumulate into one step (US-Nets).
            logits = model(x, full)
            loss = F.cross_entropy(logits, y)
            target = F.softmax(logits.detach(), dim=1)
            for arch in [small] + [sampler.sample(rng) for _ in range(r.n_random)]:
                out = model(x, arch)
                loss = loss + (_soft_cross_entropy(out, target) if r.inplace_distill else F.cross_entropy(out, y))
            return loss

        return loss_fn

    def train(self, start: int, history: list[dict[str, Any]], path: Path | None) -> PruningNet:
        """Train epochs ``start`` to the last, saving the checkpoint at ``path`` (if any) after each; the PruningNet in eval mode."""
        r, pnet, epochs = self.recipe, self.pnet, self.epochs
        for epoch in range(start, epochs):
            loss = train_epoch(self.trained, self.train_set, self.opt, batch_size=r.batch_size, seed=r.seed * 1000 + epoch,
                               loss_fn=self.epoch_loss(epoch), scheduler=self.schedule, label=f"pruningnet {epoch + 1}/{epochs}", amp=r.amp)
            history.append({"epoch": epoch + 1, "loss": loss})
            if path is not None:
                pnet.save(path, epoch=epoch + 1, epochs=epochs, optimizer=self.opt.state_dict(), history=history, seed=r.seed,
                          settings=self.settings)
        pnet.history = history  # type: ignore[attr-defined]
        pnet.train_settings = self.settings  # type: ignore[attr-defined]
        return pnet.eval()


def train_pruningnet(
    space: ChannelSpace, data_bundle: Any, *, epochs: int | None = None,
    teacher: str | os.PathLike[str] | nn.Module | None = None, gates: Any = None, importance: Mapping[str, Sequence[int]] | None = None,
    sandwich: bool = True, n_random: int = 2, inplace_distill: bool = True, sampling: str = "size", prior_mix: float = 0.25,
    lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 4e-5, batch_size: int = 64,
    generator: str = "lowrank", hidden: int = 32, rank: int = 4, per_choice_bn: bool = False,
    checkpoint: str | os.PathLike[str] | None = None, seed: int = 0, device: str | torch.device = "cpu", amp: bool = True,
) -> PruningNet:
    """Train a PruningNet of ``space`` on the training split of ``data_bundle``.

    See the module docstring for the protocol. SGD with Nesterov momentum and a cosine decay per
    step. With ``checkpoint``, the state is written atomically after every epoch and a later call
    with the same path resumes after the last finished epoch (a finished checkpoint is returned as
    is unless ``epochs`` grew).

    Example (your own data: the space's class count is checked against it first)::

        pnet = train_pruningnet(space, (train_dataset, val_dataset), teacher=model, device="auto")

    Args:
        space: The channel space.
        data_bundle: A :class:`~nas_prune.data.DataBundle` (``load_data(...)``, ``make_bundle(...)``)
            or your ``(train, val[, test])`` splits: torch Datasets, DataLoaders (their datasets
            are used, batched at ``batch_size``) or ``(images, labels)`` tensors
            (:func:`nas_prune.data.to_bundle`).
        epochs: Passes over the training split; ``None``: as many as the teacher was trained for
            (its checkpoint's history), else :data:`DEFAULT_EPOCHS`.
        teacher: The trained unpruned model (a checkpoint path or the module): initial shared
            weights and, unless ``importance`` is given, the channel order (L1 magnitude).
        gates: Learned gates (:class:`nas_prune.gates.Gates` or anything with ``prior`` and
            ``order()``): a ``prior_mix`` share of the random candidates is drawn from their
            priors; without a teacher their order is the channel order.
        importance: ``{gene: [channels, most important first]}``; overrides both orders.
        sandwich: Train the full, the smallest and ``n_random`` random candidates every step;
            ``False``: one random candidate per step (MetaPruning's original training).
        n_random: Random candidates per step under the sandwich rule (at least 2 recommended).
        inplace_distill: Candidates other than the full network learn its detached softmax
            instead of the labels.
        sampling: How random candidates are drawn: ``size`` or ``uniform`` (:class:`ArchSampler`).
        prior_mix: Share of random candidates drawn from the gate priors (when gates are given).
        lr: SGD's peak learning rate (cosine decay per batch).
        momentum: SGD momentum (Nesterov).
        weight_decay: SGD weight decay.
        batch_size: Images per step.
        generator: The PruningNet's weight generator, a name in ``GENERATORS`` (see
            :class:`PruningNet`; a resumed run keeps the checkpoint's, as for the next three).
        hidden: Width of every generator's hidden layer.
        rank: Rank of the low-rank modulation (``"lowrank"`` only).
        per_choice_bn: Keep BatchNorm running statistics per choice of width.
        checkpoint: Where to save the checkpoint every epoch (and resume from; a checkpoint
            written on a GPU resumes anywhere).
        seed: Seeds the initial weights, the candidates and the batch order.
        device: Where to train: ``auto | cpu | cuda[:N]`` (:func:`nas_prune.training.resolve_device`).
            The returned PruningNet stays there.
        amp: bfloat16 autocast of the forward passes on CUDA (ignored on the CPU).

    Raises:
        SpaceMismatchError: the checkpoint, the teacher or the gates belong to another space.
        DataError: the model's class count is not the data's (both counts named), or the data
            is unusable.
        NasPruneError: ``n_random`` < 0, ``epochs`` < 1, or ``device`` unknown or absent here.
    """
    recipe = _Recipe(sandwich=sandwich, n_random=n_random, inplace_distill=inplace_distill, sampling=sampling, prior_mix=prior_mix,
                     lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, seed=seed, amp=amp)
    bundle = to_bundle(data_bundle)
    check_num_classes(space, bundle)  # a 10-class model on 7-class data fails here, in one line
    dev = resolve_device(device)  # an absent GPU is refused before any work
    prior, gate_order = _gate_parts(gates, space)
    teacher_model = _teacher(space, teacher) if teacher is not None else None
    epochs = _epoch_count(epochs, bundle)
    if importance is None:
        importance = l1_importance(teacher_model, space) if teacher_model is not None else gate_order
    path = Path(checkpoint) if checkpoint is not None else None
    pnet, start, history, opt_state = _new_or_resumed(space, path, seed, teacher_model, generator=generator, hidden=hidden,
                                                      rank=rank, importance=importance, per_choice_bn=per_choice_bn)
    run = _Run(pnet, bundle, dev, prior, recipe, epochs=epochs, start=start, opt_state=opt_state,
               teacher_init=teacher_model is not None)
    return run.train(start, history, path)
