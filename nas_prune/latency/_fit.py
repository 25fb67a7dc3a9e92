"""Fitting the additive latency model to whole-network measurements.

Each measured network gives its latency relative to the reference network (the unpruned model,
timed in the same rounds). The model is additive over layers, in the spirit of the kernel-level
predictors of nn-Meter (Zhang et al., MobiSys 2021) and of LitePred (Feng et al., NSDI 2024), but
fitted from whole networks rather than from layers timed alone (REFERENCE.md section 4: lone
layers over-predict by 1.37-1.48x here because of layout reorders)::

    rel(arch) = c0 + sum_l a_l * macs_l(arch) + b_l * act_l(arch) [+ m_l * misaligned_l(arch)]

with every coefficient >= 0 (a network never gets faster by growing), fitted by non-negative
least squares on *relative* errors with a small ridge term, and the SIMD block of the staircase
features, the ridge strength and whether the layout term ``misaligned`` is used chosen by K-fold
cross-validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nas_prune.errors import NasPruneError
from nas_prune.latency._residual import fit_residual
from nas_prune.latency._scores import scores
from nas_prune.latency._structure import BASE_TERMS, TERMS, LayerCosts

__all__ = ["FitResult", "fit_additive", "BLOCKS", "RIDGES", "TERM_SETS"]

BLOCKS = (1, 8, 16)
RIDGES = (1e-3, 1e-2, 3e-2, 1e-1)
TERM_SETS = (BASE_TERMS, TERMS)
#: A richer term set is kept when it cuts the cross-validated median error by at least this share
#: (and keeps as many networks within +-10 %): the 224x224 mobilenet_v2 table's fell from 2.40 to
#: 1.56 % (35 %); resnet18's 224 and 1-thread 32x32 tables gained less and kept ``BASE_TERMS``.
RICHER_GAIN = 0.10
#: ... and needs at least this many measured networks per coefficient it uses.
RICHER_NETS_PER_COEF = 2
#: ... and by at least this much in absolute terms (0.2 % of latency: below, it is measurement noise).
RICHER_MIN_GAIN = 0.002


@dataclass
class FitResult:
    block: int
    ridge: float
    coef: list[float]
    intercept: float
    cv: dict[str, float]
    train: dict[str, float]
    terms: tuple[str, ...] = BASE_TERMS
    residual: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"block": self.block, "ridge": self.ridge, "terms": list(self.terms), "intercept": self.intercept,
               "coef": self.coef, "cv": self.cv, "train": self.train}
        if self.residual is not None:
            out["residual"] = self.residual
        return out


def _solve(X: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import nnls

    w = 1.0 / y  # relative errors
    A = np.hstack([X, np.ones((len(X), 1))]) * w[:, None]
    b = y * w
    k = A.shape[1]
    reg = np.sqrt(ridge * len(X)) * np.eye(k)
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    sol, _ = nnls(np.vstack([A, reg]), np.concatenate([b, np.zeros(k)]), maxiter=50 * k)
    return sol[:-1], float(sol[-1])


def fit_additive(structure: Mapping[str, Any], archs: Sequence[Mapping[str, int]], rel: Sequence[float], *,
                 blocks: Sequence[int] = BLOCKS, ridges: Sequence[float] = RIDGES,
                 term_sets: Sequence[Sequence[str]] = TERM_SETS, folds: int = 5, seed: int = 0,
                 residual: bool = True) -> FitResult:
    """Fit the additive model; choose block, ridge and terms by ``folds``-fold cross-validation.

    A richer term set must beat the simpler one by :data:`RICHER_GAIN` of median error: the
    ``misaligned`` term lets a narrower network cost more, which only a clear measurement justifies.
    With ``residual``, a kernel residual over the whole architecture is fitted on top and kept when
    it clearly cross-validates better (:func:`nas_prune.latency._residual.fit_residual`).

    Raises:
        NasPruneError: fewer than 4 measured networks, or a non-positive relative latency.
    """
    y = np.asarray(rel, dtype=float)
    if len(y) < 4:
        raise NasPruneError(f"only {len(y)} networks measured: a table needs at least 4 (raise --nets)")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise NasPruneError("a measured relative latency is not a positive number: re-measure the table")
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y)) % max(2, min(folds, len(y)))
    best: dict[tuple[str, ...], tuple] = {}
    mats = {(b, tuple(t)): LayerCosts(structure, b, t).matrix(archs) for b in blocks for t in term_sets}
    for (b, terms), X in mats.items():
        if len(terms) > len(BASE_TERMS):
            if not X[:, len(BASE_TERMS)::len(terms)].any():
                continue  # no layer ever misaligns at this block: the same model as without the term
            if len(y) < RICHER_NETS_PER_COEF * int(X.any(axis=0).sum()):
                continue  # too few networks to tell a layout cost from noise
        for lam in ridges:
            pred = np.empty_like(y)
            for f in np.unique(fold):
                tr, te = fold != f, fold == f
                coef, c0 = _solve(X[tr], y[tr], lam)
                pred[te] = X[te] @ coef + c0
            sc = scores(pred, y)
            key = (sc["median_abs_err"] - sc["within_10pct"], b, lam)
            if terms not in best or key < best[terms][0]:
                best[terms] = (key, b, lam, terms, sc)
    # the simplest term set, unless a richer one is clearly better in cross-validation
    order = sorted(best, key=len)
    choice = best[order[0]]
    for terms in order[1:]:
        sc, ref = best[terms][4], choice[4]
        gain = ref["median_abs_err"] - sc["median_abs_err"]
        if gain >= max(RICHER_GAIN * ref["median_abs_err"], RICHER_MIN_GAIN) and sc["within_10pct"] >= ref["within_10pct"]:
            choice = best[terms]
    _, b, lam, terms, cv = choice
    X = mats[(b, terms)]
    coef, c0 = _solve(X, y, lam)
    train = scores(X @ coef + c0, y)

    def base(tr: np.ndarray) -> np.ndarray:
        c, i = _solve(X[tr], y[tr], lam)
        return X @ c + i

    res, how = fit_residual({g: int(ch[-1]) for g, ch in structure["genes"].items()}, archs, y, base, fold,
                            enabled=residual)
    if res is not None:
        cv, train = how["cv"], how["train"]
    return FitResult(block=b, ridge=lam, coef=[float(c) for c in coef], intercept=c0, cv=cv, train=train,
                     terms=terms, residual=res.to_json() if res is not None else None)
