from __future__ import annotations

import pytest
import torch

from nas_prune.data import FASHION_MNIST_ROOT, batches, load_data
from nas_prune.errors import DataError
from nas_prune.training import TrainConfig, evaluate, fit


def test_digits_splits_are_deterministic():
    a, b = load_data("digits"), load_data("digits")
    assert (len(a.train), len(a.val), len(a.test)) == (1078, 359, 360)
    assert torch.equal(a.test.labels, b.test.labels)
    x, y = next(batches(a.train, 16))
    assert x.shape == (16, 3, 32, 32) and y.shape == (16,)
    assert abs(float(x.mean())) < 2


def test_train_subset_and_size():
    d = load_data("digits", input_size=16, train_subset=100, seed=3)
    assert len(d.train) == 100 and d.train.images.shape[-1] == 16


@pytest.mark.skipif(not __import__("os").path.isdir(FASHION_MNIST_ROOT), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist():
    d = load_data("fashion-mnist", train_subset=1000)
    assert len(d.train) == 1000 and len(d.val) == 5000 and len(d.test) == 10000
    assert d.num_classes == 10


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        load_data("mnist-please")
    with pytest.raises(DataError, match="cifar10"):
        load_data("cifar10")
    with pytest.raises(DataError, match="not found"):
        load_data(f"cifar10:{tmp_path}")
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_data(f"fashion-mnist:{tmp_path}")
    with pytest.raises(DataError, match="does not exist"):
        load_data(f"imagefolder:{tmp_path / 'nope'}")


def _png(path, value):
    from PIL import Image

    Image.new("RGB", (8, 8), (value, value, value)).save(path)


def test_imagefolder_and_broken_images(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            _png(tmp_path / cls / f"{i}.png", 30 * i)
    d = load_data(f"imagefolder:{tmp_path}", input_size=8)
    assert d.num_classes == 2 and len(d.train) == 16
    list(batches(d.train, 4))
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    d = load_data(f"imagefolder:{tmp_path}", input_size=8)
    with pytest.raises(DataError, match="broken.png"):
        for split in (d.train, d.val, d.test):
            list(batches(split, 4))


def test_single_class_folder(tmp_path):
    (tmp_path / "only").mkdir()
    for i in range(10):
        _png(tmp_path / "only" / f"{i}.png", i)
    with pytest.raises(DataError, match="single class"):
        load_data(f"imagefolder:{tmp_path}", input_size=8)


def test_empty_folder(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError):
        load_data(f"imagefolder:{tmp_path}", input_size=8)


def test_fit_learns_digits():
    d = load_data("digits", input_size=16)
    from tests.conftest import tiny_resnet

    model = tiny_resnet()
    before = evaluate(model, d.val)
    hist = fit(model, d.train, d.val, TrainConfig(epochs=6, batch_size=32, lr=0.1))
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert evaluate(model, d.val) > max(0.6, before + 0.3)


def test_with_train_subset_is_fixed_by_its_seed_and_keeps_the_other_splits(digits16):
    from nas_prune.data import with_train_subset

    a, b = with_train_subset(digits16, 200, seed=3), with_train_subset(digits16, 200, seed=3)
    assert len(a.train) == 200 and a.val is digits16.val and a.test is digits16.test
    assert a.train.labels.tolist() == b.train.labels.tolist()
    assert with_train_subset(digits16, 200, seed=4).train.labels.tolist() != a.train.labels.tolist()
    assert with_train_subset(digits16, 10**6) is digits16
