"""What every stage of ``nas-prune run`` is: a :class:`Stage` descriptor, run over one :class:`RunContext`.

A stage is data (its name, what it needs, the files it writes, which splits it reads, whether every
training process runs it) plus one function over the run's context. The ordered registry of stages
is :data:`nas_prune.pipeline.stages.STAGES`; ``run_pipeline`` is a loop over it, and the summary's
stage list, its ``data_use``, the stage cache and the docs' diagram all come from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from nas_prune.progress import console

if TYPE_CHECKING:
    from nas_prune.data import DataBundle
    from nas_prune.gates import Gates
    from nas_prune.latency import LatencyTable
    from nas_prune.pipeline._config import RunConfig
    from nas_prune.space import Architecture, ChannelSpace

__all__ = ["RunContext", "Stage"]


@dataclass
class RunContext:
    """One run's parsed settings, loaded data and the stages' results so far.

    Settings are parsed once at the edge (:class:`~nas_prune.pipeline.RunConfig`); stages take the
    objects here (a torch device, a budget, a data bundle, loaded tables), never strings. The
    artefacts later stages share are read from the run directory on first use, so a stage that was
    cached (skipped) provides them exactly as one that just ran.

    Attributes:
        cfg: The run's configuration.
        out: The run directory.
        data: The loaded data (every split).
        device: The torch device every training stage and the PruningNet's scoring use (``auto``
            resolved once, here).
        results: Each finished stage's result (plain JSON), by stage name.
    """

    cfg: RunConfig
    out: Path
    data: DataBundle
    device: torch.device
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False)

    def log(self, message: str) -> None:
        """Print one plain line (no rich markup) on the run's console."""
        console.print(message, markup=False)

    def _load(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._loaded:
            self._loaded[key] = load()
        return self._loaded[key]

    @property
    def space(self) -> ChannelSpace:
        """The run's channel space (``space.json``, written by the ``space`` stage)."""
        from nas_prune.space import ChannelSpace

        return self._load("space", lambda: ChannelSpace.load(self.out / "space.json"))

    @property
    def table(self) -> LatencyTable:
        """The latency table as calibrated on this machine (``table_calibrated.json``)."""
        from nas_prune.latency import LatencyTable

        return self._load("table", lambda: LatencyTable.load(self.out / "table_calibrated.json"))

    @property
    def gates(self) -> Gates:
        """The learned gates (``gates.json``)."""
        from nas_prune.gates import Gates

        return self._load("gates", lambda: Gates.load(self.out / "gates.json"))

    @property
    def arch(self) -> Architecture:
        """The chosen architecture (``arch.json``: the search's pick, then the finalists'); read every time."""
        from nas_prune.space import Architecture

        return Architecture.load(self.out / "arch.json")

    @property
    def train_images(self) -> int:
        """The number of images in the training split."""
        return len(self.data.train)  # type: ignore[arg-type]

    @property
    def batch_size(self) -> int:
        """The global batch of the training stages (the dataset preset's unless given)."""
        assert self.cfg.batch_size is not None  # RunConfig fills it from the preset
        return self.cfg.batch_size

    @property
    def n_trials(self) -> int:
        """The search's trials (the dataset preset's unless given)."""
        assert self.cfg.n_trials is not None  # RunConfig fills it from the preset
        return self.cfg.n_trials

    @property
    def budget_ms(self) -> float:
        """The budget in milliseconds on the calibrated table's clock (the ``budget`` stage)."""
        return float(self.results["budget"]["budget_ms"])

    @property
    def limit_ratio(self) -> float:
        """The budget as a ratio of the teacher's measured latency (the ``budget`` stage)."""
        return float(self.results["budget"]["limit_ratio"])


@dataclass(frozen=True)
class Stage:
    """One stage of ``nas-prune run``: a registered descriptor (see :mod:`nas_prune.pipeline.stages`).

    Attributes:
        name: The stage's name (the cache's key, the summary's ``stage_seconds`` key).
        title: What it does, in a few words (the docs and ``nas-prune run``'s plan).
        run: The stage itself: takes the run's context, writes ``outputs``, returns plain JSON.
        needs: Stages whose results or files it reads (checked to come earlier in the registry).
        outputs: Files, relative to the run directory, that must exist for a cached record to count.
        reads: Which splits of the data it reads, in words (the summary's ``data_use``), or a
            function of the configuration when that depends on a setting; ``"none"`` (the
            default) for a stage that only reads the run's own files (not listed).
        everyone: Under ``torchrun``, every training process runs it (it trains); otherwise rank 0
            runs it while the others wait.
    """

    name: str
    title: str
    run: Callable[[RunContext], dict[str, Any]]
    needs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    reads: str | Callable[[RunConfig], str] = "none"
    everyone: bool = False

    def data_use(self, cfg: RunConfig) -> str:
        """Which splits this stage reads under ``cfg``, in words."""
        return self.reads(cfg) if callable(self.reads) else self.reads
