"""A kernel residual on top of the additive latency model: what a sum over layers cannot hold.

The additive model (:mod:`nas_prune.latency._fit`) prices every layer alone. On the 2-vCPU Xeon VM
its training error on 300 measured mobilenet_v2-32 networks stayed at 3.4-3.9 % at one thread
against 1.2 % measurement noise, whatever per-layer term was added (a layout indicator, squares,
square roots, a monotone warp of the sum): the rest of the error depends on *combinations* of
widths -- fused operators, memory traffic between neighbouring layers, caches -- which kernel-level
predictors model by detecting fused kernels (nn-Meter, Zhang et al., MobiSys 2021) and learned
predictors by a regressor over the whole encoding (BRP-NAS, Dudziak et al., NeurIPS 2020; HELP,
Lee et al., NeurIPS 2021).

Here the additive model stays the prior and a kernel ridge regression with an RBF kernel fits the
log-ratio of measured to predicted latency over ``x = (width share of every gene, log of the
additive prediction)``::

    rel(arch) = additive(arch) * exp(clip(sum_i w_i * exp(-gamma * |x(arch) - x_i|^2)))

Far from the measured networks the kernel vanishes and the additive model predicts alone; the
correction is clipped to +-:data:`CLIP` in log space. The kernel width and ridge are chosen by
cross-validation, and the residual is kept only when it clearly beats the additive model alone on
networks it was not fitted on (:func:`fit_residual`). A prediction costs ~10 microseconds more.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nas_prune.latency._scores import scores

__all__ = ["KernelResidual", "fit_residual", "MIN_NETS", "CLIP", "GAMMAS", "ALPHAS"]

#: Fewer measured networks than this and no residual is tried (a kernel on a few points only overfits).
MIN_NETS = 40
#: Largest correction, in log space (exp(0.2) = 1.22x).
CLIP = 0.2
GAMMAS = (0.03, 0.1, 0.3, 1.0, 3.0)
ALPHAS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: The residual is kept when it cuts the cross-validated median error by at least this share ...
GAIN = 0.10
#: ... and by at least this much in absolute terms (0.2 % of latency: below, it is measurement noise).
MIN_GAIN = 0.002


class KernelResidual:
    """A fitted residual: ``factor(channels, base)`` multiplies the additive prediction ``base``.

    Args:
        genes: ``{gene: full width}``, in the order of the features.
        gamma: RBF kernel width (features are shares in [0, 1] and a log-latency).
        centers: The measured networks' features (``n x (len(genes) + 1)``).
        weights: Kernel ridge weights (``n``).
        clip: Largest correction in log space.
    """

    def __init__(self, genes: Mapping[str, int], gamma: float, centers: np.ndarray, weights: np.ndarray,
                 clip: float = CLIP, info: Mapping[str, Any] | None = None) -> None:
        self.genes = {str(g): int(w) for g, w in genes.items()}
        self._names = tuple(self.genes)
        self._inv = np.array([1.0 / max(1, w) for w in self.genes.values()] + [1.0])
        self.gamma, self.clip = float(gamma), float(clip)
        self.centers = np.asarray(centers, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        # exp(-gamma |x - c|^2) = exp(x . (2 gamma c) - gamma |c|^2 - gamma |x|^2)
        self._ct2 = np.ascontiguousarray((2.0 * self.gamma) * self.centers.T)
        self._gsq = self.gamma * np.einsum("ij,ij->i", self.centers, self.centers)
        self.info = dict(info or {})

    @classmethod
    def fit(cls, genes: Mapping[str, int], archs: Sequence[Mapping[str, int]], rel: np.ndarray, base: np.ndarray,
            gamma: float, alpha: float, info: Mapping[str, Any] | None = None) -> "KernelResidual":
        """Kernel ridge regression of ``log(rel / base)`` on the networks ``archs`` (one kernel width and ridge)."""
        X = _features(genes, archs, base)
        w = _ridge(_kernel(X, X, gamma), np.log(np.asarray(rel, float) / base), alpha)
        return cls(genes, gamma, X, w, info={"alpha": alpha, **dict(info or {})})

    def log_factor(self, x: np.ndarray) -> np.ndarray:
        """The clipped log-correction of feature rows ``x`` (or one row)."""
        x = np.atleast_2d(x)
        k = np.exp(x @ self._ct2 - self._gsq - self.gamma * np.einsum("ij,ij->i", x, x)[:, None])
        return np.clip(k @ self.weights, -self.clip, self.clip)

    def factor(self, channels: Mapping[str, int], base: float) -> float:
        """The correction of an architecture whose additive prediction is ``base`` (one row, no array overhead)."""
        full = self.genes
        x = np.array([channels.get(g, full[g]) for g in self._names] + [math.log(base)]) * self._inv
        v = float(np.exp(x @ self._ct2 - self._gsq - self.gamma * float(x @ x)) @ self.weights)
        return math.exp(min(self.clip, max(-self.clip, v)))

    def to_json(self) -> dict[str, Any]:
        return {"kind": "rbf-kernel-ridge", "genes": self.genes, "gamma": self.gamma, "clip": self.clip,
                "centers": [[round(float(v), 6) for v in row] for row in self.centers],
                "weights": [float(v) for v in self.weights], **self.info}

    @classmethod
    def from_json(cls, obj: Any, genes: Mapping[str, Any]) -> "KernelResidual":
        """Validate a stored residual against the table's genes; raises ``ValueError`` naming the problem."""
        if not isinstance(obj, dict) or obj.get("kind") != "rbf-kernel-ridge":
            raise ValueError("model.residual must be an object of kind 'rbf-kernel-ridge'")
        g = obj.get("genes")
        if not isinstance(g, dict) or not set(g) <= set(genes) or not all(
                isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in g.values()):
            raise ValueError("model.residual.genes must map the table's genes to positive widths")
        c, w = obj.get("centers"), obj.get("weights")
        if not isinstance(c, list) or not isinstance(w, list) or len(c) != len(w) or not c:
            raise ValueError("model.residual needs as many centers as weights")
        if not all(isinstance(row, list) and len(row) == len(g) + 1 for row in c):
            raise ValueError(f"every model.residual center must hold {len(g) + 1} numbers")
        gamma, clip = obj.get("gamma"), obj.get("clip")
        if not (isinstance(gamma, (int, float)) and isinstance(clip, (int, float)) and gamma > 0 and clip > 0):
            raise ValueError("model.residual.gamma and clip must be positive numbers")
        info = {k: v for k, v in obj.items() if k not in ("kind", "genes", "gamma", "clip", "centers", "weights")}
        return cls(g, float(gamma), np.asarray(c, dtype=float), np.asarray(w, dtype=float), float(clip), info)


