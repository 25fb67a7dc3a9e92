"""Writing models: ONNX export and weights-only checkpoints."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_prune._io import atomic_write_bytes
from nas_prune.errors import InvalidFileError

__all__ = ["export_onnx", "save_state_dict", "load_checkpoint"]


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str], *, opset: int = 17) -> Path:
    """Export ``model`` (eval mode) to ONNX with a dynamic batch axis, atomically."""
    model = model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model, (example_input,), buf, input_names=["input"], output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset, dynamo=False,
            )
        except Exception:  # e.g. an adaptive pool the TorchScript exporter cannot express
            buf = io.BytesIO(_export_dynamo(model, example_input, max(opset, 18)))
    return atomic_write_bytes(path, buf.getvalue())


def _export_dynamo(model: nn.Module, example_input: torch.Tensor, opset: int) -> bytes:
    """Export through torch.export (slower, covers more ops); its chatter is kept off stdout."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        program = torch.onnx.export(
            model, (example_input,), dynamo=True, input_names=["input"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset,
        )
    with tempfile.TemporaryDirectory() as tmp:
        program.save(os.path.join(tmp, "m.onnx"))
        return Path(tmp, "m.onnx").read_bytes()


def save_state_dict(model: nn.Module | dict[str, Any], path: str | os.PathLike[str], **extra: Any) -> Path:
    """Save a state dict (plus plain metadata) atomically, loadable with ``weights_only=True``."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    buf = io.BytesIO()
    torch.save({"state_dict": state, **extra}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike[str], *, what: str = "checkpoint") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; anything else is a one-line :class:`InvalidFileError`.

    A pickle payload (code to run on load) is refused by torch's weights-only unpickler.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidFileError(f"{what} {path} does not exist: check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidFileError(
            f"{what} {path} cannot be loaded safely ({first[:160]}): use a checkpoint written by nas-prune"
        ) from None
    if not isinstance(obj, dict):
        raise InvalidFileError(f"{what} {path} is not a nas-prune checkpoint (a {type(obj).__name__}): use one written by nas-prune")
    return obj
