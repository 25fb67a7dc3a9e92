"""Property-based: random JSON fed to every loader raises only nas-prune's typed errors."""

from __future__ import annotations

import importlib
import json

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

# Documents shaped like ours (right format tag, random body) reach deeper into the validators.
def shaped(fmt: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({"format": st.just(fmt), "version": st.sampled_from([1, 2, "1"])},
                                 optional={k: json_values for k in ("id", "genes", "layers", "model", "input_shape",
                                                                     "space", "channels", "entries", "meta", "runs")})


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


@pytest.mark.parametrize("module,name,fmt", LOADERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(json_values, st.nothing()) | st.just(None), raw=st.binary(max_size=40))
def test_random_json_never_escapes(tmp_path, module, name, fmt, doc, raw):
    cls = _loader(module, name)
    for payload in (json.dumps(doc).encode(), raw):
        path = tmp_path / "doc.json"
        path.write_bytes(payload)
        try:
            cls.load(path)
        except NasPruneError as exc:
            assert "\n" not in str(exc)


@pytest.mark.parametrize("module,name,fmt", LOADERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_shaped_json_never_escapes(tmp_path, module, name, fmt, data):
    cls = _loader(module, name)
    doc = data.draw(shaped(fmt))
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    try:
        cls.load(path)
    except NasPruneError as exc:
        assert "\n" not in str(exc)
