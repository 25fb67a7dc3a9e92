"""What ``nas-prune run`` does, as data: one dataclass, with presets per dataset."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from nas_prune.budget import LatencyLimit
from nas_prune.data import Preprocess
from nas_prune.errors import NasPruneError
from nas_prune.pipeline._select import SELECT_MODES
from nas_prune.search import DEFAULT_SAMPLER

__all__ = ["RunConfig", "PRESETS", "RUN_INITS"]

#: Student inits ``nas-prune run`` fills in from its own stages (``pnet`` -> ``pnet:DIR/pnet.pt``).
RUN_INITS = ("pnet", "gates")


# Stage settings per dataset: digits is small (the demo must finish in minutes), fashion-mnist is the
# realistic recipe. Anything can be overridden on the command line. The teacher's epochs apply only to
# a teacher trained from scratch; the PruningNet's come from the training split's size
# (nas_prune.pruningnet.default_epochs), whatever the teacher.
PRESETS: dict[str, dict[str, Any]] = {
    "digits": dict(teacher_epochs=10, gate_steps=160, n_trials=80, distill_epochs=10,
                   train_subset=None, batch_size=64),
    # its finish: distill's default_epochs, 160k images' worth (16 epochs of the 10k subset, 4 of the full split)
    "fashion-mnist": dict(teacher_epochs=8, gate_steps=240, n_trials=200, distill_epochs=None,
                          train_subset=10000, batch_size=128),
}
_DEFAULT_PRESET = dict(teacher_epochs=8, gate_steps=400, n_trials=150, distill_epochs=None,
                       train_subset=None, batch_size=128)


@dataclass
class RunConfig:
    """Every setting of one ``nas-prune run``; stored in ``DIR/config.json``."""

    model: str = "mobilenet_v2"
    data: str = "digits"
    teacher: Path | None = None  # the user's trained weights (any usual layout); None: trained here from scratch
    weights: str | None = None  # torchvision's named weights (IMAGENET1K_V1, DEFAULT) from the local torch hub cache
    mean: str | None = None  # the network's input normalisation: "0.286" or "0.485,0.456,0.406"
    std: str | None = None
    resize: int | None = None  # image folders: shorter side resized to this, then a centre crop of input_size
    teacher_lr: float | None = None  # default: 0.05 from scratch, 0.005 fine-tuning trained weights
    budget: str = "0.5x"
    table: Path | None = None
    profile: bool = False
    backend: str = "optuna"
    sampler: str = DEFAULT_SAMPLER
    out: Path = Path("runs/demo")
    input_size: int = 32
    threads: int = 1
    method: str = "kd"
    init: str = "pnet"
    ratios: tuple[float, ...] = (0.3, 0.5, 0.7)
    seed: int = 0
    teacher_epochs: int | None = None
    gate_epochs: int | None = None
    gate_steps: int | None = None
    pnet_epochs: int | None = None
    n_trials: int | None = None
    distill_epochs: int | None = None
    train_subset: int | None = None
    augment: str | None = None  # training augmentation: none | standard (default: the dataset's, e.g. standard for folders)
    workers: int | None = None  # image-folder loader processes (default: the cores this process may use)
    strict_data: bool = False  # any unreadable image is an error (default: skipped and counted, up to 0.1 %)
    batch_size: int | None = None  # teacher, gates and PruningNet (default: the dataset preset)
    distill_batch_size: int | None = None  # the finish (default: DistillConfig's, 128)
    validate_n: int = 8
    device: str = "auto"  # every training stage and PruningNet scoring: auto | cpu | cuda[:N] (latency: the table's)
    finalists: int = 8
    pick_margin: float = 0.04  # the finalists' pick must measure at least this fraction under the budget (a floor: _finalists)
    select: str = "score"  # the pick: the finalists' by PruningNet score, or the winner of a brief fine-tune (_select)
    select_k: int = 3  # --select finetune: this many finalists that met the budget compete with the baselines
    calibration: str = "auto"
    repair: bool = True  # a quiet final check over the budget: shrink the pick, finish it briefly, check again
    overrides: dict[str, Any] = field(default_factory=dict)
    # Parsed once, in __post_init__, from the fields above: every stage reads these objects, never the strings.
    preprocess: Preprocess = field(init=False, repr=False)  # from mean/std/resize/weights
    limit: LatencyLimit = field(init=False, repr=False)  # from budget
    torch_device: torch.device = field(init=False, repr=False)  # from device ("auto" resolved here, once)

    def __post_init__(self) -> None:
        from nas_prune.training import resolve_device

        # parsed now: a typo fails before the run directory holds a config.json
        self.limit = LatencyLimit.parse(self.budget, reference="the teacher's measured latency")
        self.torch_device = resolve_device(self.device)
        if self.calibration not in ("auto", "refresh", "off"):
            raise NasPruneError(f"calibration {self.calibration!r}: use auto, refresh or off")
        if not 0.0 <= self.pick_margin < 0.5:
            raise NasPruneError(f"pick margin {self.pick_margin}: use a fraction in [0, 0.5), e.g. 0.04")
        if self.select not in SELECT_MODES:
            raise NasPruneError(f"select {self.select!r}: use {' or '.join(SELECT_MODES)}")
        if self.select_k < 1:
            raise NasPruneError(f"select k {self.select_k}: give 1 or more finalists to fine-tune")
        if self.select == "finetune" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise NasPruneError("--select finetune runs in one process: run it without torchrun, or use --select score")
        if self.backend not in ("optuna", "nni"):
            raise NasPruneError(f"backend {self.backend!r}: use optuna or nni")
        self._validate_names()
        self.preprocess = self._preprocess()  # parsed once: every stage reads this object
        from nas_prune.data import AUGMENTATIONS, default_augment

        self.augment = self.augment or default_augment(self.data)
        if self.augment not in AUGMENTATIONS:
            raise NasPruneError(f"augment {self.augment!r}: use one of {', '.join(AUGMENTATIONS)}")
        for name in ("batch_size", "distill_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise NasPruneError(f"{name.replace('_', ' ')} {getattr(self, name)}: give 1 or more images per batch")
        if self.workers is not None and self.workers < 0:
            raise NasPruneError(f"workers {self.workers}: give 0 (read images in the training process) or more")
        preset = PRESETS.get(self.data.partition(":")[0], _DEFAULT_PRESET)
        from nas_prune.distill import get_method

        data_free = not get_method(self.method).reads_train_data
        for key, value in preset.items():
            if key == "distill_epochs" and data_free:
                continue  # a preset's epochs are for labelled finishes: data-free ones count steps (default_epochs)
            if key == "teacher_epochs" and self.pretrained:
                continue  # trained weights are evaluated (or fine-tuned for a new classifier): prepare_teacher decides
            if getattr(self, key) is None:
                setattr(self, key, value)

    @property
    def pretrained(self) -> bool:
        """The run starts from trained weights (``--teacher`` or ``--weights``), not from scratch."""
        return self.teacher is not None or self.weights is not None

    def _preprocess(self) -> Preprocess:
        """``--mean/--std/--resize`` over the named weights' preprocessing (or nas-prune's default)."""
        base = None
        if self.weights is not None:
            from nas_prune.pretrained import torchvision_weights

            base = torchvision_weights(self.model, self.weights).preprocess
        elif self.teacher is not None:
            from nas_prune.models import timm_preprocess

            stats = timm_preprocess(self.model)  # a timm model's trained weights: its pretrained config's mean/std
            if stats is not None:
                base = Preprocess(stats[0], stats[1], source=f"{self.model} pretrained config")
        return Preprocess.from_options(self.mean, self.std, self.resize, base=base)

    def weights_file(self) -> Path | None:
        """The trained weights to start from: ``--teacher``, or the file of ``--weights`` in the hub cache."""
        if self.teacher is not None:
            return Path(self.teacher)
        if self.weights is not None:
            from nas_prune.pretrained import torchvision_weights

            return torchvision_weights(self.model, self.weights).path
        return None

    def _validate_names(self) -> None:
        """Every name resolves, so a typo fails here, before the run directory holds a ``config.json``.

        (The data itself, which needs loading, is checked by ``run_pipeline`` before it writes the file.)
        """
        from nas_prune.data import list_datasets
        from nas_prune.distill import get_init_kind, get_method
        from nas_prune.models import get_entry
        from nas_prune.search import check_sampler

        get_entry(self.model)
        name = self.data.partition(":")[0]
        if name not in list_datasets():
            raise NasPruneError(f"unknown dataset {name!r}: use one of {', '.join(list_datasets())}")
        check_sampler(self.sampler)
        get_method(self.method)
        if self.init not in RUN_INITS:  # the run's own pnet/gates files, or any init spec
            get_init_kind(self.init)
        if self.table is not None and not Path(self.table).is_file():
            raise NasPruneError(f"latency table {self.table} does not exist: give a table file or leave --table out")
        if self.teacher is not None and not Path(self.teacher).is_file():
            raise NasPruneError(f"teacher weights {self.teacher} do not exist: give the file your network's "
                                "state_dict was saved to")
        if self.teacher is not None and self.weights is not None:
            raise NasPruneError("--teacher and --weights both give the teacher's weights: keep one")
        if self.teacher is not None:
            from nas_prune.pretrained import read_weights_file

            read_weights_file(self.teacher, keep=True)  # unsafe or unreadable files fail before any stage runs (read once)
        for key in ("input_size", "threads"):
            if int(getattr(self, key)) < 1:
                raise NasPruneError(f"{key.replace('_', '-')} {getattr(self, key)} must be at least 1")

    @property
    def budget_spec(self) -> LatencyLimit:
        """The budget as parsed (:attr:`limit`); kept for code written before ``limit`` existed."""
        return self.limit

    def to_json(self) -> dict[str, Any]:
        """The settings as given (``config.json``), with the parsed preprocessing; parsed objects left out."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
             if f.name not in ("preprocess", "limit", "torch_device")}
        d["out"] = str(self.out)
        d["table"] = str(self.table) if self.table else None
        d["ratios"] = list(self.ratios)
        d["teacher"] = str(self.teacher) if self.teacher else None
        d["preprocess"] = self.preprocess.to_json()
        return d
