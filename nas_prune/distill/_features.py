"""Penultimate features of any classifier, read by a hook on its classifier layer's input."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from nas_prune.space import output_layer_name

__all__ = ["classifier_layer", "penultimate_features"]


def classifier_layer(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """The last conv/linear layer in execution order (the classifier)."""
    was_training = model.training
    model.eval()
    try:
        name = output_layer_name(model, example_input)
    finally:
        model.train(was_training)
    return dict(model.named_modules())[name]


@contextlib.contextmanager
def penultimate_features(model: nn.Module, example_input: torch.Tensor | None = None, *,
                         layer: nn.Module | None = None) -> Iterator[Callable[[], torch.Tensor]]:
    """While active, every forward of ``model`` records the classifier's input.

    Give ``example_input`` to find the classifier (one forward), or the classifier ``layer`` itself.

    Yields a function returning the features of the last forward as ``[batch, dim]`` (a conv
    classifier's spatial input is averaged over its positions). Gradients flow through them.

    Example:
        >>> with penultimate_features(model, space.example_input()) as features:
        ...     logits = model(x)
        ...     f = features()
    """
    store: dict[str, torch.Tensor] = {}

    def hook(_mod: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        store["x"] = inputs[0]

    if layer is None:
        if example_input is None:
            raise ValueError("give example_input or layer")
        layer = classifier_layer(model, example_input)
    handle = layer.register_forward_pre_hook(hook)

    def features() -> torch.Tensor:
        if "x" not in store:
            raise RuntimeError("no forward pass has run yet")
        x = store["x"]
        return x.flatten(2).mean(2) if x.ndim > 2 else x

    try:
        yield features
    finally:
        handle.remove()
