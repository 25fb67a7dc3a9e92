"""End-to-end latency of whole networks in onnxruntime (the ruler tables are built and checked with)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from nas_prune.errors import InvalidFileError
from nas_prune.on_device import SessionRunner, TimingSettings, make_session, relative_records, summarize, time_models

__all__ = ["measure_latency", "measure_interleaved", "to_onnx_bytes", "arch_onnx_bytes"]

ModelLike = Any  # torch.nn.Module | str | os.PathLike | bytes (ONNX)


def to_onnx_bytes(model: ModelLike, input_shape: Sequence[int]) -> bytes:
    """ONNX bytes of ``model``: an ONNX file path or bytes as they are, an ``nn.Module`` exported.

    ``input_shape`` is ``(C, H, W)`` (or ``(B, C, H, W)``; the batch axis stays dynamic).
    """
    if isinstance(model, bytes):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise InvalidFileError(f"ONNX model {path} does not exist: check the path")
        return path.read_bytes()
    import tempfile

    import torch

    from nas_prune.export import export_onnx

    shape = tuple(int(s) for s in input_shape)
    example = torch.randn(1, *shape[-3:]) if len(shape) >= 3 else torch.randn(1, *shape)
    with tempfile.TemporaryDirectory() as tmp:
        out = export_onnx(model, example, Path(tmp) / "m.onnx")
        return out.read_bytes()


def arch_onnx_bytes(space: Any, arch: Any, base_model: Any = None) -> bytes:
    """Materialize ``arch`` of ``space`` (random weights: latency does not depend on them) as ONNX bytes."""
    from nas_prune.space import Architecture, materialize

    if not isinstance(arch, Architecture):
        arch = Architecture(space.id, dict(arch))
    model = materialize(base_model if base_model is not None else space.build_model(), arch, space=space)
    return to_onnx_bytes(model, space.input_shape)


def _settings(threads: int, provider: str, batch: int, opt_level: str, rounds: int, runs_per_round: int,
              warmup: int, percentile: float, provider_options: Mapping[str, Any] | None) -> TimingSettings:
    return TimingSettings(provider=provider, threads=threads, opt_level=opt_level, rounds=rounds,
                          runs_per_round=runs_per_round, warmup=warmup, percentile=percentile, batch=batch,
                          provider_options=dict(provider_options or {}))


def measure_latency(model_or_onnx_path: ModelLike, input_shape: Sequence[int], *, threads: int = 1,
                    provider: str = "cpu", repeats: int = 300, warmup: int = 20, batch: int = 1,
                    opt_level: str = "all", provider_options: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Time one network end to end: ``median_ms``, ``p10_ms``, ``iqr_ms``, ``mean_ms``, ``n``.

    Same session settings as the tables (provider, threads, optimisation level, IO binding on GPUs).
    On a shared, drifting machine prefer :func:`measure_interleaved` with a reference network.
    """
    settings = _settings(threads, provider, batch, opt_level, 1, max(1, repeats), warmup, 10.0, provider_options)
    runner = SessionRunner(make_session(to_onnx_bytes(model_or_onnx_path, input_shape), settings), settings)
    for _ in range(settings.warmup):
        runner.run()
    return summarize(runner.time(settings.runs_per_round))


def measure_interleaved(models: Mapping[str, ModelLike], input_shape: Sequence[int], *, threads: int = 1,
                        rounds: int = 30, runs_per_round: int = 20, warmup: int = 10, provider: str = "cpu",
                        batch: int = 1, opt_level: str = "all", reference: str | None = None,
                        percentile: float = 0.0,
                        provider_options: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """Time several networks round-robin so that ratios between them survive the machine's drift.

    Returns, per name: ``median_ms``, ``p10_ms``, ``iqr_ms``, ``mean_ms``, ``n``, ``round_ms`` (median
    over rounds of each round's ``percentile``) and ``rel`` / ``rel_iqr``: the latency relative to
    ``reference`` (default: the first model) measured in the same rounds.
    """
    settings = _settings(threads, provider, batch, opt_level, rounds, runs_per_round, warmup, percentile, provider_options)
    onnx = {name: to_onnx_bytes(m, input_shape) for name, m in models.items()}
    if not onnx:
        return {}
    ref = reference if reference is not None else next(iter(onnx))
    if ref not in onnx:
        raise KeyError(f"reference {ref!r} is not one of the models")
    return relative_records(time_models(onnx, settings), ref, settings)
