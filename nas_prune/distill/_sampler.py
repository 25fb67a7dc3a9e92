"""Class-uniform batch sampling: every batch holds ``per_class`` samples of each of its classes.

Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019, arXiv 1904.01802,
section 3.4: a batch made of k samples from each of n/k classes gives the correlation matrix
intra-class pairs to match, which uniform sampling rarely does with many classes; k = 2-4 worked
best in their ablation.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Dataset

__all__ = ["ClassUniformBatchSampler", "dataset_labels"]


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """Every label of ``dataset`` (its ``labels`` tensor when it has one; else read through its batches)."""
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, torch.Tensor):
        return labels.long()
    from nas_prune.data import batches

    return torch.cat([y for _, y in batches(dataset, 512)]).long()


class ClassUniformBatchSampler:
    """Yields lists of dataset indices, ``batch_size // per_class`` classes times ``per_class`` each.

    A batch's classes are distinct, drawn at random; with fewer classes than
    ``batch_size // per_class`` every class appears equally often (whole shuffled rounds) and the
    remainder is drawn without repetition. Within a class samples are drawn without replacement from a shuffled pool
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

    def _classes(self, g: torch.Generator) -> list[int]:
        """Classes of one batch: distinct when there are enough, else whole shuffled rounds of all."""
        m, c = self.batch_size // self.per_class, len(self.pools)
        picks: list[int] = []
        while len(picks) < m:
            picks += torch.randperm(c, generator=g)[: m - len(picks)].tolist()
        return picks

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed)
        queues: list[list[int]] = [[] for _ in self.pools]
        for _ in range(len(self)):
            batch: list[int] = []
            for c in self._classes(g):
                for _ in range(self.per_class):
                    if not queues[c]:
                        pool = self.pools[c]
                        queues[c] = pool[torch.randperm(len(pool), generator=g)].tolist()
                    batch.append(queues[c].pop())
            yield batch
