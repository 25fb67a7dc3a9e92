"""Multi-threaded CPU timing in the shared-pool worker: rounds come back, errors are typed, torch stays out."""

from __future__ import annotations

import pytest

from nas_prune.errors import InvalidFileError
from nas_prune.on_device import TimingSettings, _worker, close_workers, relative_records, time_models, uses_worker

FAST = {"rounds": 3, "runs_per_round": 2, "warmup": 1}


@pytest.fixture(scope="module")
def onnx_models(tiny_space):
    from nas_prune.latency._nets import NetFactory

    factory = NetFactory(tiny_space)
    return {"ref": factory.full_onnx, "small": factory.onnx(dict(tiny_space.sample(0).channels))}


def test_more_than_one_cpu_thread_goes_to_the_worker():
    assert uses_worker(TimingSettings(threads=2)) and not uses_worker(TimingSettings(threads=1))


def test_the_worker_times_every_model_with_a_shared_pool_and_no_torch(onnx_models, tmp_path):
    settings = TimingSettings(threads=2, **FAST)
    path = tmp_path / "small.onnx"
    path.write_bytes(onnx_models["small"])  # a path travels as it is, bytes through a file
    rounds = time_models({"ref": onnx_models["ref"], "small": path}, settings, seeds={"small": 3})
    assert list(rounds) == ["ref", "small"]
    assert all(len(r) == 3 and all(len(x) == 2 and min(x) > 0 for x in r) for r in rounds.values())
    stats = relative_records(rounds, "ref", settings)
    assert stats["ref"]["rel"] == pytest.approx(1.0) and stats["small"]["rel"] > 0
    hello = _worker._WORKERS[2].hello
    assert hello["ready"] and hello["threads"] == 2 and hello["torch"] is False


def test_a_bad_model_is_a_typed_error_and_the_worker_lives_on(onnx_models):
    settings = TimingSettings(threads=2, **FAST)
    time_models({"ref": onnx_models["ref"]}, settings)
    pid = _worker._WORKERS[2].proc.pid
    with pytest.raises(InvalidFileError, match="model 'broken' is not a valid ONNX model"):
        time_models({"ref": onnx_models["ref"], "broken": b"not onnx"}, settings)
    time_models({"ref": onnx_models["ref"]}, settings)
    assert _worker._WORKERS[2].proc.pid == pid


def test_a_dead_worker_is_replaced(onnx_models):
    settings = TimingSettings(threads=2, **FAST)
    time_models({"ref": onnx_models["ref"]}, settings)
    old = _worker._WORKERS[2].proc
    old.kill()
    old.wait()
    assert len(time_models({"ref": onnx_models["ref"]}, settings)["ref"]) == 3
    assert _worker._WORKERS[2].proc.pid != old.pid
    close_workers()
    assert not _worker._WORKERS


def test_one_thread_and_isolate_off_stay_in_process(onnx_models):
    close_workers()
    time_models(onnx_models, TimingSettings(threads=1, **FAST))
    time_models(onnx_models, TimingSettings(threads=2, **FAST), isolate=False)
    assert not _worker._WORKERS



def test_stray_output_of_the_worker_does_not_break_the_replies(onnx_models, tmp_path):
    """onnxruntime prints some notices to stdout; the replies travel on a stdout of their own."""
    import json
    import subprocess
    import sys

    model = tmp_path / "ref.onnx"
    model.write_bytes(onnx_models["ref"])
    request = json.dumps({"settings": TimingSettings(threads=2, **FAST).to_json(),
                          "models": [["ref", str(model), 0, "model 'ref'"]]})
    code = ("import sys; from nas_prune.on_device import _worker; real = _worker.time_interleaved\n"
            "def noisy(runners, settings):\n    print('EP Error: a notice on stdout')\n    return real(runners, settings)\n"
            "_worker.time_interleaved = noisy; _worker.serve(2, [sys.argv[1]])")
    proc = subprocess.run([sys.executable, "-c", code, request], capture_output=True, text=True, timeout=60)
    replies = [json.loads(line) for line in proc.stdout.splitlines()]  # every line is a reply
    assert replies[0]["ready"] and replies[1]["ok"] and len(replies[1]["rounds"]["ref"]) == 3
    assert "EP Error: a notice on stdout" in proc.stderr
