"""Drawing architectures by size: a target cost first, then a random shape near it.

Drawing every gene uniformly and independently concentrates the drawn networks around the middle
of the space's size range (for mobilenet_v3_small at 32 px, FLOPs ratios with 5/50/95 % quantiles
0.25 / 0.36 / 0.52 and none above 0.67), so wide networks are almost never drawn. AttentiveNAS
(Wang et al., CVPR 2021, arXiv 2011.09011) draws a size target first, uniformly over the range,
then an architecture near it; every size is then drawn as often. :func:`draw_near` is that second
step for any cost (FLOPs, a latency table's prediction): a random shape (per-gene log-normal
offsets around one base ratio) is scaled by bisection on the base ratio until its cost is nearest
the target.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Mapping

from nas_prune.space._arch import Architecture
from nas_prune.space._space import ChannelSpace

__all__ = ["Cost", "draw_near", "scaled", "scaled_to", "smallest", "flops_cost"]

#: ``arch -> cost``, non-decreasing in every gene's width (FLOPs, params, predicted latency).
Cost = Callable[[Architecture], float]


def smallest(space: ChannelSpace) -> Architecture:
    """Every searchable gene at its narrowest choice (the other genes at full width)."""
    return Architecture(space.id, {g.name: g.choices[0] if g.searchable else g.width for g in space.genes})


def scaled(space: ChannelSpace, base: float, offsets: Mapping[str, float] | None = None) -> Architecture:
    """Every searchable gene at the choice nearest ``base * offsets[gene]`` of its width (clipped to 1)."""
    offsets = offsets or {}
    return Architecture(space.id, {
        g.name: g.snap(g.width * min(1.0, base * offsets.get(g.name, 1.0))) if g.searchable else g.width
        for g in space.genes
    })


def flops_cost(space: ChannelSpace) -> Cost:
    """FLOPs of an architecture as a fraction of the full network's (exact, from the layer table)."""
    full = float(space.count(space.full())["flops"])
    return lambda arch: space.count(arch)["flops"] / full


def draw_near(space: ChannelSpace, cost: Cost, target: float, rng: random.Random, *, spread: float = 0.5,
              iters: int = 20) -> Architecture:
    """A random architecture whose ``cost`` is as near ``target`` as the shape allows.

    The shape is ``offsets[gene] = exp(N(0, spread))``; the base ratio is bisected (on a log scale)
    so that :func:`scaled` costs the target. ``spread`` 0 gives uniform width. A target below the
    space's smallest cost gives the smallest network, one above the full cost the full network.

    Args:
        space: The channel space.
        cost: Non-decreasing cost of an architecture (e.g. :func:`flops_cost`).
        target: The cost wanted.
        rng: Random source of the shape.
        spread: Standard deviation of the per-gene log offsets.
        iters: Bisection steps.
    """
    offsets = {g.name: math.exp(rng.gauss(0.0, spread)) for g in space.searchable_genes}
    return scaled_to(space, cost, target, offsets, iters=iters)


def scaled_to(space: ChannelSpace, cost: Cost, target: float, offsets: Mapping[str, float], *, iters: int = 20,
              nearest: bool = True) -> Architecture:
    """The :func:`scaled` architecture of shape ``offsets`` whose ``cost`` is nearest ``target``.

    The base ratio is bisected on a log scale. With ``nearest=False`` the widest one whose cost is
    at most ``target`` (e.g. a candidate shrunk under a budget, shape kept). A target below the
    shape's smallest cost gives its smallest network, one above its full cost its widest.

    Args:
        space: The channel space.
        cost: Non-decreasing cost of an architecture (e.g. :func:`flops_cost`).
        target: The cost wanted.
        offsets: Per-gene width multipliers of the shape (missing genes: 1).
        iters: Bisection steps.
        nearest: Nearest from either side (default), or at most ``target``.
    """
    genes = space.searchable_genes
    off = {g.name: offsets.get(g.name, 1.0) for g in genes}
    lo = math.log(min((g.choices[0] / g.width) / off[g.name] for g in genes) if genes else 1.0) - 0.1
    hi = math.log(max(1.0 / off[g.name] for g in genes) if genes else 1.0) + 0.1
    below, above = scaled(space, math.exp(lo), off), scaled(space, math.exp(hi), off)
    c_below, c_above = cost(below), cost(above)
    if target <= c_below:
        return below
    if target >= c_above:
        return above
    for _ in range(iters):
        mid = (lo + hi) / 2
        arch = scaled(space, math.exp(mid), off)
        c = cost(arch)
        if c < target or (not nearest and c == target):
            lo, below, c_below = mid, arch, c
        else:
            hi, above, c_above = mid, arch, c
    if not nearest:
        return below
    return below if target - c_below <= c_above - target else above
