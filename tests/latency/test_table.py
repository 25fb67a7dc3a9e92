"""Building, saving, loading (schema errors) and predicting with a table; measuring."""

from __future__ import annotations

import json
import time

import pytest

from nas_prune.errors import InvalidArchitectureError, InvalidFileError, SpaceMismatchError
from nas_prune.latency import LatencyTable, arch_onnx_bytes, measure_interleaved, measure_latency
from nas_prune.space import Architecture


def test_table_records_what_it_is(tiny_table, tiny_space):
    meta = tiny_table.meta
    for key in ("device", "cpu_model", "onnxruntime", "provider", "provider_options", "threads", "opt_level",
                "input_shape", "batch", "date", "repeats"):
        assert key in meta, key
    assert meta["device"] == "test-vm" and meta["threads"] == 1 and meta["input_shape"] == list(tiny_space.input_shape)
    assert tiny_table.space_id == tiny_space.id
    assert tiny_table.reference_channels == dict(tiny_space.uniform(0.5).channels)
    assert tiny_table.relative(tiny_space.uniform(0.5)) == pytest.approx(1.0, abs=0.3)
    assert len(tiny_table.entries) == 12
    for e in tiny_table.entries:
        assert e["rel"] > 0 and e["rel_iqr"] >= 0 and e["median_ms"] > 0 and e["iqr_ms"] >= 0


def test_predict_plain_rescaled_and_dict(tiny_table, tiny_space):
    arch = tiny_space.sample(0)
    ms = tiny_table.predict(arch)
    assert ms > 0
    assert tiny_table.predict(dict(arch.channels)) == ms
    assert tiny_table.predict(arch, reference_ms=2 * tiny_table.reference_ms) == pytest.approx(2 * ms)
    small, full = tiny_table.predict(tiny_space.uniform(0.25)), tiny_table.predict(tiny_space.full())
    assert small <= full


def test_a_rescaled_view_predicts_on_its_own_clock(tiny_table, tiny_space):
    from nas_prune.budget import LatencyPredictor
    from nas_prune.errors import NasPruneError
    from nas_prune.gates import Budget
    from nas_prune.search import LatencyBudget

    arch = tiny_space.sample(0)
    view = tiny_table.rescaled(3 * tiny_table.reference_ms, name="phone")
    assert view.predict(arch) == pytest.approx(3 * tiny_table.predict(arch))
    assert view.relative(arch) == tiny_table.relative(arch)
    assert (view.meta, view.settings, view.space_id, view.name) == (tiny_table.meta, tiny_table.settings,
                                                                    tiny_table.space_id, "phone")
    assert tiny_table.rescaled().predict(arch) == tiny_table.predict(arch)
    predictor: LatencyPredictor = view  # the one protocol budgets, gates and searches take
    (b,) = LatencyBudget.for_tables([predictor], ["0.5x"], reference=tiny_space.full())
    assert b.budget_ms == pytest.approx(0.5 * view.predict(tiny_space.full()))
    bound = Budget("latency", 0.5, view, relative=True).bind(tiny_space)
    assert bound.limit == pytest.approx(b.budget_ms)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(NasPruneError, match="not positive"):
            tiny_table.rescaled(bad)


def test_predict_is_fast(tiny_table, tiny_space):
    archs = [tiny_space.sample(s) for s in range(20)]
    t = time.perf_counter()
    for _ in range(100):
        for a in archs:
            tiny_table.predict(a)
    assert (time.perf_counter() - t) / 2000 < 1e-3  # loose bound for a loaded CI box; see benchmarks


def test_another_space_is_a_clear_error(tiny_table, tiny_space):
    with pytest.raises(SpaceMismatchError, match="profile a table"):
        tiny_table.check_space("resnet18-32px-10c-xxxx")
    tiny_table.check_space(tiny_space)
    with pytest.raises(SpaceMismatchError):
        tiny_table.predict(Architecture("other-space", dict(tiny_space.full().channels)))
    with pytest.raises(InvalidArchitectureError):
        tiny_table.predict({"layer4.1.conv1": 64})


def test_save_load_roundtrip(tiny_table, tiny_space, tmp_path):
    path = tiny_table.save(tmp_path / "t.json")
    again = LatencyTable.load(path)
    arch = tiny_space.sample(5)
    assert again.predict(arch) == tiny_table.predict(arch)


