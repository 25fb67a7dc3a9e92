"""Weight generators: the encoding of a layer's genes in, the layer's full weight tensor out.

MetaPruning (Liu et al., ICCV 2019, arXiv 1903.10258) gives every layer its own generator
``Linear(k, hidden) -> ReLU -> Linear(hidden, numel)`` (:class:`MLPGenerator`, ``"mlp"``). Its
output layer costs ``hidden + 1`` parameters per generated weight (33 at hidden 32), which is what
makes a ResNet-50 PruningNet weigh ~776M parameters. :class:`LowRankGenerator` (``"lowrank"``, the
default) keeps one shared weight per layer and lets the encoding modulate it with a rank-``r``
multiplicative correction, ``W(e) = W0 * (1 + U(e) V(e))``, where ``U(e)`` is ``out x r`` and
``V(e)`` is ``r x (in * kernel)``: about one parameter per weight plus ``hidden * r * (out + in *
kernel)``.

Generators are chosen by name from :data:`GENERATORS`; adding one is one class and one
``@register_generator("name")`` line. A generator is built as
``cls(base_weight, n_inputs, hidden=..., rank=...)`` (the PruningNet's settings; ignore those it
has no use for) and maps an encoding ``[n_inputs]`` to a tensor of ``base_weight``'s shape.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, TypeVar

import torch
from torch import nn

from nas_prune.errors import NasPruneError

__all__ = ["GENERATORS", "GeneratorFactory", "LowRankGenerator", "MLPGenerator", "generator_names",
           "get_generator", "make_generator", "register_generator"]


class GeneratorFactory(Protocol):
    """What :func:`register_generator` accepts: ``(base_weight, n_inputs, *, hidden, rank) -> module``."""

    def __call__(self, base_weight: torch.Tensor, n_inputs: int, *, hidden: int, rank: int) -> nn.Module: ...


#: Weight generators by name (``PruningNet(generator=...)``, ``--generator``).
GENERATORS: dict[str, GeneratorFactory] = {}

_F = TypeVar("_F", bound=Callable[..., nn.Module])


def register_generator(name: str) -> Callable[[_F], _F]:
    """Register a generator class (or factory) under ``name``; a second use of a name is refused.

    Example::

        @register_generator("constant")
        class ConstantGenerator(nn.Module):
            def __init__(self, base_weight, n_inputs, *, hidden, rank):
                super().__init__()
                self.weight = nn.Parameter(base_weight.detach().clone())

            def forward(self, encoding):
                return self.weight
    """

    def add(factory: _F) -> _F:
        if name in GENERATORS:
            raise NasPruneError(f"a generator named {name!r} is registered already: choose another name")
        GENERATORS[name] = factory
        return factory

    return add


def generator_names() -> list[str]:
    """Registered generator names, sorted (for help texts and errors)."""
    return sorted(GENERATORS)


@register_generator("mlp")
class MLPGenerator(nn.Module):
    """The official MetaPruning generator: a two-layer MLP whose output is the whole weight.

    The output bias starts at the base model's initial weight and the output matrix near zero, so
    training starts from a working network instead of from noise. ``rank`` is ignored (there is no
    low-rank part).
    """

    def __init__(self, base_weight: torch.Tensor, n_inputs: int, *, hidden: int = 32, rank: int = 0) -> None:
        super().__init__()
        self.shape = tuple(base_weight.shape)
        self.hidden = nn.Linear(n_inputs, hidden)
        self.out = nn.Linear(hidden, base_weight.numel())
        with torch.no_grad():
            self.out.weight.mul_(1e-2)
            self.out.bias.copy_(base_weight.detach().flatten())

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(encoding))).view(self.shape)


@register_generator("lowrank")
class LowRankGenerator(nn.Module):
    """A shared weight modulated by a rank-``rank`` function of the encoding (cheap default).

    ``U`` starts at zero, so the generated weight starts equal to the base model's weight.
    """

    def __init__(self, base_weight: torch.Tensor, n_inputs: int, *, hidden: int = 32, rank: int = 4) -> None:
        super().__init__()
        self.shape = tuple(base_weight.shape)
        self.rank = rank
        out = self.shape[0]
        fan = base_weight[0].numel()
        self.weight = nn.Parameter(base_weight.detach().clone())
        self.hidden = nn.Linear(n_inputs, hidden)
        self.u = nn.Linear(hidden, out * rank)
        self.v = nn.Linear(hidden, rank * fan)
        with torch.no_grad():
            self.u.weight.zero_()
            self.u.bias.zero_()
            self.v.weight.mul_(1.0 / math.sqrt(rank))

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(encoding))
        u = self.u(h).view(self.shape[0], self.rank)
        v = self.v(h).view(self.rank, -1)
        return self.weight * (1 + (u @ v).view(self.shape))


def get_generator(name: str) -> GeneratorFactory:
    """The generator registered as ``name``.

    Raises:
        NasPruneError: no generator has that name (the message lists those that exist).
    """
    factory = GENERATORS.get(name)
    if factory is None:
        raise NasPruneError(f"unknown generator {name!r}: use one of {', '.join(generator_names())} "
                            "(or register yours with register_generator)")
    return factory


def make_generator(kind: str, base_weight: torch.Tensor, n_inputs: int, *, hidden: int, rank: int) -> nn.Module:
    """Build the generator registered as ``kind`` (see :data:`GENERATORS`).

    Raises:
        NasPruneError: no generator has that name.
    """
    return get_generator(kind)(base_weight, n_inputs, hidden=hidden, rank=rank)
