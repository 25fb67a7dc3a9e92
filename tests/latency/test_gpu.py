"""CUDA (IO binding) and TensorRT (engine cache) timing: run only where onnxruntime-gpu and a GPU exist."""

from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")
_PROVIDERS = ort.get_available_providers()


def _gpu_present() -> bool:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


cuda = pytest.mark.skipif("CUDAExecutionProvider" not in _PROVIDERS or not _gpu_present(),
                          reason="needs onnxruntime-gpu (CUDAExecutionProvider) and an NVIDIA GPU")
tensorrt = pytest.mark.skipif("TensorrtExecutionProvider" not in _PROVIDERS or not _gpu_present(),
                              reason="needs onnxruntime-gpu built with TensorRT and an NVIDIA GPU")


@pytest.mark.gpu
@cuda
def test_cuda_io_binding_timing(tiny_space):
    from nas_prune.latency import arch_onnx_bytes, measure_interleaved, measure_latency
    from nas_prune.on_device import SessionRunner, TimingSettings, make_session

    onnx = arch_onnx_bytes(tiny_space, tiny_space.full())
    settings = TimingSettings(provider="cuda")
    runner = SessionRunner(make_session(onnx, settings), settings)
    assert runner.binding is not None  # input and output stay on the GPU
    assert runner.session.get_providers()[0] == "CUDAExecutionProvider"
    stats = measure_latency(onnx, tiny_space.input_shape, provider="cuda", repeats=50)
    assert stats["median_ms"] > 0
    res = measure_interleaved({"a": onnx, "b": arch_onnx_bytes(tiny_space, tiny_space.uniform(0.25))},
                              tiny_space.input_shape, provider="cuda", rounds=3, runs_per_round=10)
    assert res["a"]["rel"] == 1.0 and res["b"]["rel"] > 0


@pytest.mark.gpu
@cuda
def test_cuda_table(tiny_space, tmp_path):
    from nas_prune.latency import LatencyTable, build_table

    build_table(tiny_space, provider="cuda", output=tmp_path / "t.json", nets=8, rounds=3, runs_per_round=5)
    table = LatencyTable.load(tmp_path / "t.json")
    assert table.meta["provider"] == "cuda" and table.predict(tiny_space.sample(0)) > 0


@pytest.mark.gpu
@tensorrt
def test_tensorrt_engine_cache(tiny_space, tmp_path):
    from nas_prune.latency import arch_onnx_bytes, measure_latency

    cache = tmp_path / "trt"
    onnx = arch_onnx_bytes(tiny_space, tiny_space.full())
    stats = measure_latency(onnx, tiny_space.input_shape, provider="tensorrt", repeats=20,
                            provider_options={"trt_engine_cache_path": str(cache)})
    assert stats["median_ms"] > 0
    assert any(cache.iterdir())  # the engine was cached for the next session


def test_unavailable_provider_is_a_clear_error(tiny_space):
    from nas_prune.errors import NasPruneError
    from nas_prune.latency import arch_onnx_bytes, measure_latency

    if "CUDAExecutionProvider" in _PROVIDERS:
        pytest.skip("CUDA is available here")
    with pytest.raises(NasPruneError, match="onnxruntime-gpu"):
        measure_latency(arch_onnx_bytes(tiny_space, tiny_space.full()), tiny_space.input_shape, provider="cuda")
