"""Property-based: random JSON fed to every loader raises only nas-prune's typed, one-line errors.

Covers the file formats nas-prune reads: spaces, architectures, latency tables, gates, the device
bundle's plan and results, the NNI trial config, and a run directory's stages, config and summary.
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas_prune.errors import NasPruneError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)

FIELDS = ("id", "genes", "layers", "model", "input_shape", "space", "channels", "entries", "meta", "runs", "widths",
          "settings", "reference", "structure", "records", "plan", "nets", "tables", "budgets_ms", "names", "order",
          "result", "seconds", "teacher", "final", "artifacts", "complete", "bundle_sha256")


# Documents shaped like ours (right format tag, random body) reach deeper into the validators.
def shaped(fmt: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({"format": st.just(fmt), "version": st.sampled_from([1, 2, "1"])},
                                 optional={k: json_values for k in FIELDS})


LOADERS = [
    ("nas_prune.space", "ChannelSpace", "nas-prune/space"),
    ("nas_prune.space", "Architecture", "nas-prune/arch"),
    ("nas_prune.latency", "LatencyTable", "nas-prune/latency-table"),
    ("nas_prune.gates", "Gates", "nas-prune/gates"),
]


def _loader(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{name} is not available")


def _expect_typed(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except NasPruneError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("module,name,fmt", LOADERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(json_values, st.nothing()) | st.just(None), raw=st.binary(max_size=40))
def test_random_json_never_escapes(tmp_path, module, name, fmt, doc, raw):
    cls = _loader(module, name)
    for payload in (json.dumps(doc).encode(), raw):
        path = tmp_path / "doc.json"
        path.write_bytes(payload)
        _expect_typed(lambda: cls.load(path))


@pytest.mark.parametrize("module,name,fmt", LOADERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_shaped_json_never_escapes(tmp_path, module, name, fmt, data):
    cls = _loader(module, name)
    doc = data.draw(shaped(fmt))
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    _expect_typed(lambda: cls.load(path))


# --- the other files nas-prune reads -------------------------------------------------------------

def _device_results(path: Path) -> None:
    from nas_prune.latency import import_results
    from nas_prune.on_device._runner import load_results

    load_results(path)
    import_results(path)  # the results become a table: every record is checked there


def _nni_trial_config(path: Path) -> None:
    from nas_prune.search.nni_trial import _read_config

    _read_config(str(path))


def _stage_record(path: Path) -> None:
    """``DIR/stages.json``: a damaged record may only cost re-running the stage, never a crash."""
    from nas_prune.pipeline._cache import StageCache

    (path.parent / "stages.json").write_bytes(path.read_bytes())
    cache = StageCache(path.parent)
    assert cache.run("space", lambda: {"ran": True}) is not None
    cache.seconds()


def _run_config(path: Path) -> None:
    """``DIR/config.json`` of a run directory: a mismatch or damage is a typed error."""
    from nas_prune.pipeline import RunConfig
    from nas_prune.pipeline._run import _check_config

    (path.parent / "config.json").write_bytes(path.read_bytes())
    _check_config(RunConfig(out=path.parent), path.parent)


def _run_summary(path: Path) -> None:
    """``DIR/summary.json``, read by ``nas-prune report``."""
    from nas_prune.report import write_report

    (path.parent / "summary.json").write_bytes(path.read_bytes())
    write_report(path.parent)


def _bundle_plan(path: Path) -> None:
    """``plan.json`` inside a device bundle, read by the on-device runner."""
    from nas_prune.on_device.__main__ import main

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("plan.json", path.read_bytes())
        zf.writestr("models/reference.onnx", b"\x08\x07")
    bundle = path.parent / "bundle.zip"
    bundle.write_bytes(buf.getvalue())
    code = main(["run", str(bundle), "-o", str(path.parent / "results.json")])
    assert code == 2  # a random plan is never a runnable one, and it is refused cleanly


FILE_LOADERS = {
    "device-results": (_device_results, "nas-prune/latency-results"),
    "nni-trial-config": (_nni_trial_config, "nas-prune/nni-trial"),
    "stages": (_stage_record, "x"),
    "run-config": (_run_config, "x"),
    "run-summary": (_run_summary, "x"),
}


def _format_of(kind: str) -> str:
    """The real format tag of a file kind (so shaped documents pass the first check)."""
    if kind == "device-results":
        from nas_prune.on_device._runner import RESULTS_FORMAT

        return RESULTS_FORMAT
    if kind == "nni-trial-config":
        from nas_prune.search.nni_trial import TRIAL_CONFIG_FORMAT

        return TRIAL_CONFIG_FORMAT
    if kind == "bundle-plan":
        from nas_prune.on_device._runner import BUNDLE_FORMAT

        return BUNDLE_FORMAT
    return FILE_LOADERS[kind][1]


def _record_shaped() -> st.SearchStrategy:
    """A stages.json-like document: stage names mapping to random records."""
    return st.dictionaries(st.sampled_from(["space", "teacher", "latency"]),
                           st.fixed_dictionaries({}, optional={"result": json_values, "seconds": json_values}) | json_values,
                           max_size=3)


@pytest.mark.parametrize("kind", sorted(FILE_LOADERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_other_files_never_escape(tmp_path, kind, data):
    fn, _ = FILE_LOADERS[kind]
    choice = data.draw(st.sampled_from(["raw", "json", "shaped"]))
    if choice == "raw":
        payload = data.draw(st.binary(max_size=40))
    elif choice == "json":
        payload = json.dumps(data.draw(json_values)).encode()
    elif kind == "stages":
        payload = json.dumps(data.draw(_record_shaped())).encode()
    else:
        payload = json.dumps(data.draw(shaped(_format_of(kind)))).encode()
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    path = folder / "doc.json"
    path.write_bytes(payload)
    _expect_typed(lambda: fn(path))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bundle_plan_is_refused(tmp_path, data):
    pytest.importorskip("onnxruntime")
    doc = data.draw(json_values | shaped(_format_of("bundle-plan")))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    _bundle_plan(path)