@pytest.mark.parametrize("edit, match", [
    (lambda o: o.update(format="something"), "format"),
    (lambda o: o.update(version=99), "version"),
    (lambda o: o["model"]["coef"].pop(), "coef"),
    (lambda o: o["reference"].update(ms=-1.0), "reference.ms"),
    (lambda o: o.pop("structure"), "structure"),
    (lambda o: o["model"].update(block="16"), "block"),
])
def test_schema_errors_are_one_line(tiny_table_file, tmp_path, edit, match):
    obj = json.loads(tiny_table_file.read_text())
    edit(obj)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj))
    with pytest.raises(InvalidFileError, match=match) as info:
        LatencyTable.load(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


@pytest.mark.parametrize("text", ["{\"format\": \"nas-prune/latency-table\", \"version\": 1, \"x\": NaN}",
                                  "{\"format\": \"nas-prune/latency-table\", \"version\": 1, \"x\": 1e999}",
                                  "{\"format\": \"nas-prune/latency-ta", ""])
def test_non_finite_or_truncated_tables_are_refused(tmp_path, text):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(InvalidFileError):
        LatencyTable.load(bad)
    with pytest.raises(InvalidFileError, match="does not exist"):
        LatencyTable.load(tmp_path / "missing.json")


def test_measure_latency_and_interleaved(tiny_space, tmp_path):
    onnx = tmp_path / "full.onnx"
    onnx.write_bytes(arch_onnx_bytes(tiny_space, tiny_space.full()))
    stats = measure_latency(onnx, tiny_space.input_shape, repeats=20, warmup=2)
    assert stats["n"] == 20 and 0 < stats["p10_ms"] <= stats["median_ms"] and stats["iqr_ms"] >= 0
    small = arch_onnx_bytes(tiny_space, tiny_space.uniform(0.25))
    res = measure_interleaved({"teacher": onnx, "student": small}, tiny_space.input_shape, rounds=3,
                              runs_per_round=5, warmup=1)
    assert set(res) == {"teacher", "student"}
    assert res["teacher"]["rel"] == 1.0 and res["student"]["rel"] > 0 and res["student"]["n"] == 15
    with pytest.raises(InvalidFileError, match="not a valid ONNX"):
        measure_latency(b"not onnx", tiny_space.input_shape, repeats=2)


def test_measure_latency_takes_a_torch_module(tiny_space):
    model = tiny_space.build_model()
    stats = measure_latency(model, tiny_space.input_shape, repeats=10, warmup=1, threads=2)
    assert stats["median_ms"] > 0


def test_multithreaded_tables_default_to_more_rounds(tiny_space, tmp_path):
    """Every core is in a multi-threaded measurement: the default doubles the rounds (30 -> 60)."""
    from nas_prune.latency import build_table

    one = build_table(tiny_space, threads=1, nets=4, runs_per_round=1, warmup=1, output=tmp_path / "t1.json")
    two = build_table(tiny_space, threads=2, nets=4, runs_per_round=1, warmup=1, output=tmp_path / "t2.json")
    assert (one.settings["rounds"], two.settings["rounds"]) == (30, 60)
    assert LatencyTable.load(tmp_path / "t2.json").settings["rounds"] == 60


def test_shipped_tables_are_package_data(tmp_path):
    from pathlib import Path

    import nas_prune.latency
    from nas_prune.latency import find_shipped_table, shipped_tables, shipped_tables_dir

    assert shipped_tables_dir() == Path(nas_prune.latency.__file__).parent / "tables"
    tables = shipped_tables()
    assert len(tables) == 6 and all(p.suffix == ".json" for p in tables)  # 32x32 1-thread AMD (2), 224x224 and 32x32 2-thread Intel (4)
    space_id = LatencyTable.load(tables[0]).space_id
    one = find_shipped_table(space_id, 1)
    assert one is not None and LatencyTable.load(one).settings["threads"] == 1
    assert find_shipped_table(space_id, 3) is None and find_shipped_table("nope", 1) is None
    assert find_shipped_table(space_id, 1, root=tmp_path) is None  # another folder: searched instead
    (tmp_path / "mine.json").write_bytes(one.read_bytes())
    assert find_shipped_table(space_id, 1, root=tmp_path) == tmp_path / "mine.json"
    link = Path(__file__).resolve().parents[2] / "latency_tables"  # the README's path in a checkout
    assert link.resolve() == shipped_tables_dir().resolve()
