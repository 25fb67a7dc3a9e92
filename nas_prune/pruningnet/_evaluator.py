"""Scoring candidates with a trained PruningNet: generate, recalibrate BatchNorm, evaluate."""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Mapping

import torch
import torch.nn.functional as F

from nas_prune.data import ImageArrays, ImageFiles, batches, check_num_classes, take, to_bundle, unaugmented
from nas_prune.errors import DataError
from nas_prune.pruningnet._net import BNStats, PruningNet
from nas_prune.space import Architecture
from nas_prune.training import autocast, resolve_device, to_device

__all__ = ["PruningNetEvaluator", "MAX_VAL_IMAGES", "MIN_VAL_IMAGES", "TARGET_SE", "CACHE_MB", "images_for_se"]

#: Candidates are scored on at most this many validation images, a fixed seeded subset: the score's
#: standard error on 10k images is about a tenth of a point of top-1, and ImageNet's 50k validation
#: images at 224 px would be 30 GB of float32 and minutes of forward passes per candidate.
MAX_VAL_IMAGES = 10_000
#: Within the cap, the subset is as large as the top-1 standard error wanted at the unpruned network's
#: accuracy needs (``p (1 - p) / se**2`` images, :func:`images_for_se`): half a point by default ...
TARGET_SE = 0.005
#: ... and never fewer images than this (a small split is scored whole).
MIN_VAL_IMAGES = 1000
#: The unpruned network's accuracy is estimated on this many images of the subset first.
PILOT_IMAGES = 1000
#: Memory cap of the scoring cache: 2 GB holds the 10k validation images and 20 recalibration
#: batches of 128 at 224 px as uint8 (1.9 GB); float32 images (a user's own dataset) hold 4x fewer.
CACHE_MB = 2048


def images_for_se(accuracy: float, se: float) -> int:
    """Images needed for a top-1 standard error of ``se`` at ``accuracy`` (a binomial proportion), at least :data:`MIN_VAL_IMAGES`."""
    p = min(max(accuracy, 0.0), 1.0)
    return max(MIN_VAL_IMAGES, math.ceil(p * (1.0 - p) / se ** 2))


def _bytes_per_image(ds: Any) -> int:
    """Bytes one cached image of ``ds`` takes (uint8 for nas-prune's datasets, as given otherwise)."""
    if isinstance(ds, ImageArrays):
        return int(ds.images[0].numel())
    if isinstance(ds, ImageFiles):
        return 3 * ds.input_size ** 2
    x = ds[0][0]
    return int(x.numel() * x.element_size())


