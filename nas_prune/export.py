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

__all__ = ["export_onnx", "save_state_dict", "load_checkpoint", "save_model", "load_model"]


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str], *, opset: int = 17,
                metadata: dict[str, Any] | None = None) -> Path:
    """Export ``model`` (eval mode) to ONNX with a dynamic batch axis, atomically.

    ``metadata`` entries are stored in the model's ``metadata_props`` (values as JSON), e.g. the
    input ``preprocess`` a deployment must apply: onnxruntime reads them with
    ``session.get_modelmeta().custom_metadata_map``.
    """
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
    data = buf.getvalue()
    if metadata:
        data = _with_metadata(data, metadata)
    return atomic_write_bytes(path, data)


def _with_metadata(data: bytes, metadata: dict[str, Any]) -> bytes:
    import json

    import onnx

    proto = onnx.load_from_string(data)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value, sort_keys=True)
    return proto.SerializeToString()


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


def save_model(model: nn.Module, path: str | os.PathLike[str], *, space_id: str,
               arch: dict[str, int] | None = None, **metadata: Any) -> Path:
    """Save a model of a space: its weights, the space id and (for a pruned model) its channels.

    :func:`load_model` rebuilds it from the space alone (weights-only loading).
    """
    return save_state_dict(model, path, format="nas-prune/model", space=space_id, channels=arch, **metadata)


def load_model(space: Any, path: str | os.PathLike[str], *, what: str = "model checkpoint") -> nn.Module:
    """Rebuild a model saved by :func:`save_model` for ``space`` (a :class:`~nas_prune.space.ChannelSpace`).

    A file that is not a nas-prune checkpoint is read as the user's trained weights of the
    unpruned network, in any layout :func:`nas_prune.pretrained.load_weights` reads.

    Raises:
        InvalidFileError: weights of another network, or unsafe to load.
        SpaceMismatchError: the checkpoint belongs to another space.
    """
    from nas_prune.errors import SpaceMismatchError
    from nas_prune.space import Architecture, materialize

    ckpt = load_checkpoint(path, what=what)
    if ckpt.get("format") != "nas-prune/model" or not isinstance(ckpt.get("state_dict"), dict):
        # the user's own trained weights (a plain state_dict, {"model": ...}, DDP prefixes...) of the unpruned network
        from nas_prune.pretrained import load_weights

        model = space.build_model()
        load_weights(model, path, space_id=space.id)
        return model.eval()
    if ckpt.get("space") != space.id:
        raise SpaceMismatchError(
            f"{what} {path} is for space {ckpt.get('space')!r}, not {space.id!r}: use the matching space file"
        )
    model = space.build_model()
    if ckpt.get("channels"):
        model = materialize(model, Architecture(space.id, ckpt["channels"]), space=space)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise InvalidFileError(f"{what} {path} does not fit its architecture ({str(exc).splitlines()[0]}): regenerate it") from None
    return model.eval()
