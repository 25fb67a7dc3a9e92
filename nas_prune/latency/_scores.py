"""How close predicted relative latencies are to measured ones: the figures every fit and check reports."""

from __future__ import annotations

import numpy as np

__all__ = ["scores"]


def scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Share within +-5 % / +-10 %, median and 95th-percentile relative error of ``pred`` against ``y``."""
    err = np.abs(np.asarray(pred, float) - y) / y
    return {"within_5pct": float(np.mean(err <= 0.05)), "within_10pct": float(np.mean(err <= 0.10)),
            "median_abs_err": float(np.median(err)), "p95_abs_err": float(np.percentile(err, 95)), "n": int(len(y))}