def _kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    d2 = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :] - 2.0 * A @ B.T
    return np.exp(-gamma * np.maximum(d2, 0.0))


def _ridge(K: np.ndarray, r: np.ndarray, alpha: float) -> np.ndarray:
    return np.linalg.solve(K + alpha * np.eye(len(K)), r)


def _features(genes: Mapping[str, int], archs: Sequence[Mapping[str, int]], base: np.ndarray) -> np.ndarray:
    names = list(genes)
    inv = np.array([1.0 / max(1, genes[g]) for g in names] + [1.0])
    return np.array([[a.get(g, genes[g]) for g in names] + [math.log(v)] for a, v in zip(archs, base)]) * inv


def fit_residual(genes: Mapping[str, int], archs: Sequence[Mapping[str, int]], rel: Sequence[float] | np.ndarray,
                 base: Callable[[np.ndarray], np.ndarray], fold: np.ndarray, *,
                 gammas: Sequence[float] = GAMMAS, alphas: Sequence[float] = ALPHAS,
                 enabled: bool = True) -> tuple[KernelResidual | None, dict[str, Any]]:
    """Fit the residual and decide by cross-validation whether the table keeps it.

    Args:
        genes: ``{gene: full width}``.
        archs: The measured networks.
        rel: Their measured latency relative to the reference.
        base: ``base(train_idx)`` fits the additive model on the networks ``train_idx`` and returns
            its prediction for every network (so the folds refit the prior as well).
        fold: The fold of every network (the same folds that chose the additive model).
        gammas: The kernel widths cross-validation chooses from.
        alphas: The ridges cross-validation chooses from.
        enabled: ``False`` fits nothing (the additive model alone, recorded as such).

    Returns:
        The residual fitted on every network (``None`` when it does not clearly beat the additive
        model alone, or when fewer than :data:`MIN_NETS` networks were measured) and the figures of
        the decision: the additive model's and the residual's cross-validated scores.
    """
    y = np.asarray(rel, dtype=float)
    if not enabled:
        return None, {"kept": False, "why": "not tried"}
    if len(y) < MIN_NETS:
        return None, {"kept": False, "why": f"{len(y)} networks (a residual needs {MIN_NETS})"}
    grid = [(g, a) for g in gammas for a in alphas]
    oof = {k: np.empty_like(y) for k in grid}
    plain = np.empty_like(y)
    for f in np.unique(fold):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        p = np.maximum(base(tr), 1e-9)
        plain[te] = p[te]
        X = _features(genes, archs, p)
        r = np.log(y[tr] / p[tr])
        for g in gammas:
            K_tr, K_te = _kernel(X[tr], X[tr], g), _kernel(X[te], X[tr], g)
            for a in alphas:
                oof[(g, a)][te] = p[te] * np.exp(np.clip(K_te @ _ridge(K_tr, r, a), -CLIP, CLIP))
    before = scores(plain, y)
    cvs = {k: scores(oof[k], y) for k in grid}
    best = min(grid, key=lambda k: (cvs[k]["median_abs_err"] - cvs[k]["within_10pct"], k))
    cv = cvs[best]
    gain = before["median_abs_err"] - cv["median_abs_err"]
    kept = bool(gain >= max(GAIN * before["median_abs_err"], MIN_GAIN) and cv["within_10pct"] >= before["within_10pct"])
    figures: dict[str, Any] = {"kept": kept, "gamma": best[0], "alpha": best[1], "cv_additive": before, "cv": cv}
    if not kept:
        return None, figures
    p = np.maximum(base(np.arange(len(y))), 1e-9)
    res = KernelResidual.fit(genes, archs, y, p, best[0], best[1], info={"nets": int(len(y)), "cv": cv, "cv_additive": before})
    figures["train"] = scores(p * np.exp(res.log_factor(res.centers)), y)
    return res, figures
