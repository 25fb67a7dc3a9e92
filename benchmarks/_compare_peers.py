"""The peers of ``benchmarks/compare_methods.py``, as their users use them, and FLOPs counted one way.

Private helper of ``compare_methods.py``. Every peer returns an :class:`~nas_prune.space.Architecture`
of the benchmark's space (its channel counts read back per gene and snapped *down* to the space's
grid), so that every method is finished (distilled) and measured the same way.

* ``uniform``: :func:`nas_prune.search.uniform_under`, the widest uniform width under a target.
* Torch-Pruning (``tp-l1-global``, ``tp-groupnorm-global``, ``tp-l1-layer``):
  :class:`nas_prune.search.MagnitudePruner`, its ``pruning_ratio`` bisected until the pruned
  network's FLOPs (nas-prune's count) reach a FLOPs target.
* NVIDIA Model Optimizer FastNAS (``modelopt-fastnas``): ``modelopt.torch.prune.prune(model,
  mode="fastnas", constraints={"flops": "<pct>%"}, ...)`` with the user's validation accuracy as
  its ``score_func`` and a training loader for its BatchNorm calibration; the sensitivity map is
  checkpointed, so a second FLOPs target reuses it (as NVIDIA's examples do).

FLOPs are counted two ways for every architecture (:func:`describe`): nas-prune's count
(``space.count(arch)["flops"]``: multiply-accumulates of conv and linear layers per image) and
Torch-Pruning's counter (``tp.utils.count_ops_and_params`` on the materialized network: its MACs,
which also count BatchNorm, activations and pooling).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_prune.search import read_back
from nas_prune.space import Architecture, ChannelSpace

__all__ = ["FLOPS_COUNTING", "FastNAS", "describe", "modelopt_unavailable"]

#: How the two FLOPs ratios of a row are counted (the result JSON quotes this).
FLOPS_COUNTING = {
    "flops_ratio": "nas-prune's count, space.count(arch)['flops']: multiply-accumulates of conv and linear layers "
                   "per image, over the teacher's",
    "flops_ratio_tp": "Torch-Pruning's counter, tp.utils.count_ops_and_params(materialized network, one input): "
                      "its MACs (conv, linear, BatchNorm, activations, pooling), over the teacher's",
}


def tp_flops(space: ChannelSpace, arch: Architecture) -> int:
    """Torch-Pruning's count (MACs) of ``arch`` materialized from the space's model."""
    import torch_pruning as tp

    from nas_prune.space import materialize

    model = materialize(space.build_model(), arch, space=space).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        macs, _ = tp.utils.count_ops_and_params(model, space.example_input())
    return int(macs)


def describe(arch: Architecture, space: ChannelSpace, teacher: dict[str, int] | None = None) -> dict[str, Any]:
    """FLOPs and parameters of ``arch``, with both FLOPs ratios to the teacher (``teacher``: its own describe)."""
    c = space.count(arch)
    out: dict[str, Any] = {"flops": int(c["flops"]), "params": int(c["params"]), "flops_tp": tp_flops(space, arch)}
    ref = teacher or out
    out["flops_ratio"] = out["flops"] / ref["flops"]
    out["flops_ratio_tp"] = out["flops_tp"] / ref["flops_tp"]
    return out


def modelopt_unavailable() -> str | None:
    """Why NVIDIA Model Optimizer's FastNAS cannot run here (one line), or ``None`` when it imports."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            import modelopt.torch.prune  # noqa: F401
    except Exception as exc:  # any failure to import makes the row a skip, not a crash
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"nvidia-modelopt does not import ({type(exc).__name__}: {first}); pip install -e '.[bench]'"
    return None


class FastNAS:
    """NVIDIA Model Optimizer's FastNAS pruning of a trained model at a FLOPs target, read back into ``space``.

    Args:
        space: The channel space of ``model``.
        model: The trained (teacher) model; left untouched (each prune works on a copy).
        data: The benchmark's :class:`~nas_prune.data.DataBundle` (training batches calibrate
            BatchNorm, validation accuracy is the ``score_func``).
        checkpoint: Where FastNAS keeps its search state (the sensitivity map, reused by later targets).
        score_images: Validation images each score reads (FastNAS asks to subsample: it scores every
            channel choice of every layer once).
        calib_batches: Training batches for its BatchNorm calibration (FastNAS's default uses 50).
        batch_size: Batch size of both.
    """

    def __init__(self, space: ChannelSpace, model: nn.Module, data: Any, *, checkpoint: Path,
                 score_images: int = 2048, calib_batches: int = 50, batch_size: int = 128) -> None:
        from nas_prune.data import batches

        self.space, self.model, self.data, self.checkpoint = space, model, data, Path(checkpoint)
        self.score_batches = max(1, math.ceil(score_images / 256))
        self.loader = [(x, y) for x, y in batches(data.train, batch_size, shuffle=True, seed=0, max_batches=calib_batches)]
        self._cache: dict[float, Architecture] = {}
        self._named: dict[str, Architecture] = {}

    def _score(self, model: nn.Module) -> float:
        from nas_prune.training import evaluate

        return evaluate(model, self.data.val, batch_size=256, max_batches=self.score_batches, amp=False)

    def architecture(self, flops_fraction: float) -> Architecture:
        """FastNAS's pick at ``constraints={"flops": "<100 x flops_fraction>%"}`` (memoised)."""
        key = round(float(flops_fraction), 6)
        if key not in self._cache:
            self._cache[key] = self._prune(key)
        return self._cache[key]

    def _prune(self, fraction: float) -> Architecture:
        import modelopt.torch.prune as mtp

        model = copy.deepcopy(self.model).cpu().eval()
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        config = {"data_loader": self.loader, "collect_func": lambda batch: batch[0], "score_func": self._score,
                  "checkpoint": str(self.checkpoint), "verbose": False}
        quiet = io.StringIO()  # its progress bars and notes
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            try:
                pruned, _ = mtp.prune(model, mode="fastnas", constraints={"flops": f"{100 * fraction:.4f}%"},
                                      dummy_input=self.space.example_input(), config=config)
            except ValueError:  # the target is under its smallest subnet ("min" of its profile)
                if fraction >= 1.0:
                    raise
                return self.smallest()
        return read_back(self.space, pruned)

    def smallest(self) -> Architecture:
        """FastNAS's smallest subnet (every layer at its smallest choice): its pick when a target is out of reach."""
        import modelopt.torch.nas as mtn
        from modelopt.torch.prune.pruning import PruneModeRegistry

        if "min" not in self._named:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                model = mtn.convert(copy.deepcopy(self.model).cpu().eval(), "fastnas", registry=PruneModeRegistry)
                mtn.sample(model, sample_func=min)
                self._named["min"] = read_back(self.space, mtn.export(model))
        return self._named["min"]
