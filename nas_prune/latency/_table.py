"""A latency table: measured networks of one space, and the additive model fitted to them."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from nas_prune._io import describe_error, read_json, require, require_header, write_json
from nas_prune.errors import InvalidArchitectureError, InvalidFileError, NasPruneError, SpaceMismatchError
from nas_prune.latency._residual import KernelResidual
from nas_prune.latency._structure import BASE_TERMS, TERMS, LayerCosts

__all__ = ["LatencyTable", "ScaledTable", "TABLE_FORMAT", "TABLE_VERSION"]

TABLE_FORMAT = "nas-prune/latency-table"
TABLE_VERSION = 1


def _finite_numbers(obj: Any) -> bool:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return True
    if isinstance(obj, (int, float)):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite_numbers(v) for v in obj)
    return False


class LatencyTable:
    """Predicts the latency (milliseconds) of any architecture of one space on one device setting.

    The table stores every measured network (latency relative to a fixed reference network,
    timed in the same rounds: median and spread) and an additive per-layer model fitted to them
    (:mod:`nas_prune.latency._fit`), with an optional kernel residual over the whole architecture
    (``model["residual"]``, :mod:`nas_prune.latency._residual`). :meth:`predict` returns ``reference_ms * relative(arch)``;
    ``reference_ms`` defaults to the reference's latency at profiling time, and a fresh measurement
    of the reference (:meth:`measure_reference`) rescales predictions when the machine's speed has
    drifted (REFERENCE.md section 4).

    Build one with :func:`nas_prune.latency.build_table` or ``nas-prune profile``.
    """

    def __init__(self, *, space_id: str, meta: Mapping[str, Any], settings: Mapping[str, Any],
                 reference: Mapping[str, Any], structure: Mapping[str, Any], model: Mapping[str, Any],
                 entries: list[dict[str, Any]]) -> None:
        self.space_id = space_id
        self.meta = dict(meta)
        self.settings = dict(settings)
        self.reference = dict(reference)
        self.structure = structure
        self.model = dict(model)
        self.entries = entries
        self.costs = LayerCosts(structure, int(model["block"]), tuple(model.get("terms", BASE_TERMS)))
        self._additive = self.costs.predictor(model["coef"], float(model["intercept"]))
        self.residual = KernelResidual.from_json(model["residual"], structure["genes"]) if model.get("residual") else None
        self._genes = frozenset(self.costs.genes)

    def _predict(self, channels: Mapping[str, int]) -> float:
        base = self._additive(channels)
        if self.residual is None or base <= 0:
            return base
        return base * self.residual.factor(channels, base)

    def additive(self, arch: Any) -> float:
        """The additive per-layer model's relative latency alone (without the residual)."""
        return self._additive(self._channels(arch))

    # ------------------------------------------------------------------ prediction
    @property
    def reference_channels(self) -> dict[str, int] | None:
        """Channels of the reference network (``None``: the unpruned network)."""
        ch = self.reference.get("channels")
        return dict(ch) if isinstance(ch, dict) else None

    @property
    def reference_ms(self) -> float:
        """Latency of the reference network when the table was measured."""
        return float(self.reference["ms"])

    def relative(self, arch: Any) -> float:
        """Predicted latency relative to the reference network (the reference is ~1.0)."""
        return self._predict(self._channels(arch))

    def predict(self, arch: Any, *, reference_ms: float | None = None) -> float:
        """Predicted latency of ``arch`` in milliseconds.

        Args:
            arch: An :class:`~nas_prune.space.Architecture` of the table's space or ``{gene: count}``.
            reference_ms: A fresh latency of the reference network measured with the table's
                settings (:meth:`measure_reference`); defaults to the one stored at profiling time.

        Raises:
            SpaceMismatchError: the architecture belongs to another space.
            InvalidArchitectureError: it names genes the table's space does not have.
        """
        return (self.reference_ms if reference_ms is None else reference_ms) * self._predict(self._channels(arch))

    def rescaled(self, reference_ms: float | None = None, *, name: str = "cpu") -> "ScaledTable":
        """This table on another clock: ``predict(arch)`` with ``reference_ms`` instead of the profiled one.

        Time the reference now (:meth:`measure_now`) and budgets, searches and measured models share
        one clock; the view is a :class:`~nas_prune.budget.LatencyPredictor` like the table itself.

        Args:
            reference_ms: The reference network's latency on the new clock (default: the profiled one).
            name: A short name for the view (the constraint name ``nas-prune run`` gives its search).
        """
        return ScaledTable(self, self.reference_ms if reference_ms is None else reference_ms, name=name)

    def _channels(self, arch: Any) -> Mapping[str, int]:
        channels = getattr(arch, "channels", None)
        if channels is None:
            channels = arch
        else:
            if arch.space != self.space_id:
                raise SpaceMismatchError(
                    f"architecture is for space {arch.space!r}, but the latency table is for {self.space_id!r}: "
                    "use a table profiled for this space"
                )
        if not self._genes.issuperset(channels):
            unknown = sorted(set(channels) - self._genes)[:3]
            raise InvalidArchitectureError(
                f"genes {unknown} are not in the latency table's space {self.space_id}: use a table of this space"
            )
        return channels

    def check_space(self, space: Any) -> None:
        """Raise :class:`SpaceMismatchError` unless the table was profiled for ``space`` (or its id)."""
        sid = space if isinstance(space, str) else space.id
        if sid != self.space_id:
            raise SpaceMismatchError(
                f"latency table is for space {self.space_id!r}, not {sid!r}: profile a table for this space "
                "with 'nas-prune profile --space FILE'"
            )

    def measure_reference(self, space: Any, *, rounds: int = 10) -> float:
        """Time the reference network now, with the table's settings; returns its latency (ms)."""
        return self.measure_now(space, rounds=rounds)["reference"]

    def measure_now(self, space: Any, models: Mapping[str, Any] | None = None, *, rounds: int = 10) -> dict[str, float]:
        """Time the reference network and ``models`` (nn.Module, ONNX path or bytes) in the same rounds.

        Uses the table's own settings; returns milliseconds per name, ``"reference"`` included, so
        ``predict(arch, reference_ms=result["reference"])`` shares one clock with the measured models.
        """
        from nas_prune.latency._measure import arch_onnx_bytes, measure_interleaved
        from nas_prune.space import Architecture

        self.check_space(space)
        s = self.settings
        ref = Architecture(space.id, self.reference_channels) if self.reference_channels else space.full()
        stats = measure_interleaved({"reference": arch_onnx_bytes(space, ref), **dict(models or {})}, space.input_shape,
                                    threads=int(s["threads"]), rounds=rounds, runs_per_round=int(s["runs_per_round"]),
                                    warmup=int(s["warmup"]), provider=str(s["provider"]), batch=int(s["batch"]),
                                    opt_level=str(s["opt_level"]), percentile=float(s["percentile"]),
                                    provider_options=s.get("provider_options"))
        return {name: rec["round_ms"] for name, rec in stats.items()}

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "version": TABLE_VERSION, "space": self.space_id, "meta": self.meta,
                "settings": self.settings, "reference": self.reference, "model": self.model,
                "structure": self.structure, "entries": self.entries}

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "LatencyTable":
        """Load and validate a table (one-line :class:`InvalidFileError` if it is not a valid one)."""
        return cls.from_json(read_json(path, what="latency table"), source=str(path))

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "<table>") -> "LatencyTable":
        what = "latency table"
        require_header(obj, source, what, fmt=TABLE_FORMAT, version=TABLE_VERSION)
        require(_finite_numbers(obj), source, what, "it holds a non-finite or non-JSON number")
        for key, typ in (("space", str), ("meta", dict), ("settings", dict), ("reference", dict), ("model", dict),
                         ("structure", dict), ("entries", list)):
            require(isinstance(obj.get(key), typ), source, what, f"field {key!r} is missing or not a {typ.__name__}")
        model, structure = obj["model"], obj["structure"]
        require(isinstance(structure.get("layers"), list) and isinstance(structure.get("genes"), dict), source, what,
                "structure needs 'genes' and 'layers'")
        terms = model.get("terms", list(BASE_TERMS))
        require(terms in (list(BASE_TERMS), list(TERMS)), source, what,
                f"model.terms must be {list(BASE_TERMS)} or {list(TERMS)}")
        n = len(terms) * len(structure["layers"])
        require(isinstance(model.get("coef"), list) and len(model["coef"]) == n
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in model["coef"]),
                source, what, f"model.coef must be {n} numbers ({len(terms)} per layer)")
        require(isinstance(model.get("block"), int) and model["block"] >= 1, source, what, "model.block must be an integer >= 1")
        require(isinstance(model.get("intercept"), (int, float)), source, what, "model.intercept must be a number")
        ref = obj["reference"].get("ms")
        require(isinstance(ref, (int, float)) and ref > 0, source, what, "reference.ms must be a positive number")
        try:
            return cls(space_id=obj["space"], meta=obj["meta"], settings=obj["settings"], reference=obj["reference"],
                       structure=structure, model=model, entries=obj["entries"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidFileError(
                f"{what} {source} is invalid ({describe_error(exc)}): regenerate it with 'nas-prune profile'"
            ) from None


class ScaledTable:
    """A :class:`LatencyTable` whose predictions use another reference latency (:meth:`LatencyTable.rescaled`).

    Attributes:
        table: The table itself (its ``predict`` still takes an explicit ``reference_ms``).
        reference_ms: The reference network's latency on this view's clock.
        name: A short name for the view (e.g. the search constraint's).
        meta, settings, space_id: The table's.
    """

    def __init__(self, table: LatencyTable, reference_ms: float, *, name: str = "cpu") -> None:
        if not math.isfinite(reference_ms) or reference_ms <= 0:
            raise NasPruneError(f"reference latency {reference_ms!r} ms is not positive: time the reference network "
                                "with table.measure_now(space)")
        self.table, self.reference_ms, self.name = table, float(reference_ms), name
        self.meta, self.settings, self.space_id = table.meta, table.settings, table.space_id

    def predict(self, arch: Any) -> float:
        """Predicted milliseconds of ``arch`` on this view's clock."""
        return self.table.predict(arch, reference_ms=self.reference_ms)

    def relative(self, arch: Any) -> float:
        """Predicted latency relative to the reference network (clock-free)."""
        return self.table.relative(arch)

    def check_space(self, space: Any) -> None:
        self.table.check_space(space)

    def __repr__(self) -> str:
        return f"ScaledTable({self.space_id!r}, reference_ms={self.reference_ms:.4g}, name={self.name!r})"
