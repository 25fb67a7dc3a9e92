"""A hostile device bundle leaves the user's files alone: a zip slip or a malformed ONNX is refused before any write."""

from __future__ import annotations

import zipfile

import pytest

from tests.robustness._files import assert_untouched, snapshot


@pytest.fixture(scope="module")
def real_bundle(tiny_space, tmp_path_factory):
    from nas_prune.latency import write_bundle

    return write_bundle(tiny_space, tmp_path_factory.mktemp("bundle") / "bundle.zip", nets=2, rounds=2)


def _copy_with(src, dst, name: str, data: bytes, *, replace: bool = False):  # noqa: ANN001, ANN202
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.infolist():
            if not (replace and item.filename == name):
                b.writestr(item, a.read(item.filename))
        b.writestr(name, data)
    return dst


@pytest.mark.parametrize("member,data,replace,words", [
    ("../../results.json", b'{"owned": true}', False, "zip slip"),
    ("models/../../../etc-passwd", b"x", False, "zip slip"),
    ("models/n0001.onnx", b"\x08\x07\x12\x04junk", True, "n0001.onnx"),
], ids=["parent", "nested-parent", "malformed-onnx"])
def test_hostile_bundle_damages_nothing(capsys, tmp_path, real_bundle, member, data, replace, words):
    from nas_prune.on_device.__main__ import main

    work = tmp_path / "device"
    work.mkdir()
    bundle = _copy_with(real_bundle, work / "bundle.zip", member, data, replace=replace)
    results = work / "results.json"
    results.write_text('{"earlier": "results of another bundle"}')
    before = snapshot(tmp_path)
    code = main(["run", str(bundle), "-o", str(results)])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and words in lines[0] and str(bundle) in lines[0], err
    assert_untouched(before, tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(before_names(before))


def before_names(before: dict) -> list[str]:
    """Names of the files and folders that existed before (nothing may be added outside the runner's temp dir)."""
    names = set()
    for rel in before:
        parts = rel.split("/")
        names.update(parts)
    return list(names)
