"""Class-uniform batch sampling: every batch holds ``per_class`` samples of each of its classes.

Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019, arXiv 1904.01802,
section 3.4: a batch made of k samples from each of n/k classes gives the correlation matrix
intra-class pairs to match, which uniform sampling rarely does with many classes; k = 2-4 worked
best in their ablation.
"""

from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["ClassUniformBatchSampler"]


class ClassUniformBatchSampler:
    """Yields lists of dataset indices, ``batch_size // per_class`` classes times ``per_class`` each.

    Classes are visited in a shuffled cycle (a class appears again only when every class has
    appeared, so with fewer classes than ``batch_size // per_class`` a batch holds several groups
    of the same class). Within a class samples are drawn without replacement from a shuffled pool
    that is refilled when it runs out. An epoch has ``len(labels) // batch_size`` batches.

    Args:
        labels: Class index of every sample of the dataset.
        batch_size: Samples per batch (a multiple of ``per_class``).
        per_class: Samples of one class per group ``k`` (default 4).
        seed: Seed; the same seed gives the same batches.
    """

    def __init__(self, labels: torch.Tensor, *, batch_size: int, per_class: int = 4, seed: int = 0) -> None:
        labels = torch.as_tensor(labels).long()
        if per_class < 1 or batch_size < per_class or batch_size % per_class:
            raise ValueError(f"batch_size {batch_size} must be a positive multiple of per_class {per_class}")
        self.batch_size = batch_size
        self.per_class = per_class
        self.seed = seed
        self.pools = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels).tolist()]
        self.pools = [p for p in self.pools if len(p) > 0]
        self.n = len(labels)

    def __len__(self) -> int:
        return max(1, self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed)
        queues: list[list[int]] = [[] for _ in self.pools]
        cycle: list[int] = []
        for _ in range(len(self)):
            batch: list[int] = []
            for _ in range(self.batch_size // self.per_class):
                if not cycle:
                    cycle = torch.randperm(len(self.pools), generator=g).tolist()
                c = cycle.pop()
                for _ in range(self.per_class):
                    if not queues[c]:
                        pool = self.pools[c]
                        queues[c] = pool[torch.randperm(len(pool), generator=g)].tolist()
                    batch.append(queues[c].pop())
            yield batch
