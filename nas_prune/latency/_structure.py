"""The cost structure of a space: which genes set the channels of every conv and linear layer.

A table carries this compact structure so it predicts from ``{gene: count}`` alone, without the
space file or torch. Channel arithmetic mirrors :meth:`nas_prune.space.ChannelSpace.layer_channels`.

Staircases (REFERENCE.md section 4): onnxruntime's CPU convolutions work on channel blocks (NCHWc,
16 channels with AVX-512, 8 with AVX2), so a layer's cost steps at multiples of the block. Features
round channel counts *up* to the block: two counts in the same block cost the same and no smooth
curve is drawn across a step. The block is chosen per table by cross-validation on the measured
networks (:mod:`nas_prune.latency._fit`).

Misalignment: a layer whose output channels are not a multiple of the block cannot stay in the
blocked layout, and onnxruntime pays a layout reorder around it whatever its size. The optional
``misaligned`` term (1 for such a layer, 0 otherwise) carries that cost: on the 224x224
mobilenet_v2 table, where the 112x112 block-1 output has 8 or 16 channels, it cut the
cross-validated median error from 2.40 to 1.56 % (``nas-prune latency refit``) and raised the
held-out Spearman from 0.949-0.973 to 0.984-0.991 on the same measured networks
(``benchmarks/results/latency_validate_224_mobilenet_v2_1thread_refit_seed*.json``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["structure_from_space", "LayerCosts", "FEATURES_PER_LAYER", "TERMS", "BASE_TERMS"]

#: Cost terms per layer that scale with channels: padded multiply-accumulates and padded output
#: activations (the ``misaligned`` indicator is one more, but only layers that can misalign use it).
FEATURES_PER_LAYER = 2
#: The terms a table's model may use, per layer and in this order.
TERMS = ("macs", "act", "misaligned")
#: The terms of tables fitted before ``misaligned`` existed (a model without a ``terms`` field).
BASE_TERMS = ("macs", "act")


def structure_from_space(space: Any) -> dict[str, Any]:
    """Compact JSON structure of a :class:`~nas_prune.space.ChannelSpace` (conv and linear layers)."""
    in_terms: dict[str, list[list[Any]]] = {}
    out_terms: dict[str, list[list[Any]]] = {}
    for g in space.genes:
        for layer, dim, n in g.members:
            (out_terms if dim == "out" else in_terms).setdefault(layer, []).append([g.name, int(n), int(g.width)])
    layers = []
    for name, info in space.layers.items():
        if info.kind not in ("conv", "linear"):
            continue
        layers.append({
            "name": name, "kind": info.kind, "in_ch": int(info.in_ch), "out_ch": int(info.out_ch),
            "groups": int(info.groups), "kernel": int(info.kernel), "positions": int(info.positions),
            "depthwise": bool(info.depthwise), "in": in_terms.get(name, []), "out": out_terms.get(name, []),
        })
    return {"genes": {g.name: list(g.choices) for g in space.genes}, "layers": layers}


def _pad(c: int, block: int) -> int:
    return -(-c // block) * block


class LayerCosts:
    """Per-layer cost features of architectures under one structure and one channel block.

    ``features(channels)`` returns ``len(terms) * n_layers`` numbers: for each layer its padded
    MACs, padded output activations and (with ``misaligned`` in ``terms``) whether its output
    channels miss the block, each divided by the unpruned network's value where that is not zero
    (so the full network's cost features are all ones and fitted coefficients are shares of the
    reference latency).
    """

    def __init__(self, structure: Mapping[str, Any], block: int, terms: Sequence[str] = BASE_TERMS) -> None:
        if tuple(terms) not in (BASE_TERMS, TERMS):
            raise ValueError(f"latency model terms must be {list(BASE_TERMS)} or {list(TERMS)}, not {list(terms)}")
        self.block = int(block)
        self.terms = tuple(terms)
        self.genes = {str(k): tuple(int(c) for c in v) for k, v in structure["genes"].items()}
        self.full = {k: v[-1] for k, v in self.genes.items()}
        self.layers = list(structure["layers"])
        self.names = [f"{l['name']}:{t}" for l in self.layers for t in self.terms]
        self._compiled = []
        for l in self.layers:
            outs = tuple((g, n, w) for g, n, w in l["out"])
            ins = tuple((g, n, w) for g, n, w in l["in"])
            dw = bool(l["depthwise"])
            groups = 1 if dw else max(1, int(l["groups"]))
            scale = l["kernel"] * l["positions"]
            self._compiled.append((int(l["in_ch"]), int(l["out_ch"]), ins, outs, dw, groups, scale, int(l["positions"])))
        self._norm = np.ones(len(self.names))
        self._norm = self.raw(self.full)
        self._norm[self._norm == 0] = 1.0

    def channels_of(self, channels: Mapping[str, int]) -> list[tuple[int, int]]:
        """``(in, out)`` channels of every layer (genes left out keep their full width)."""
        full = self.full
        res = []
        for in_ch, out_ch, ins, outs, dw, _groups, _scale, _pos in self._compiled:
            o = out_ch
            for g, n, w in outs:
                c = channels.get(g, full[g])
                if c != w:
                    o -= n - n * c // w
            if dw:
                i = o
            else:
                i = in_ch
                for g, n, w in ins:
                    c = channels.get(g, full[g])
                    if c != w:
                        i -= n - n * c // w
            res.append((i, o))
        return res

    def raw(self, channels: Mapping[str, int]) -> np.ndarray:
        b = self.block
        misaligned = "misaligned" in self.terms
        vals = []
        for (i, o), (_in, _out, _ins, _outs, dw, groups, scale, pos) in zip(self.channels_of(channels), self._compiled):
            po = _pad(o, b)
            if dw:
                macs = po * scale
            else:
                macs = _pad(i, b) * po * scale / groups
            vals.append(macs)
            vals.append(po * pos)
            if misaligned:
                vals.append(float(po != o))
        return np.asarray(vals, dtype=float)

    def features(self, channels: Mapping[str, int]) -> np.ndarray:
        return self.raw(channels) / self._norm

    def matrix(self, archs: Sequence[Mapping[str, int]]) -> np.ndarray:
        return np.stack([self.features(a) for a in archs]) if archs else np.zeros((0, len(self.names)))

    def predictor(self, coef: Sequence[float], intercept: float) -> "_FastPredictor":
        return _FastPredictor(self, np.asarray(coef, dtype=float), float(intercept))


_PREFILL_LIMIT = 8192


class _FastPredictor:
    """``intercept + coef . features(channels)``, memoised per group of layers that share genes.

    Layers are grouped by the genes that set their channels; a group's cost depends on those
    genes' counts only, so it is computed once per distinct tuple of counts and then looked up.
    A prediction is ~30 dictionary look-ups (a few microseconds).
    """

    def __init__(self, costs: LayerCosts, coef: np.ndarray, intercept: float) -> None:
        from operator import itemgetter

        self.full = dict(costs.full)
        self.intercept = float(intercept)
        self.block = costs.block
        groups: dict[tuple[str, ...], list[tuple]] = {}
        k = len(costs.terms)
        for j, (in_ch, out_ch, ins, outs, dw, groups_, scale, pos) in enumerate(costs._compiled):
            a = float(coef[k * j]) / costs._norm[k * j]
            c = float(coef[k * j + 1]) / costs._norm[k * j + 1]
            m = float(coef[k * j + 2]) / costs._norm[k * j + 2] if "misaligned" in costs.terms else 0.0
            if a == 0.0 and c == 0.0 and m == 0.0:
                continue
            wm = a * scale / (1 if dw else groups_)
            genes = tuple(sorted({g for g, _, _ in outs} | (set() if dw else {g for g, _, _ in ins})))
            groups.setdefault(genes, []).append((in_ch, out_ch, ins, outs, dw, wm, c * pos, m))
        self.groups = []
        for genes, layers in groups.items():
            getter = itemgetter(*genes) if genes else (lambda ch: ())
            cache = self._prefill(genes, tuple(layers), costs.genes)
            self.groups.append((genes, getter, tuple(layers), cache))

    def _prefill(self, genes: tuple[str, ...], layers: tuple, choices: Mapping[str, tuple[int, ...]]) -> dict:
        """Every cost of a group over its genes' choices, computed at once with numpy (small grids)."""
        import itertools

        if not genes:
            return {(): float(self._group_cost(layers, self.full))}
        size = int(np.prod([len(choices[g]) for g in genes]))
        if size > _PREFILL_LIMIT:
            return {}  # filled lazily
        grids = np.meshgrid(*[np.asarray(choices[g], dtype=np.int64) for g in genes], indexing="ij")
        ch = {**self.full, **dict(zip(genes, grids))}
        values = np.broadcast_to(self._group_cost(layers, ch), grids[0].shape).ravel().tolist()
        if len(genes) == 1:
            return dict(zip(choices[genes[0]], values))
        return dict(zip(itertools.product(*[choices[g] for g in genes]), values))

    def _group_cost(self, layers: tuple, ch: Mapping[str, int]) -> float:
        b = self.block
        total = 0.0
        for in_ch, out_ch, ins, outs, dw, wm, wa, m in layers:
            o = out_ch
            for g, n, w in outs:
                o -= n - n * ch[g] // w
            po = -(-o // b) * b
            if m:
                total += m * (po != o)  # po, o may be arrays (the prefill's grids)
            if dw:
                total += (wm + wa) * po
                continue
            i = in_ch
            for g, n, w in ins:
                i -= n - n * ch[g] // w
            total += (wm * (-(-i // b) * b) + wa) * po
        return total

    def __call__(self, channels: Mapping[str, int]) -> float:
        ch = {**self.full, **channels}
        total = self.intercept
        for _genes, getter, layers, cache in self.groups:
            key = getter(ch)
            cost = cache.get(key)
            if cost is None:
                cost = cache[key] = self._group_cost(layers, ch)
            total += cost
        return total
