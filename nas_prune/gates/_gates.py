"""Learned channel gates of a space: storage, channel order and the width prior.

A :class:`Gates` holds one *run* per (target ratio, seed) of :func:`~nas_prune.gates.learn_gates`:
per gene, one gate in [0, 1] per channel. From the runs it derives what the search needs: the
channel importance order (:meth:`Gates.order`) and a prior over each gene's width
(:attr:`Gates.prior`), after Pruning from Scratch (Wang et al., AAAI 2020, arXiv 1909.12579).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from nas_prune._io import describe_error, read_json, require, require_header, write_json
from nas_prune.errors import InvalidFileError, SpaceMismatchError

if TYPE_CHECKING:
    from nas_prune.gates._budget import Budget
    from nas_prune.space import Architecture, ChannelSpace

__all__ = ["GATES_FORMAT", "GATES_VERSION", "GateRun", "Gates"]

GATES_FORMAT = "nas-prune/gates"
GATES_VERSION = 1


@dataclass(frozen=True)
class GateRun:
    """The gates kept from one (ratio, seed) run: the best-validation checkpoint within the ratio.

    Attributes:
        ratio: Target fraction of non-zero gates ``r``.
        seed: Seed of the random weights and the batch order.
        gates: ``{gene: [gate per channel]}``, values in [0, 1].
        val_accuracy: Validation accuracy of the random-weight network with these gates.
        nonzero_fraction: Fraction of all gates that are not exactly zero.
        epoch: Epoch the gates were kept at.
        met_ratio: Whether ``nonzero_fraction <= ratio`` (otherwise the last gates were kept).
    """

    ratio: float
    seed: int
    gates: Mapping[str, tuple[float, ...]]
    val_accuracy: float
    nonzero_fraction: float
    epoch: int
    met_ratio: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio, "seed": self.seed, "val_accuracy": self.val_accuracy,
            "nonzero_fraction": self.nonzero_fraction, "epoch": self.epoch, "met_ratio": self.met_ratio,
            "gates": {k: list(v) for k, v in self.gates.items()},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "GateRun":
        return cls(
            ratio=float(obj["ratio"]), seed=int(obj["seed"]),
            gates={str(k): tuple(float(x) for x in v) for k, v in obj["gates"].items()},
            val_accuracy=float(obj["val_accuracy"]), nonzero_fraction=float(obj["nonzero_fraction"]),
            epoch=int(obj["epoch"]), met_ratio=bool(obj["met_ratio"]),
        )

    def kept_widths(self) -> dict[str, int]:
        """Channels each gene keeps when the top ``ratio`` of all gates (non-zero ones only) are kept.

        This is the paper's global pruning rule applied at the run's own target ratio; every gene
        keeps at least one channel.
        """
        flat = sorted(((v, gene, i) for gene, vals in self.gates.items() for i, v in enumerate(vals)),
                      key=lambda t: -t[0])
        k = math.ceil(self.ratio * len(flat))
        kept = {gene: 0 for gene in self.gates}
        for v, gene, _ in flat[:k]:
            if v > 0:
                kept[gene] += 1
        return {gene: max(1, n) for gene, n in kept.items()}


@dataclass(frozen=True)
class Gates:
    """Gates learned from random weights for every searchable gene of one space.

    Build with :func:`~nas_prune.gates.learn_gates`; persist with :meth:`save` / :meth:`load`.

    Attributes:
        space_id: Id of the space the gates belong to.
        widths: ``{gene: width}`` of every gated gene.
        runs: One :class:`GateRun` per (ratio, seed).
        settings: How the gates were learned (gamma, lr, epochs, batch size, data).
    """

    space_id: str
    widths: Mapping[str, int]
    runs: tuple[GateRun, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def ratios(self) -> list[float]:
        return sorted({r.ratio for r in self.runs})

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})

    @property
    def values(self) -> dict[float, dict[str, list[float]]]:
        """``{ratio: {gene: gates}}``, averaged over seeds."""
        out: dict[float, dict[str, list[float]]] = {}
        for ratio in self.ratios:
            runs = [r for r in self.runs if r.ratio == ratio]
            out[ratio] = {g: [sum(r.gates[g][i] for r in runs) / len(runs) for i in range(w)]
                          for g, w in self.widths.items()}
        return out

    def scores(self, ratio: float | None = None) -> dict[str, list[float]]:
        """Channel importance per gene: the gate averaged over runs (of one ``ratio`` if given)."""
        runs = [r for r in self.runs if ratio is None or math.isclose(r.ratio, ratio)]
        if not runs:
            raise ValueError(f"no gates learned at ratio {ratio}: use one of {self.ratios}")
        return {g: [sum(r.gates[g][i] for r in runs) / len(runs) for i in range(w)] for g, w in self.widths.items()}

    def order(self, gene: str | None = None, *, ratio: float | None = None) -> dict[str, list[int]]:
        """Channel indices per gene, most important (largest mean gate) first.

        Pass the result as ``importance`` to :func:`nas_prune.space.materialize`.
        """
        scores = self.scores(ratio)
        names = [gene] if gene is not None else list(scores)
        return {g: sorted(range(len(scores[g])), key=lambda i: (-scores[g][i], i)) for g in names}

    @property
    def prior(self) -> dict[str, tuple[float, float]]:
        """``{gene: (mean, std)}`` of the kept width (channels) across ratios and seeds."""
        kept = [r.kept_widths() for r in self.runs]
        out = {}
        for g in self.widths:
            xs = [k[g] for k in kept]
            mean = sum(xs) / len(xs)
            out[g] = (mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs)))
        return out

    # ------------------------------------------------------------------ use
    def check_space(self, space: "ChannelSpace") -> None:
        """Raise :class:`SpaceMismatchError` unless the gates were learned on ``space``."""
        if space.id != self.space_id:
            raise SpaceMismatchError(
                f"gates are for space {self.space_id!r}, not {space.id!r}: learn gates for this space (nas-prune gates)"
            )

    def prune(self, space: "ChannelSpace", budget: "Budget | str", *, ratio: float | None = None) -> "Architecture":
        """The architecture whose globally top gates fit ``budget`` (binary search; see :func:`prune`)."""
        from nas_prune.gates._budget import Budget, prune

        return prune(self, space, Budget.parse(budget) if isinstance(budget, str) else budget, ratio=ratio)

    def nni_search_space(self, space: "ChannelSpace", kind: str = "qnormal") -> dict[str, Any]:
        """NNI search space shaped by the prior (see :func:`nas_prune.gates.nni_prior_space`)."""
        from nas_prune.gates._priors import nni_prior_space

        return nni_prior_space(self, space, kind=kind)

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "format": GATES_FORMAT,
            "version": GATES_VERSION,
            "space": self.space_id,
            "widths": dict(self.widths),
            "settings": dict(self.settings),
            "order": self.order(),
            "prior": {g: {"mean": m, "std": s} for g, (m, s) in self.prior.items()},
            "runs": [r.to_json() for r in self.runs],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Gates":
        """Load and validate a gates file (one-line :class:`InvalidFileError` if it is not one)."""
        return cls.from_json(read_json(path, what="gates file"), source=str(path))

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "<gates>") -> "Gates":
        what = "gates file"
        require_header(obj, source, what, fmt=GATES_FORMAT, version=GATES_VERSION)
        try:
            widths = {str(k): int(v) for k, v in obj["widths"].items()}
            runs = tuple(GateRun.from_json(r) for r in obj["runs"])
            gates = cls(str(obj["space"]), widths, runs, dict(obj.get("settings") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidFileError(
                f"gates file {source} is invalid ({describe_error(exc)}): regenerate it with 'nas-prune gates'"
            ) from None
        require(len(runs) > 0 and len(widths) > 0, source, what, "no runs or no genes")
        for r in runs:
            require(0 < r.ratio <= 1, source, what, f"ratio {r.ratio} is outside (0, 1]")
            require(set(r.gates) == set(widths), source, what, f"run (ratio {r.ratio}, seed {r.seed}) names other genes")
            for g, vals in r.gates.items():
                require(len(vals) == widths[g] and all(math.isfinite(v) and 0 <= v <= 1 for v in vals),
                        source, what, f"gene {g!r} needs {widths[g]} gate values in [0, 1]")
        return gates
