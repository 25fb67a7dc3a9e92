"""Distillation methods as strategies, chosen by name from a registry.

A method owns its losses, its extra modules (checkpointed with the student) and its own
optimisers; the run (:class:`nas_prune.distill._run._Run`) owns the student, the teacher, the
student's optimiser and schedule, the teacher-output cache, checkpoints and progress. Adding a
method is one class with ``@register_method`` (see ``docs/extending.md``)::

    @register_method
    class MyKD(DistillMethod):
        name = "my-kd"
        summary = "KD with my twist"

        def loss(self, run, x, y, idx):
            t_logits, _ = run.teacher_outputs(x, idx)
            return run.kd(run.student(x), t_logits, y)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import torch
from torch import nn

from nas_prune.distill._correlation import CorrelationCongruence
from nas_prune.distill._dafl import DAFLLoss
from nas_prune.distill._features import penultimate_features
from nas_prune.distill._generator import DAFLGenerator
from nas_prune.distill._sampler import ClassUniformBatchSampler, dataset_labels
from nas_prune.errors import NasPruneError

if TYPE_CHECKING:
    from nas_prune.distill._run import _Run

__all__ = ["DistillMethod", "register_method", "get_method", "method_names", "method_help"]

_REGISTRY: dict[str, type[DistillMethod]] = {}


class DistillMethod:
    """One way of training the student; subclass it and register it with :func:`register_method`.

    Class attributes:
        name: The ``--method`` name.
        summary: One line for the command line's help.
        reads_train_data: False for data-free methods: the training split is never touched (and
            PruningNet weights are not BatchNorm-recalibrated on it).
        teacher_features: Whether :meth:`_Run.teacher_outputs` must also return the teacher's
            penultimate features (cached with its logits).

    One instance serves one run; :meth:`setup` is called once, before the student's optimiser exists.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    reads_train_data: ClassVar[bool] = True
    teacher_features: ClassVar[bool] = False

    def setup(self, run: _Run) -> None:
        """Create extra modules in ``run.extra`` (checkpointed) and the method's own optimisers."""

    def student_side_parameters(self, run: _Run) -> list[nn.Parameter]:
        """Extra parameters trained by the student's optimiser and schedule (default: all of ``run.extra``)."""
        return list(run.extra.parameters())

    def steps_per_epoch(self, run: _Run) -> int:
        return max(1, len(run.data.train) // run.cfg.batch_size)  # type: ignore[arg-type]

    def index_batches(self, run: _Run, epoch: int) -> Iterator[torch.Tensor]:
        """Indices into the training split, one tensor per step (default: a seeded shuffle)."""
        g = torch.Generator().manual_seed(run.seed * 1000 + epoch)
        order = torch.randperm(len(run.data.train), generator=g)  # type: ignore[arg-type]
        bs = run.cfg.batch_size
        for s in range(run.steps):
            yield order[s * bs:(s + 1) * bs]

    def loss(self, run: _Run, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """The student's loss on one real batch ``(x, y)`` (``idx``: its indices, for the teacher cache;
        None for streamed image folders)."""
        raise NotImplementedError

    def train_steps(self, run: _Run, epoch: int) -> Iterator[float]:
        """Run one epoch, yielding each step's loss (default: :meth:`loss` on :meth:`index_batches`,
        augmented when the training split is)."""
        for idx, x, y in run.batches(self.index_batches(run, epoch), seed=run.seed * 1000 + epoch):
            loss = self.loss(run, x, y, idx)
            run.step(run.opt, loss)
            yield loss.item()

    def epoch_record(self, run: _Run) -> dict[str, Any]:
        """Extra entries of the epoch's history record (e.g. a generator's mean loss terms; default none)."""
        return {}

    def state(self) -> dict[str, Any]:
        """Checkpoint entries of the method's own optimisers (merged into the run's checkpoint)."""
        return {}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        """Restore what :meth:`state` wrote."""


def register_method(cls: type[DistillMethod]) -> type[DistillMethod]:
    """Class decorator: make ``cls`` available as ``method=cls.name`` (and ``--method``)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"distillation method {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> DistillMethod:
    """A fresh instance of the method registered as ``name``."""
    if name not in _REGISTRY:
        raise NasPruneError(f"unknown distillation method {name!r}: use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]()


def method_names() -> tuple[str, ...]:
    """Registered method names, in registration order."""
    return tuple(_REGISTRY)


def method_help() -> str:
    """``kd (summary) | cckd (summary) | ...`` for the command line."""
    return " | ".join(f"{n} ({c.summary})" if c.summary else n for n, c in _REGISTRY.items())


@register_method
class HintonKDMethod(DistillMethod):
    """Hinton et al. 2015: cross-entropy on labels plus the ``T^2``-scaled KL to the teacher's soft outputs."""

    name = "kd"
    summary = "Hinton KD"

    def loss(self, run: _Run, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        t_logits, _ = run.teacher_outputs(x, idx)
        with penultimate_features(run.student, layer=run.s_head):
            return run.kd(run.student(x), t_logits, y)


@register_method
class CCKDMethod(DistillMethod):
    """CCKD (Peng et al. ICCV 2019): KD plus correlation congruence, on class-uniform batches."""

    name = "cckd"
    summary = "KD + correlation congruence"
    teacher_features = True

    def setup(self, run: _Run) -> None:
        cfg, student, teacher = run.cfg, run.student, run.teacher
        with torch.no_grad(), penultimate_features(student, layer=run.s_head) as fs, \
                penultimate_features(teacher, layer=run.t_head) as ft:
            student.eval()(run.example), teacher(run.example)
            s_dim, t_dim = fs().shape[1], ft().shape[1]
        run.extra["cc"] = CorrelationCongruence(student_dim=s_dim, teacher_dim=t_dim, embed_dim=cfg.embed_dim,
                                                gamma=cfg.cc_gamma, order=cfg.cc_order, seed=run.seed)

    def index_batches(self, run: _Run, epoch: int) -> Iterator[torch.Tensor]:
        cfg = run.cfg
        sampler = ClassUniformBatchSampler(dataset_labels(run.data.train).cpu(), batch_size=cfg.batch_size,
                                           per_class=cfg.per_class, seed=run.seed * 1000 + epoch)
        for b in sampler:
            yield torch.tensor(b)

    def loss(self, run: _Run, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        t_logits, t_feats = run.teacher_outputs(x, idx)
        with penultimate_features(run.student, layer=run.s_head) as fs:
            s_logits = run.student(x)
            return run.kd(s_logits, t_logits, y) + run.cfg.cc_weight * run.extra["cc"](fs(), t_feats)


@register_method
class DAFLMethod(DistillMethod):
    """DAFL (Chen et al. ICCV 2019, arXiv 1904.01186): data-free; a generator learns images the teacher is sure about.

    Each step, as the paper's training loop: a batch of ``dafl_batch_size`` noise vectors, the
    generator's images, one teacher forward; the generator (its own Adam, no schedule) takes a step
    on ``L_oh + 0.1 L_a + 5 L_ie`` (:class:`~nas_prune.distill.DAFLLoss`, plus whatever
    :meth:`generator_extra_loss` adds), the student a step on KD's soft term against the teacher's
    outputs on the same (detached) images. No labels, and no training image, are involved.

    Each epoch's record carries the mean generator terms (``g_one_hot``, ``g_activation``,
    ``g_info_entropy``, ``g_total``; subclasses add theirs) and the class balance of the generated
    images (``g_classes``: distinct teacher argmax classes in the last batch).
    """

    name = "dafl"
    summary = "data-free"
    reads_train_data = False
    #: The generator's output BatchNorm learns a scale and shift (DAFL's does not: see DAFLGenerator).
    affine_output: ClassVar[bool] = False

    def setup(self, run: _Run) -> None:
        cfg = run.cfg
        run.extra["generator"] = DAFLGenerator(image_shape=run.space.input_shape, latent_dim=cfg.latent_dim,
                                               width=cfg.generator_width, affine_output=self.affine_output)
        self.dafl = DAFLLoss(one_hot_weight=cfg.one_hot_weight, activation_weight=cfg.activation_weight,
                             entropy_weight=cfg.entropy_weight)
        self.opt_g = torch.optim.Adam(run.extra["generator"].parameters(), lr=cfg.generator_lr)
        self._sums: dict[str, float] = {}
        self._classes = 0

    def student_side_parameters(self, run: _Run) -> list[nn.Parameter]:
        return []  # the generator has its own optimiser

    def steps_per_epoch(self, run: _Run) -> int:
        return run.cfg.dafl_steps_per_epoch

    def generator_extra_loss(self, run: _Run) -> dict[str, torch.Tensor]:
        """Weighted extra generator terms of the teacher forward just made (``{}``: plain DAFL).

        Called inside :meth:`teacher_forward`'s context, right after the teacher's forward pass.
        """
        return {}

    def teacher_forward(self, run: _Run, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The teacher's logits on ``images`` and the generator's loss terms (``"total"`` among them)."""
        with penultimate_features(run.teacher, layer=run.t_head) as ft:
            t_logits = run.teacher(images)
            terms = self.dafl.terms(t_logits, ft())
        out = {"one_hot": terms.one_hot, "activation": terms.activation, "info_entropy": terms.info_entropy}
        total = terms.total
        for key, value in self.generator_extra_loss(run).items():
            out[key] = value
            total = total + value
        out["total"] = total
        return t_logits, out

    def train_steps(self, run: _Run, epoch: int) -> Iterator[float]:
        g = torch.Generator().manual_seed(run.seed * 1000 + epoch)
        gen, cfg = run.extra["generator"], run.cfg
        self._sums = {}
        for _ in range(run.steps):
            gen.train()
            z = torch.randn(cfg.dafl_batch_size, cfg.latent_dim, generator=g).to(run.device)
            images = gen(z)
            t_logits, terms = self.teacher_forward(run, images)
            run.step(self.opt_g, terms["total"], schedule=False)
            for key, value in terms.items():
                self._sums[key] = self._sums.get(key, 0.0) + float(value.item())
            self._classes = int(t_logits.argmax(1).unique().numel())
            s_loss = run.kd_free(run.student(images.detach()), t_logits.detach())
            run.step(run.opt, s_loss)
            yield s_loss.item()

    def epoch_record(self, run: _Run) -> dict[str, Any]:
        n = max(1, run.steps)
        return {**{f"g_{k}": v / n for k, v in self._sums.items()}, "g_classes": self._classes}

    def state(self) -> dict[str, Any]:
        return {"generator_optimizer": self.opt_g.state_dict()}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.opt_g.load_state_dict(ckpt["generator_optimizer"])


@register_method
class LabelsOnlyMethod(DistillMethod):
    """The baseline: cross-entropy on labels; the teacher is not used for training."""

    name = "none"
    summary = "labels only"

    def loss(self, run: _Run, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return nn.functional.cross_entropy(run.student(x), y)
