"""Few-shot adaptation of a latency table to another machine: corrections fitted on a few networks.

A table fitted on one machine predicts ``rel(arch) = c0 + sum_j c_j f_j(arch)`` (per-layer MACs and
activation terms, :mod:`nas_prune.latency._fit`). On another machine of the same kind (or the same
machine under another onnxruntime) the *shape* of that model mostly survives while the balance
between kinds of operators moves: depthwise convolutions, dense convolutions and per-call overheads
do not scale alike. Following the few-shot transfer of HELP (Lee et al., NeurIPS 2021: adapt a
predictor to a new device from ~10 measurements) and LitePred (Feng et al., NSDI 2024: adapt a
per-kernel predictor with a little data of the new platform), the table's own model is the prior and
a few dozen networks measured here fit a correction of growing freedom:

* ``scale``: ``a * rel`` (one number; the reference network stays 1.0),
* ``affine``: ``a * rel + b`` (cannot reorder networks),
* ``groups``: one scale per kind of term (depthwise / 1x1 / kxk convolution / linear, MACs or
  activations, and the intercept), ridge-shrunk towards 1 -- low-dimensional, and able to reorder,
* ``layers``: every per-layer coefficient refitted, ridge-shrunk towards the ``groups`` solution.

Every candidate is scored by K-fold cross-validation on the measured networks and the best is kept;
all are additive models of the table's own form. On top of the chosen one, a kernel residual over
the whole architecture (:mod:`nas_prune.latency._residual`) is fitted and kept when it clearly
cross-validates better: it carries what the machine does to combinations of layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from nas_prune.errors import NasPruneError
from nas_prune.latency._residual import fit_residual
from nas_prune.latency._scores import scores
from nas_prune.latency._structure import BASE_TERMS, LayerCosts

__all__ = ["Correction", "fit_correction", "term_groups"]

GROUP_RIDGES = (0.0, 1e-3, 1e-2, 1e-1)
LAYER_RIDGES = (1e-3, 1e-2, 1e-1)


def term_groups(structure: Mapping[str, Any], terms: Sequence[str] = BASE_TERMS) -> list[str]:
    """The kind of every per-layer term (``len(terms) * n_layers`` labels, in the order of the coefficients)."""
    labels = []
    for layer in structure["layers"]:
        if layer["kind"] == "linear":
            kind = "linear"
        elif layer.get("depthwise"):
            kind = "depthwise"
        elif int(layer.get("kernel", 1)) == 1:
            kind = "conv1x1"
        else:
            kind = "convkxk"
        labels += [f"{kind}:{t}" for t in terms]
    return labels


@dataclass
class Correction:
    """A fitted correction: the new additive model and how it scored."""

    method: str
    ridge: float | None
    coef: list[float]
    intercept: float
    cv: dict[str, float]
    before: dict[str, float]
    train: dict[str, float]
    group_scales: dict[str, float] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    #: The kernel residual's JSON (``model["residual"]``), or ``None`` when the additive model is kept alone.
    residual: dict[str, Any] | None = None
    #: How the residual was decided: its and the additive model's cross-validated scores.
    residual_fit: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "ridge": self.ridge, "cv": self.cv, "before": self.before,
                "train": self.train, "group_scales": self.group_scales, "candidates": self.candidates,
                "residual": self.residual_fit}


def _nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(A, b, maxiter=50 * A.shape[1])[0]


class _Problem:
    """The measured networks under the table's prior model, and the candidate fits on any subset."""

    def __init__(self, structure: Mapping[str, Any], block: int, coef: Sequence[float], intercept: float,
                 archs: Sequence[Mapping[str, int]], y: np.ndarray, terms: Sequence[str] = BASE_TERMS) -> None:
        self.F = LayerCosts(structure, block, terms).matrix(archs)
        self.c = np.asarray(coef, dtype=float)
        self.c0 = float(intercept)
        self.y = y
        labels = term_groups(structure, terms)
        self.names = sorted(set(labels)) + ["intercept"]
        self.member = np.array([self.names.index(l) for l in labels])
        self.prior = self.F @ self.c + self.c0

    def group_matrix(self, idx: np.ndarray) -> np.ndarray:
        contrib = self.F[idx] * self.c
        G = np.zeros((len(idx), len(self.names)))
        for k in range(len(self.names) - 1):
            G[:, k] = contrib[:, self.member == k].sum(axis=1)
        G[:, -1] = self.c0
        return G

    def fit(self, method: str, lam: float | None, idx: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
        """Coefficients, intercept (and group scales) fitted on the networks ``idx``."""
        y, w = self.y[idx], 1.0 / self.y[idx]
        p = self.prior[idx]
        if method == "none":
            return self.c, self.c0, None
        if method == "scale":
            a = float(np.sum(w * w * p * y) / np.sum(w * w * p * p))
            return a * self.c, a * self.c0, None
        if method == "affine":
            A = np.stack([p, np.ones_like(p)], axis=1) * w[:, None]
            (a, b), *_ = np.linalg.lstsq(A, y * w, rcond=None)
            a = max(float(a), 1e-6)
            return a * self.c, a * self.c0 + float(b), None
        G = self.group_matrix(idx)
        used = np.abs(G).sum(axis=0) > 0
        k = int(used.sum())
        reg = np.sqrt(float(lam or 0.0) * len(idx))
        A = np.vstack([G[:, used] * w[:, None], reg * np.eye(k)])
        s = np.ones(len(self.names))
        s[used] = _nnls(A, np.concatenate([y * w, reg * np.ones(k)]))
        coef, c0 = self.c * s[self.member], self.c0 * s[-1]
        if method == "groups":
            return coef, c0, s
        # layers: every term and the intercept, shrunk towards the groups solution (its own ridge)
        X = np.hstack([self.F[idx], np.ones((len(idx), 1))])
        prior = np.concatenate([coef, [c0]])
        # the same shrinkage for every term (features are shares of the full network's cost), so a
        # term the table fitted at zero may grow here: a relative one would pin it at zero
        reg = np.full(len(prior), np.sqrt(float(lam or 0.0) * len(idx)))
        A = np.vstack([X * w[:, None], np.diag(reg)])
        x = _nnls(A, np.concatenate([y * w, reg * prior]))
        return x[:-1], float(x[-1]), s


def fit_correction(structure: Mapping[str, Any], model: Mapping[str, Any], archs: Sequence[Mapping[str, int]],
                   rel: Sequence[float], *, folds: int = 5, seed: int = 0,
                   methods: Sequence[str] = ("none", "scale", "affine", "groups", "layers"),
                   residual_allowed: bool = True) -> Correction:
    """Fit the corrections to measured relative latencies; keep the one that cross-validates best.

    Args:
        structure: The table's structure (``LatencyTable.structure``).
        model: The table's fitted model (``coef``, ``intercept``, ``block``).
        archs: ``{gene: count}`` of the measured networks.
        rel: Their latency relative to the table's reference network, measured here in the same rounds.
        folds: Cross-validation folds.
        seed: Seed of the fold assignment.
        methods: Candidates to consider.
        residual_allowed: Try a kernel residual on top of the chosen correction
            (:func:`nas_prune.latency._residual.fit_residual`).

    Raises:
        NasPruneError: fewer than 6 networks, or a non-positive measurement.
    """
    y = np.asarray(rel, dtype=float)
    if len(y) < 6:
        raise NasPruneError(f"only {len(y)} networks measured: adapting a table needs at least 6")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise NasPruneError("a measured relative latency is not a positive number: measure again")
    prob = _Problem(structure, int(model["block"]), model["coef"], float(model["intercept"]), archs, y,
                    tuple(model.get("terms", BASE_TERMS)))
    fold = np.random.default_rng(seed).permutation(len(y)) % max(2, min(folds, len(y)))
    grid: list[tuple[str, float | None]] = []
    for m in methods:
        grid += [(m, lam) for lam in (GROUP_RIDGES if m == "groups" else LAYER_RIDGES if m == "layers" else (None,))]
    results = []
    for order, (m, lam) in enumerate(grid):
        pred = np.empty_like(y)
        for f in np.unique(fold):
            tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            coef, c0, _ = prob.fit(m, lam, tr)
            pred[te] = prob.F[te] @ coef + c0
        sc = scores(pred, y)
        # lower median error and more within 10 %; ties go to the simpler correction (grid order)
        results.append(((round(sc["median_abs_err"] - sc["within_10pct"], 4), order), m, lam, sc))
    results.sort(key=lambda r: r[0])
    _, method, lam, cv = results[0]
    all_idx = np.arange(len(y))
    coef, c0, s = prob.fit(method, lam, all_idx)
    train = scores(prob.F @ coef + c0, y)

    def base(tr: np.ndarray) -> np.ndarray:
        c, i, _ = prob.fit(method, lam, tr)
        return prob.F @ c + i

    genes = {g: int(ch[-1]) for g, ch in structure["genes"].items()}
    residual, how = fit_residual(genes, archs, y, base, fold, enabled=residual_allowed)
    if residual is not None:
        cv, train = how["cv"], how["train"]
    return Correction(
        method=method, ridge=lam, coef=[float(v) for v in coef], intercept=float(c0), cv=cv,
        before=scores(prob.prior, y), train=train,
        group_scales={n: float(v) for n, v in zip(prob.names, s)} if s is not None else {},
        candidates=[{"method": m, "ridge": l, **{k: sc[k] for k in ("within_10pct", "median_abs_err")}}
                    for _, m, l, sc in results],
        residual=residual.to_json() if residual is not None else None, residual_fit=how,
    )
