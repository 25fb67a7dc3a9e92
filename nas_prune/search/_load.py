"""Load the artefacts a search consumes (tables, PruningNet, gates), checked against the space."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from nas_prune.space import ChannelSpace

__all__ = ["load_evaluator", "load_gates", "load_tables", "enqueue_gate_candidates"]


def load_tables(paths: Sequence[str | os.PathLike[str]], space: ChannelSpace, *, calibration: str = "auto",
                log: Callable[[str], None] | None = None) -> list[Any]:
    """Latency tables checked against ``space``, as calibrated on this machine.

    Every table goes through :func:`nas_prune.latency.calibrated_table` (the one code path of every
    command that predicts): a table this machine did not calibrate is checked, and adapted when it is
    off, before the search trusts it; ``log`` says which calibration each table uses.
    """
    from nas_prune.latency import calibrated_table

    return [calibrated_table(path, space, mode=calibration, log=log) for path in paths]


def load_evaluator(
    pnet_path: str | os.PathLike[str],
    space: ChannelSpace,
    *,
    data: str = "digits",
    recal_batches: int = 20,
    val_batches: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
) -> Any:
    """A ``PruningNetEvaluator`` of the PruningNet at ``pnet_path`` on ``data``'s validation split.

    The data is normalised the way the PruningNet's training data was (its recorded ``preprocess``),
    so ``nas-prune search`` and NNI trials score with the network's own preprocessing.
    """
    from nas_prune.data import load_data
    from nas_prune.pruningnet import PruningNet, PruningNetEvaluator

    pnet = PruningNet.load(pnet_path, space=space)
    bundle = load_data(data, input_size=space.input_shape[-1], seed=seed, preprocess=pnet.preprocess)
    return PruningNetEvaluator(pnet, bundle, recal_batches=recal_batches, val_batches=val_batches,
                               batch_size=batch_size, seed=seed)


def load_gates(path: str | os.PathLike[str], space: ChannelSpace) -> Any:
    """Gates (``nas_prune.gates.Gates``) checked against ``space``."""
    from nas_prune.gates import Gates

    gates = Gates.load(path)
    gates.check_space(space)
    return gates


def enqueue_gate_candidates(study: Any, gates: Any, space: ChannelSpace, budgets: Sequence[Any],
                            fractions: Sequence[float] = (1.0, 0.9, 0.8)) -> int:
    """Enqueue the gates' binary-search architectures at fractions of the first latency budget.

    Only a new study is seeded (a resumed or shared one already has them). Returns how many.
    """
    if not budgets or study.get_trials(deepcopy=False):
        return 0
    from nas_prune.gates import Budget, enqueue_gate_architectures

    first = budgets[0]
    # a fraction of a tight budget may fall under the narrowest network (0.8 of 0.3x for
    # mobilenet_v2 at 32 px): no gate architecture there, skipped
    return len(enqueue_gate_architectures(
        study, gates, space, [Budget("latency", first.budget_ms * f, first.table) for f in fractions],
        skip_unreachable=True,
    ))
