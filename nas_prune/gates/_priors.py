"""Search priors from gates: per-gene width distributions for NNI and Optuna.

The kept width of each gene across target ratios and seeds (Pruning from Scratch, Wang et al.,
AAAI 2020, arXiv 1909.12579) becomes a normal prior ``(mean, sigma)`` in channels; the spread is at
least one grid step, so the prior never collapses to a single width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from nas_prune.errors import NasPruneError
from nas_prune.space import Architecture, ChannelSpace, Gene

if TYPE_CHECKING:
    from nas_prune.gates._gates import Gates

__all__ = ["gene_prior", "nni_prior_space", "decode_prior_params"]


def gene_prior(gates: "Gates", gene: Gene) -> tuple[float, float]:
    """``(mean, sigma)`` in channels of one gene: mean clipped to the gene's range, sigma >= step.

    A gene the gates do not cover gets a flat-ish prior (middle of its range, half its span).
    """
    prior = gates.prior.get(gene.name)
    if prior is None:
        return (gene.low + gene.high) / 2, max(float(gene.step), (gene.high - gene.low) / 2)
    mean, std = prior
    return min(max(mean, gene.low), gene.high), max(std, float(gene.step))


def nni_prior_space(gates: "Gates", space: ChannelSpace, *, kind: str = "qnormal") -> dict[str, Any]:
    """NNI search space whose genes follow the gate prior.

    Args:
        gates: Gates learned on ``space``.
        space: The space.
        kind: ``"qnormal"``: ``[mean, sigma, step]`` per gene (NNI's TPE uses it as the prior; draws
            outside the gene's range are clipped by :func:`decode_prior_params`); ``"quniform"``:
            ``[low, high, step]`` narrowed to ``mean +- 2 sigma`` on the gene's grid, clipped to the
            gene's range (every draw decodes with ``space.decode``).

    Raises:
        NasPruneError: unknown ``kind``. SpaceMismatchError: the gates belong to another space.
    """
    gates.check_space(space)
    out: dict[str, Any] = {}
    for g in space.searchable_genes:
        mean, sigma = gene_prior(gates, g)
        if kind == "qnormal":
            out[g.name] = {"_type": "qnormal", "_value": [round(mean, 3), round(sigma, 3), g.step]}
        elif kind == "quniform":
            lo = g.low + g.step * max(0, int((mean - 2 * sigma - g.low) // g.step))
            hi = g.low + g.step * -int(-(mean + 2 * sigma - g.low) // g.step)
            lo, hi = max(g.low, lo), min(g.high, hi)
            if hi <= lo:  # keep a range of at least one step
                lo, hi = (lo - g.step, lo) if lo > g.low else (lo, lo + g.step)
            out[g.name] = {"_type": "quniform", "_value": [lo, hi, g.step]}
        else:
            raise NasPruneError(f"unknown prior kind {kind!r}: use qnormal or quniform")
    return out


def decode_prior_params(space: ChannelSpace, params: Mapping[str, Any]) -> Architecture:
    """``space.decode`` after clipping every gene's value into the gene's range.

    NNI's ``qnormal`` is unbounded; trial code using a ``qnormal`` prior space decodes with this.
    """
    clipped = dict(params)
    for g in space.searchable_genes:
        v = clipped.get(g.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            clipped[g.name] = min(max(v, g.low), g.high)
    return space.decode(clipped)
