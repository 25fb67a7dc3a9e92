"""A table of one network used for another number of classes (the 1000-class 224x224 tables for any dataset).

Spaces of one network at one input size differ across datasets only in the classifier's outputs,
which no gene prunes. The table's features are per-layer shares of the unpruned network
(:class:`~nas_prune.latency._structure.LayerCosts`), so re-keying the table to the new space
predicts the same milliseconds; the classifier's share stays that of the table's classes (0.4 % of
mobilenet_v2 at 224x224 for 1000 classes, 0.03 % of resnet18: a slight over-prediction for fewer
classes). The re-keyed table carries no calibration of this machine, so the calibration stage
checks it here (reference and 12 networks) and adapts it when it does not fit.
"""

from __future__ import annotations

from typing import Any

from nas_prune.errors import SpaceMismatchError
from nas_prune.latency._structure import structure_from_space
from nas_prune.latency._table import LatencyTable

__all__ = ["retarget_table"]

_FIXED_OUTPUT = ("out_ch",)  # what may differ, and only in a linear layer with no gene on its outputs


def _compatible(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why two structures are not one network with other classes (``None``: they are)."""
    if old.get("genes") != new.get("genes"):
        return "their genes differ"
    if len(old["layers"]) != len(new["layers"]):
        return "their layers differ"
    for a, b in zip(old["layers"], new["layers"]):
        diff = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
        if diff and (diff - set(_FIXED_OUTPUT) or a.get("kind") != "linear" or a.get("out")):
            return f"layer {a.get('name')} differs in {sorted(diff)}"
    return None


def retarget_table(table: LatencyTable, space: Any) -> LatencyTable:
    """``table`` re-keyed to ``space``, a space of the same network and input size with other classes.

    Args:
        table: A latency table (e.g. shipped for 1000 classes).
        space: The :class:`~nas_prune.space.ChannelSpace` to predict for.

    Returns:
        The same table for ``space.id``, its classifier's output count set to the space's, its meta
        recording ``retargeted`` (from which space) and a calibration of kind ``retargeted``, which
        the calibration stage checks on this machine before anything trusts it (a device's table
        keeps its ``device`` calibration: this machine cannot check a phone's milliseconds).

    Raises:
        SpaceMismatchError: the spaces differ in more than the classifier's outputs (or input size).
    """
    if table.space_id == space.id:
        return table
    new = structure_from_space(space)
    why = _compatible(dict(table.structure), new)
    shape = table.meta.get("input_shape")
    if why is None and shape is not None and list(shape) != list(space.input_shape):
        why = f"the table is for input {shape}, the space for {list(space.input_shape)}"
    if why is not None:
        raise SpaceMismatchError(f"latency table for space {table.space_id!r} cannot serve space {space.id!r} ({why}): "
                                 "profile a table for this space with 'nas-prune profile --space FILE'")
    cal = dict(table.meta.get("calibration") or {})
    # a phone's or board's table stays that device's (used as measured there); any other is checked here
    new_cal = {**cal, "retargeted": True} if cal.get("kind") == "device" else {"kind": "retargeted", "from": cal}
    meta = {**table.meta, "input_shape": list(space.input_shape),
            "retargeted": {"from_space": table.space_id, "to_space": space.id,
                           "note": "classifier outputs differ; its share of the latency is the source table's"},
            "calibration": new_cal}
    return LatencyTable(space_id=space.id, meta=meta, settings=table.settings, reference=table.reference,
                        structure=new, model=table.model, entries=table.entries)