class PruningNetEvaluator:
    """Scores candidates of a PruningNet's space in seconds (MetaPruning, arXiv 1903.10258).

    For each candidate: generate its weights once, reset and recalibrate every BatchNorm on
    ``recal_batches`` training batches (train mode, no gradients, cumulative average), then
    evaluate on the validation split in eval mode. The score is ``exp(-mean cross-entropy)`` (the
    geometric mean of the probability given to the true class): smoother than top-1, whose
    standard error on 2k images (about 1 point) is as wide as the differences a budgeted search
    ranks, and in (0, 1] so that 0 stays below every feasible candidate. Top-1 accuracy, the mean
    loss and its standard error are reported beside it. The recalibration and validation batches
    are drawn once and kept in memory on the PruningNet's device, so scoring many candidates loads
    and copies no data; in-memory images stay uint8 there (4x smaller than float32) and are
    normalised batch by batch, and the validation images are a fixed seeded subset of at most
    ``max_val_images``, cut further to what a top-1 standard error of ``target_se`` needs at the
    unpruned network's accuracy (measured on the subset's first :data:`PILOT_IMAGES` images).

    Example (your own data; a 7-class space needs 7-class data)::

        evaluator = PruningNetEvaluator(pnet, (train_dataset, val_loader), device="cuda")
        evaluator.score(space.uniform(0.5))["score"]

    Args:
        pnet: A trained :class:`PruningNet`.
        data_bundle: A :class:`~nas_prune.data.DataBundle` (``load_data(...)``, ``make_bundle(...)``)
            or your ``(train, val[, test])`` splits: torch Datasets, DataLoaders (their datasets
            are used) or ``(images, labels)`` tensors (:func:`nas_prune.data.to_bundle`).
        recal_batches: Training batches used to recalibrate BatchNorm; 0 uses the per-choice
            statistics of a ``per_choice_bn`` PruningNet (batch statistics otherwise).
        batch_size: Batch size of both recalibration and validation.
        val_batches: Validation batches scored (``None``: the whole subset).
        max_val_images: Size cap of the validation subset (:data:`MAX_VAL_IMAGES`; ``None``: no cap).
        target_se: The top-1 standard error the subset must reach at the unpruned network's accuracy
            (:data:`TARGET_SE`; ``None``: the whole capped subset). Ignored with ``val_batches``.
        cache_mb: Memory cap of the cached recalibration and validation images (:data:`CACHE_MB`);
            the validation subset shrinks to fit it (the number kept is ``val_images``).
        seed: Which training batches are used for recalibration.
        device: ``auto | cpu | cuda[:N]`` (:func:`nas_prune.training.resolve_device`): ``pnet`` is
            moved there; ``None`` scores where ``pnet`` already is.
        amp: bfloat16 autocast of the forward passes on CUDA (ignored on the CPU). Off by default:
            a search ranks candidates by score differences of a few thousandths, and scores under
            bfloat16 have not been compared with float32 ones yet.

    Raises:
        DataError: the data's class count is not the model's (both counts named), or the data is
            unusable.
        NasPruneError: ``device`` is unknown or absent here.
    """

    def __init__(
        self,
        pnet: PruningNet,
        data_bundle: Any,
        *,
        recal_batches: int = 20,
        batch_size: int = 128,
        val_batches: int | None = None,
        max_val_images: int | None = MAX_VAL_IMAGES,
        target_se: float | None = TARGET_SE,
        cache_mb: float = CACHE_MB,
        seed: int = 0,
        device: str | torch.device | None = None,
        amp: bool = False,
    ) -> None:
        bundle = to_bundle(data_bundle)
        check_num_classes(pnet.space, bundle)  # a 7-class model on 10-class data fails here, in one line
        if device is not None:
            pnet.to(resolve_device(device))
        self.pnet = pnet.eval()
        self.device = pnet.device
        self.amp = bool(amp)
        dev = self.device
        val = bundle.val
        bytes_per_image = _bytes_per_image(val)
        cap = int(cache_mb * 2**20 // bytes_per_image) - recal_batches * batch_size
        if cap < batch_size:
            raise DataError(f"a scoring cache of {cache_mb} MB holds {cap + recal_batches * batch_size} images of "
                            f"{bytes_per_image:,} bytes, fewer than the {recal_batches} recalibration batches and "
                            "one validation batch: raise cache_mb or lower recal_batches")
        limit = cap if max_val_images is None else min(max_val_images, cap)
        if len(val) > limit:  # type: ignore[arg-type]
            keep = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))[:limit].sort().values  # type: ignore[arg-type]
            val = take(val, keep)
        self.val_images = len(val)  # type: ignore[arg-type]
        self._preprocess = getattr(val, "preprocess", None) or bundle.preprocess
        # Decoded once, kept on the device (nas-prune's datasets as uint8, normalised per batch when scored).
        self.recal = [to_device(x, dev) for x, _ in batches(unaugmented(bundle.train), batch_size, shuffle=True,
                                                            seed=seed, drop_last=True, max_batches=recal_batches,
                                                            normalize=False)]
        self.val = [(to_device(x, dev), to_device(y, dev))
                    for x, y in batches(val, batch_size, max_batches=val_batches, normalize=False)]
        self.pilot_accuracy: float | None = None
        if target_se is not None and val_batches is None and self.val_images > MIN_VAL_IMAGES:
            self._cut_to_se(target_se, batch_size)
        self.cache_bytes = sum(x.numel() * x.element_size() for x in self.recal) + \
            sum(x.numel() * x.element_size() for x, _ in self.val)

    def _cut_to_se(self, se: float, batch_size: int) -> None:
        """Keep the validation batches a top-1 standard error of ``se`` needs at the unpruned network's accuracy."""
        pilot = self.val[:max(1, math.ceil(PILOT_IMAGES / batch_size))]
        self.pilot_accuracy = self._score_on(self.pnet.space.full(), pilot)["accuracy"]
        self.val = self.val[:math.ceil(images_for_se(self.pilot_accuracy, se) / batch_size)]
        self.val_images = sum(len(y) for _, y in self.val)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return self._preprocess.normalize(x) if x.dtype == torch.uint8 else x

    @torch.no_grad()
    def recalibrated(self, arch: Architecture | Mapping[str, int]) -> BNStats:
        """The candidate's BatchNorm statistics (pass them to :meth:`PruningNet.export`)."""
        return self._stats(self.pnet.generate(arch))

    def _stats(self, bound) -> BNStats:  # noqa: ANN001 (a pruningnet._layers.Bound)
        if self.recal:
            with autocast(self.device, self.amp):
                return self.pnet.recalibrate(bound, (self._input(x) for x in self.recal))
        return {k: (m.clone(), v.clone()) for k, (m, v) in self.pnet.choice_stats(bound).items()}

    @torch.no_grad()
    def score(self, arch: Architecture | Mapping[str, int]) -> dict[str, float]:
        """One candidate's ``score`` (exp(-loss)), ``loss`` (validation cross-entropy), ``loss_se``
        (its standard error), ``score_se`` (the score's, to first order), ``accuracy`` (top-1) and
        ``seconds`` (time taken)."""
        return self._score_on(arch, self.val)

    @torch.no_grad()
    def _score_on(self, arch: Architecture | Mapping[str, int],
                  val: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """:meth:`score` on the validation batches ``val``."""
        start = time.perf_counter()
        bound = self.pnet.generate(arch)
        stats = self._stats(bound)
        self.pnet.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)  # summed on the device, read once
        losses = []
        with self.pnet.bind(bound, stats), autocast(self.device, self.amp):
            for x, y in val:
                logits = self.pnet.base(self._input(x)).float()
                correct += (logits.argmax(1) == y).sum()
                losses.append(F.cross_entropy(logits, y, reduction="none"))
        per_image = torch.cat(losses) if losses else torch.zeros(1)
        n = max(len(per_image), 1)
        loss = float(per_image.mean())
        se = float(per_image.std() / math.sqrt(n)) if n > 1 else 0.0
        score = math.exp(-loss)
        return {"score": score, "loss": loss, "loss_se": se, "score_se": score * se,
                "accuracy": int(correct) / n, "seconds": time.perf_counter() - start}

    def score_many(self, archs: Iterable[Architecture | Mapping[str, int]]) -> list[dict[str, float]]:
        """:meth:`score` for every candidate, in order."""
        return [self.score(a) for a in archs]
