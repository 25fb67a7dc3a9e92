"""The one call: ``nas_prune.prune(model, data, budget)`` runs the whole job from Python.

Like Model Optimizer's ``modelopt.torch.prune.prune(model, mode, constraints, ...)`` and NNCF's
``nncf.prune``: give the network (a module that holds its trained weights, or a model name with
``weights=``), the data and the latency budget; get back the pruned, distilled network and the
run's summary. Every stage is the one ``nas-prune run`` runs (:func:`nas_prune.pipeline.run_pipeline`),
cached in ``out`` so that calling again resumes.

Example::

    import torchvision, nas_prune

    net = torchvision.models.resnet18(num_classes=10)
    net.load_state_dict(torch.load("my_resnet18.pt", weights_only=True))
    result = nas_prune.prune(net, "imagefolder:/data/my-images", budget="0.5x", input_size=224,
                             mean="0.485,0.456,0.406", std="0.229,0.224,0.225", out="runs/resnet18")
    result.model          # the pruned network (nn.Module, eval mode, CPU)
    result.feasible       # whether it measured within the budget against the original
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_prune.errors import NasPruneError

__all__ = ["PruneResult", "prune", "register_module"]


@dataclass
class PruneResult:
    """What :func:`prune` returns.

    Attributes:
        model: The pruned, distilled network (eval mode, on the CPU).
        summary: The run's ``summary.json`` (accuracies, latencies, the verdict, stage times).
        run_dir: The run's folder (every stage's files, ``report.html``, ``distill/model.onnx``).
    """

    model: nn.Module
    summary: dict[str, Any]
    run_dir: Path

    @property
    def feasible(self) -> bool:
        """Whether the final network measured within the budget against the original."""
        return bool(self.summary["feasible"])

    @property
    def accuracy(self) -> float:
        """The final network's test accuracy."""
        return float(self.summary["final"]["accuracy"])

    @property
    def latency_ratio(self) -> float:
        """The final network's measured latency over the original's (same rounds)."""
        return float(self.summary["latency_ratio"])


def register_module(model: nn.Module) -> str:
    """Register ``model``'s architecture as a model of this process; returns its name.

    The factory builds a copy with freshly initialised weights (``reset_parameters``, under the
    caller's torch seed): the stages that need random weights (the gates) get them, and the trained
    weights travel separately (:func:`prune` saves them as the teacher's). The name
    (``python:<Class>-<hash>``) is known to this process only: other processes (search workers,
    ``nas-prune`` commands) need the model as ``package.module:factory``.
    """
    from nas_prune.models import register_model

    template = copy.deepcopy(model).cpu().eval()
    buf = io.BytesIO()
    torch.save({k: tuple(v.shape) for k, v in template.state_dict().items()}, buf)
    name = f"python:{type(model).__name__}-{hashlib.sha1(repr(template).encode() + buf.getvalue()).hexdigest()[:10]}"

    def factory(**_: Any) -> nn.Module:
        fresh = copy.deepcopy(template)
        for m in fresh.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
        return fresh

    register_model(name, factory)
    return name


def prune(model: str | nn.Module, data: str = "digits", budget: str = "0.5x", *, out: str | Path = "runs/prune",
          input_size: int = 32, weights: str | Path | None = None, **settings: Any) -> PruneResult:
    """Prune ``model`` to ``budget`` on ``data``: the whole job of ``nas-prune run``, from Python.

    Args:
        model: A module holding its trained weights (its architecture is registered for this process
            by :func:`register_module` and its weights become the teacher's), or a model name
            (``resnet18``, ``timm:NAME``, ``package.module:factory``).
        data: ``digits`` | ``fashion-mnist[:root]`` | ``cifar10:root`` | ``imagefolder:root``.
        budget: A fraction of the original's latency (``0.5x``) or an absolute one (``1.8ms``).
        out: The run's folder; calling again with the same settings resumes (finished stages are kept).
        input_size: Input height and width.
        weights: With a model name: your trained weights (a file, any usual layout), or torchvision's
            named weights (``IMAGENET1K_V1``, ``DEFAULT``: read from the local hub cache).
        **settings: Any other field of :class:`~nas_prune.pipeline.RunConfig` (``mean``, ``std``,
            ``device``, ``batch_size``, ``n_trials``, ``distill_epochs``, ``method``, ...).

    Returns:
        The pruned network, the summary and the run's folder (:class:`PruneResult`).

    Raises:
        NasPruneError: an unknown setting (the valid ones named), bad data, a budget it cannot read...
    """
    from nas_prune._io import atomic_write_bytes
    from nas_prune.export import load_model
    from nas_prune.pipeline import RunConfig, run_pipeline
    from nas_prune.space import ChannelSpace

    known = {f.name for f in dataclasses.fields(RunConfig) if f.init}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise NasPruneError(f"unknown setting(s) {', '.join(unknown)}: use fields of RunConfig "
                            f"({', '.join(sorted(known - {'model', 'data', 'budget', 'out'}))})")
    out = Path(out)
    fields: dict[str, Any] = {"data": data, "budget": budget, "out": out, "input_size": input_size, **settings}
    if isinstance(model, nn.Module):
        if weights is not None:
            raise NasPruneError("weights= is for a model given by name: a module brings its own weights")
        fields["model"] = register_module(model)
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
        fields["teacher"] = atomic_write_bytes(out / "your_weights.pt", buf.getvalue())
    else:
        fields["model"] = model
        if weights is not None:
            is_file = Path(weights).suffix in (".pt", ".pth", ".bin") or Path(weights).exists()
            fields["teacher" if is_file else "weights"] = Path(weights) if is_file else str(weights)
    summary = run_pipeline(RunConfig(**fields))
    space = ChannelSpace.load(out / "space.json")
    final = load_model(space, out / "distill" / "model.pt", what="the pruned network").eval()
    return PruneResult(final, summary, out)
