"""Seed an Optuna study with the gate architectures of several budgets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from nas_prune.errors import NasPruneError
from nas_prune.gates._budget import Budget

if TYPE_CHECKING:
    from nas_prune.gates._gates import Gates
    from nas_prune.space import Architecture, ChannelSpace, Gene

__all__ = ["enqueue_gate_architectures", "grid_value"]


def grid_value(gene: "Gene", channels: int) -> int:
    """The value of ``suggest_int(gene.low, gene.high, step=gene.step)`` that decodes to ``channels``.

    The full width may lie off the grid (e.g. 25 with step 8); ``gene.high`` snaps back to it.
    """
    return channels if (channels - gene.low) % gene.step == 0 else gene.high


def enqueue_gate_architectures(
    study: Any, gates: "Gates", space: "ChannelSpace", budgets: Iterable[Budget | str], *,
    skip_unreachable: bool = False,
) -> list["Architecture"]:
    """Enqueue the binary-search architecture of every budget (Pruning from Scratch) as a trial.

    Each architecture is enqueued with ``study.enqueue_trial`` as ``{gene: channels}`` for the
    searchable genes, so a trial that calls ``space.suggest(trial)`` evaluates it first.
    Duplicates (two budgets giving the same architecture) are enqueued once. With
    ``skip_unreachable`` a budget that even the narrowest network breaks is skipped instead of
    raising (e.g. fractions of a tight budget that fall under the space's floor).

    Returns:
        The distinct architectures, in budget order.
    """
    gates.check_space(space)  # a mismatch raises, whatever skip_unreachable says
    archs: list[Architecture] = []
    for b in budgets:
        try:
            arch = gates.prune(space, Budget.parse(b) if isinstance(b, str) else b)
        except NasPruneError:
            if not skip_unreachable:
                raise
            continue
        if any(a.channels == arch.channels for a in archs):
            continue
        archs.append(arch)
        study.enqueue_trial({g.name: grid_value(g, arch.channels[g.name]) for g in space.searchable_genes},
                            skip_if_exists=True)
    return archs
