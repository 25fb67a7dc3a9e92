"""Broken datasets through the CLI: one line naming the problem, exit 2, an earlier result left alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.robustness._files import assert_one_line_error, assert_untouched, run_main, snapshot


def _png(path: Path, value: int) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), (value, value, value)).save(path)


def _folder(root: Path, classes: tuple[str, ...], n: int = 12) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            _png(root / c / f"{i}.png", 10 * i)
    return root


def _garbage(root: Path) -> str:
    _folder(root, ("cat", "dog"))
    (root / "dog" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated by a crash")
    return "5.png"


def _dangling(root: Path) -> str:
    _folder(root, ("cat", "dog"))
    (root / "cat" / "3.png").unlink()
    os.symlink(root / "nowhere.png", root / "cat" / "3.png")  # listed by the folder, unreadable
    return "3.png"


def _single(root: Path) -> str:
    _folder(root, ("only",))
    return "class"


def _empty(root: Path) -> str:
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    return str(root)


@pytest.mark.parametrize("make", [_garbage, _dangling, _single, _empty], ids=["garbage", "dangling", "single", "empty"])
def test_broken_image_folder(capsys, tmp_path, tiny_space_file, make):
    words = make(tmp_path / "images")
    work = tmp_path / "work"
    work.mkdir()
    (work / "teacher.pt").write_bytes(b"an earlier teacher")
    before = snapshot(tmp_path)
    code, _, err = run_main(capsys, "train", "--space", tiny_space_file, "--data", f"imagefolder:{tmp_path / 'images'}",
                            "--epochs", "1", "--batch-size", "1", "-o", work / "teacher.pt")  # batch 1: every image is read
    assert_one_line_error(code, err, words)
    assert_untouched(before, tmp_path)
    assert not (work / "teacher.pt.partial").exists()


@pytest.mark.parametrize("spec", ["imagefolder:/nonexistent/images", "cifar10:/nonexistent", "mnist", "imagefolder:"])
def test_unknown_or_missing_dataset(capsys, tmp_path, tiny_space_file, spec):
    code, _, err = run_main(capsys, "gates", "--space", tiny_space_file, "--data", spec, "--epochs", "1",
                            "-o", tmp_path / "gates.json")
    assert_one_line_error(code, err)
    assert not list(tmp_path.iterdir())
