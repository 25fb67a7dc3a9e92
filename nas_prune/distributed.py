"""Training on several processes with :mod:`torch.distributed`: one process per device, launched by ``torchrun``.

``torchrun --nproc-per-node N -m nas_prune run ...`` (or ``nas-prune run --nproc N``, which launches
it) starts N copies of the command. Each joins the process group torchrun describes in its
environment (:func:`init_from_env`: ``gloo`` on CPUs, ``nccl`` on GPUs, one GPU per process by
``LOCAL_RANK``). The training stages wrap their model in
:class:`~torch.nn.parallel.DistributedDataParallel` (:func:`wrap`), which averages the gradients
of every step over the processes; each process reads its own share of every global batch
(:func:`shard`), so N processes with ``batch / N`` images each take the same steps as one process
with the whole batch (exactly, for networks without BatchNorm; with BatchNorm each process
normalises its own share, as in every DDP setup on CPUs). The distillation, whose methods step
several modules through several optimisers, averages its gradients the same way with one
all-reduce per step (:func:`average_gradients`).

Everything else runs on the first process (rank 0): files are written by it alone
(:func:`nas_prune._io.atomic_write_bytes`), latency is measured while the others wait for its
result (:func:`broadcast_object`), the search runs there. Outside ``torchrun`` every function here
is a no-op for one process.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterable, TypeVar

import torch
from torch import nn

__all__ = ["World", "average_gradients", "broadcast_object", "init_from_env", "is_main", "shard", "world", "wrap",
           "BARRIER_TIMEOUT"]

#: How long a process waits for the others in a collective: the search and the latency stages run on
#: rank 0 alone while the other ranks wait (hours on a large search).
BARRIER_TIMEOUT = datetime.timedelta(hours=48)

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes:
        rank: 0 .. ``size`` - 1; rank 0 writes the files and runs the stages that do not train.
        size: Number of processes (1 outside ``torchrun``).
        local_rank: Rank on this machine (the GPU a process drives).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """This process writes the files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process trains."""
        return self.size > 1


def world() -> World:
    """The current process group's :class:`World` (one process when none was started)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return World()


def is_main() -> bool:
    """Whether this process writes the files (always, outside ``torchrun``)."""
    return world().main


def init_from_env(device: str | torch.device = "auto") -> World:
    """Join the process group ``torchrun`` describes in the environment; once, and only under it.

    Args:
        device: The run's ``--device``: ``nccl`` when it is CUDA (each process takes the GPU of its
            ``LOCAL_RANK``), ``gloo`` otherwise.

    Returns:
        This process's :class:`World` (``World()`` when ``WORLD_SIZE`` is absent or 1).
    """
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or not dist.is_available():
        return World()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and not str(device).startswith("cpu")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=BARRIER_TIMEOUT)
    return world()


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every process (pickled; for small results such as a stage's record)."""
    if not world().active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def wrap(model: nn.Module, **kwargs: Any) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when several processes train.

    Rank 0's weights are broadcast to the others on wrapping; every backward pass averages the
    gradients. With one process the model is returned as is. ``kwargs`` go to DDP.
    """
    w = world()
    if not w.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    if dev.type == "cuda":
        kwargs.setdefault("device_ids", [dev.index])
    return DistributedDataParallel(model, **kwargs)


def shard(batch_size: int, w: World | None = None) -> slice:
    """This process's rows of a global batch of ``batch_size``: contiguous, equal shares.

    Raises:
        NasPruneError: ``batch_size`` is not a multiple of the number of processes.
    """
    w = w or world()
    if batch_size % w.size:
        from nas_prune.errors import NasPruneError

        raise NasPruneError(f"batch size {batch_size} does not split over {w.size} processes: "
                            f"give --batch-size a multiple of {w.size}")
    per = batch_size // w.size
    return slice(w.rank * per, (w.rank + 1) * per)


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over the processes (one all-reduce of one flat buffer).

    What DDP does inside its backward pass, for training loops that step several modules through
    several optimisers (the distillation methods): call it between ``backward()`` and ``step()``.
    Every process must hold gradients for the same parameters.
    """
    w = world()
    if not w.active:
        return
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= w.size
    for g, mean in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(mean)
