"""Channel search space: genes from Torch-Pruning's dependency groups, architectures, physical pruning.

The spaces of the tested models ship as package data (:func:`shipped_space`, :func:`shipped_spaces`).
"""

from __future__ import annotations

from nas_prune.space._arch import Architecture
from nas_prune.space._draw import Cost, draw_near, flops_cost, scaled, scaled_to, smallest
from nas_prune.space._gene import Gene, width_choices
from nas_prune.space._graph import build_dependency_graph, is_out_channel_fn, output_layer_name
from nas_prune.space._materialize import channel_groups, l1_importance, materialize, narrow, pruned_indices
from nas_prune.space._shipped import shipped_space, shipped_spaces, shipped_spaces_dir
from nas_prune.space._space import SPACE_FORMAT, SPACE_VERSION, ChannelSpace
from nas_prune.space._trace import TRACE_SECONDS, trace_time_limit
from nas_prune.space._verify import verify_space

__all__ = [
    "Architecture",
    "build_dependency_graph",
    "ChannelSpace",
    "Cost",
    "draw_near",
    "flops_cost",
    "is_out_channel_fn",
    "Gene",
    "SPACE_FORMAT",
    "SPACE_VERSION",
    "TRACE_SECONDS",
    "trace_time_limit",
    "verify_space",
    "channel_groups",
    "l1_importance",
    "materialize",
    "narrow",
    "output_layer_name",
    "pruned_indices",
    "scaled",
    "scaled_to",
    "shipped_space",
    "shipped_spaces",
    "shipped_spaces_dir",
    "smallest",
    "width_choices",
]
