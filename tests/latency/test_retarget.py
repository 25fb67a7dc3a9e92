"""A table of one network for other classes: re-keyed, predicting the same, checked here before use."""

from __future__ import annotations

import pytest

from nas_prune.errors import SpaceMismatchError


@pytest.fixture(scope="module")
def three_classes():
    from nas_prune.space import ChannelSpace

    return ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=3)


def test_retarget_keeps_predictions_and_asks_for_a_check(tiny_table, tiny_space, three_classes):
    from nas_prune.latency import LatencyTable, foreign_reason, retarget_table

    assert three_classes.id != tiny_space.id
    out = retarget_table(tiny_table, three_classes)
    assert out.space_id == three_classes.id and out.meta["retargeted"]["from_space"] == tiny_space.id
    arch = dict(tiny_space.sample(3).channels)
    assert out.predict(arch) == pytest.approx(tiny_table.predict(arch))
    assert out.structure["layers"][-1]["out_ch"] == 3 and tiny_table.structure["layers"][-1]["out_ch"] == 10
    assert "retargeted from space" in (foreign_reason(out) or "")  # never trusted before a check here
    assert retarget_table(tiny_table, tiny_space) is tiny_table
    phone = LatencyTable.from_json({**tiny_table.to_json(), "meta": {**tiny_table.meta, "calibration": {
        "kind": "device", "device": "phone"}}})
    assert retarget_table(phone, three_classes).meta["calibration"]["kind"] == "device"  # a phone's stays the phone's


def test_retarget_refuses_another_input_size(tiny_table):
    from nas_prune.latency import retarget_table
    from nas_prune.space import ChannelSpace

    other = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=24, num_classes=10)
    with pytest.raises(SpaceMismatchError, match="cannot serve space .* differs in \\['positions'\\]"):
        retarget_table(tiny_table, other)


def test_shipped_table_for_other_classes_is_found_after_an_exact_one(tiny_table, tiny_table_file, three_classes,
                                                                     tmp_path):
    from nas_prune.latency import find_shipped_table

    (tmp_path / "vm").mkdir()
    tiny_table.save(tmp_path / "vm" / "ten.json")
    assert find_shipped_table(three_classes.id, 1, root=tmp_path) is None
    assert find_shipped_table(three_classes.id, 1, root=tmp_path, retarget_to=three_classes) == tmp_path / "vm" / "ten.json"
    assert find_shipped_table(three_classes.id, 2, root=tmp_path, retarget_to=three_classes) is None  # threads differ
    from nas_prune.latency import retarget_table

    retarget_table(tiny_table, three_classes).save(tmp_path / "vm" / "three.json")
    assert find_shipped_table(three_classes.id, 1, root=tmp_path, retarget_to=three_classes) == tmp_path / "vm" / "three.json"


@pytest.mark.parametrize("model", ["mobilenet_v2", "resnet18"])
def test_the_shipped_224_tables_serve_an_imagefolder_of_10_classes(model):
    """The 1000-class 224x224 host-CPU tables are found for a 10-class space and re-keyed to it."""
    from nas_prune.latency import LatencyTable, find_shipped_table, retarget_table
    from nas_prune.space import ChannelSpace

    space = ChannelSpace.from_name(model, input_size=224, num_classes=10)
    path = find_shipped_table(space.id, 1, retarget_to=space)
    assert path is not None and f"{model}-224_" in path.name
    shipped = LatencyTable.load(path)
    assert shipped.space_id != space.id and list(shipped.meta["input_shape"])[-2:] == [224, 224]
    table = retarget_table(shipped, space)
    assert table.predict(space.full()) > table.predict(space.uniform(0.5)) > 0
    assert shipped.meta.get("build_seconds") and not shipped.meta.get("emulated")
