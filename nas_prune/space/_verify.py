"""Refuse up front a model whose channels nas-prune cannot prune, instead of failing hours later.

Torch-Pruning's dependency graph follows most CNNs (every torchvision classifier is tested), but
some wire channels in ways a channel group cannot express: GhostNet concatenates a primary and a
"cheap" branch and then slices the result, CSPNet splits a tensor's channels in two. Their spaces
are derived without complaint and then break when an architecture is materialised. And tracing
some graphs (timm's ReXNet) runs for minutes. :func:`~nas_prune.space.trace_time_limit` bounds the tracing and
:func:`verify_space` materialises the narrowest and a random architecture of a fresh space and
runs them, so ``nas-prune space`` and ``nas-prune run`` refuse such a model in one line, with its
name, before any training.
"""

from __future__ import annotations

import torch

from nas_prune.errors import UnsupportedModelError
from nas_prune.space._draw import smallest
from nas_prune.space._materialize import materialize
from nas_prune.space._space import ChannelSpace
from nas_prune.space._trace import TRACE_SECONDS, trace_time_limit

__all__ = ["TRACE_SECONDS", "trace_time_limit", "verify_space"]


def verify_space(space: ChannelSpace, *, seed: int = 0) -> None:
    """Materialise the narrowest and one random architecture of ``space`` and run them once.

    Raises:
        UnsupportedModelError: the space cannot be pruned as derived (one line: the model, what broke).
    """
    name = space.model.get("spec") or space.id
    if len({g.name for g in space.genes}) != len(space.genes):
        raise UnsupportedModelError(f"model {name}: its channel groups share layer names, so its space is ambiguous: "
                                    "nas-prune does not support this model yet")
    base = space.build_model()
    for arch in (smallest(space), space.sample(seed=seed)):
        try:
            with torch.no_grad():
                out = materialize(base, arch, space=space)(space.example_input())
        except Exception as exc:  # Torch-Pruning raises IndexError, RuntimeError, ... from deep inside
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise UnsupportedModelError(
                f"model {name}: pruning its channels breaks ({type(exc).__name__}: {first}); it wires channels in a "
                "way nas-prune cannot follow (e.g. slices or splits of a tensor's channels): use another model") from None
        if tuple(out.shape) != (1, space.model["num_classes"]):
            raise UnsupportedModelError(f"model {name}: a pruned network outputs {tuple(out.shape)}, not "
                                        f"(1, {space.model['num_classes']}): nas-prune does not support this model")
