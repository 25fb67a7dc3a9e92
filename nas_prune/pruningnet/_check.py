"""Did the PruningNet learn to rank? Its scores at uniform widths must grow with the width.

Scaling every layer by one factor can only add capacity, so a PruningNet that scores the full
network below a half-width one ranks wide candidates with untrained channels (measured with the
per-gene uniform draws of earlier releases: 28 / 38 / 38 / 31 % at widths 0.25 / 0.5 / 0.75 / 1.0).
The run records this check and says so loudly when it fails.
"""

from __future__ import annotations

from typing import Any, Sequence

from nas_prune.pruningnet._evaluator import PruningNetEvaluator
from nas_prune.space import ChannelSpace, scaled

__all__ = ["CHECK_WIDTHS", "uniform_width_check"]

#: Uniform widths scored by :func:`uniform_width_check`.
CHECK_WIDTHS = (0.25, 0.5, 0.75, 1.0)


def uniform_width_check(evaluator: PruningNetEvaluator, space: ChannelSpace,
                        widths: Sequence[float] = CHECK_WIDTHS) -> dict[str, Any]:
    """Score uniform widths; ``ordered`` is whether each wider one scores at least the narrower's
    score minus its noise (the score's standard error).

    Returns:
        ``{"widths": [...], "scores": [...], "accuracies": [...], "ordered": bool}``.
    """
    scores, accs, ses = [], [], []
    for w in widths:
        res = evaluator.score(scaled(space, w))
        scores.append(float(res.get("score", res["accuracy"])))
        accs.append(float(res["accuracy"]))
        ses.append(float(res.get("score_se", 0.0)))
    ordered = all(b >= a - max(sa, sb) for a, b, sa, sb in zip(scores, scores[1:], ses, ses[1:]))
    return {"widths": list(widths), "scores": scores, "accuracies": accs, "ordered": bool(ordered)}
