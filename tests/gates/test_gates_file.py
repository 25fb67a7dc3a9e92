"""The gates file: round trip, validation, order, prior."""

from __future__ import annotations

import json

import pytest

from nas_prune.errors import InvalidFileError, SpaceMismatchError
from nas_prune.gates import Gates
from nas_prune.space import ChannelSpace, materialize


def test_round_trip(tiny_gates, tmp_path):
    path = tiny_gates.save(tmp_path / "gates.json")
    loaded = Gates.load(path)
    assert loaded == tiny_gates
    assert loaded.ratios == [0.3, 0.6] and loaded.seeds == [0, 1]
    obj = json.loads(path.read_text())
    assert obj["format"] == "nas-prune/gates" and set(obj["prior"]) == set(tiny_gates.widths)


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda o: "not json {", "not valid JSON"),
        (lambda o: {**o, "format": "other"}, "not a nas-prune gates file"),
        (lambda o: {**o, "version": 99}, "version"),
        (lambda o: {**o, "runs": []}, "no runs"),
        (lambda o: {**o, "widths": {**o["widths"], "head.0": 5}}, "gate values"),
        (lambda o: {**o, "runs": [{**o["runs"][0], "gates": {**o["runs"][0]["gates"], "head.0": [2.0] * 24}}]},
         "gate values in"),
        (lambda o: {**o, "runs": [{k: v for k, v in o["runs"][0].items() if k != "ratio"}]}, "KeyError"),
    ],
)
def test_bad_file_is_a_one_line_error(tiny_gates, tmp_path, mutate, problem):
    obj = mutate(tiny_gates.to_json())
    path = tmp_path / "bad.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    with pytest.raises(InvalidFileError, match=problem) as err:
        Gates.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_nan_is_refused(tiny_gates, tmp_path):
    text = json.dumps(tiny_gates.to_json()).replace('"val_accuracy": ', '"val_accuracy": NaN, "x": ', 1)
    (tmp_path / "nan.json").write_text(text)
    with pytest.raises(InvalidFileError):
        Gates.load(tmp_path / "nan.json")


def test_check_space(tiny_gates, tiny_space):
    tiny_gates.check_space(tiny_space)
    other = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=5)
    with pytest.raises(SpaceMismatchError, match="learn gates for this space"):
        tiny_gates.check_space(other)


def test_order_is_by_gate_and_drives_materialize(tiny_gates, tiny_space):
    order = tiny_gates.order()
    scores = tiny_gates.scores()
    for gene, idx in order.items():
        assert sorted(idx) == list(range(tiny_gates.widths[gene]))
        assert [scores[gene][i] for i in idx] == sorted(scores[gene], reverse=True)
    assert tiny_gates.order("head.0") == {"head.0": order["head.0"]}
    arch = tiny_space.uniform(0.5)
    base = tiny_space.build_model()
    pruned = materialize(base, arch, importance=order, space=tiny_space)
    kept = sorted(order["head.0"][: arch.channels["head.0"]])
    assert pruned.head[0].weight.shape[0] == arch.channels["head.0"]
    assert (pruned.fc.weight == base.fc.weight[:, kept]).all()  # the top-gated channels survive


def test_prior_is_the_spread_of_kept_widths(tiny_gates):
    kept = [r.kept_widths() for r in tiny_gates.runs]
    for gene, (mean, std) in tiny_gates.prior.items():
        xs = [k[gene] for k in kept]
        assert mean == pytest.approx(sum(xs) / len(xs))
        assert std == pytest.approx((sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5)
        assert 1 <= mean <= tiny_gates.widths[gene]
    # a lower target ratio keeps fewer channels overall
    low = sum(sum(r.kept_widths().values()) for r in tiny_gates.runs if r.ratio == 0.3)
    high = sum(sum(r.kept_widths().values()) for r in tiny_gates.runs if r.ratio == 0.6)
    assert low < high


def test_values_per_ratio(tiny_gates):
    vals = tiny_gates.values
    assert set(vals) == {0.3, 0.6}
    assert all(len(v) == tiny_gates.widths[g] for per in vals.values() for g, v in per.items())
