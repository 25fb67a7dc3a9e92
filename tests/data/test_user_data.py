"""Your own data: tensors, datasets and loaders as a DataBundle; class subsets; the class-count check."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nas_prune.data import batches, check_num_classes, load_data, make_bundle, select_classes, to_bundle
from nas_prune.errors import DataError


def _pair(n, classes, size=16, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, size, size), generator=g).to(dtype)
    y = torch.arange(n) % classes
    return x, y


def test_tensors_datasets_and_loaders_become_a_bundle():
    train, val = _pair(40, 7), _pair(14, 7, seed=1)
    data = make_bundle(train, val, name="mine")
    assert (data.num_classes, data.input_size, len(data.train), len(data.val), data.test is data.val) == (7, 16, 40, 14, True)
    x, y = next(batches(data.train, 8))
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32 and y.max() < 7  # grey uint8 -> normalised RGB
    floats = TensorDataset(torch.randn(20, 3, 16, 16), torch.arange(20) % 3)
    data = make_bundle(DataLoader(floats, batch_size=4), floats, floats, num_classes=5)
    assert data.num_classes == 5 and data.train is floats  # the loader's dataset, used as given


@pytest.mark.parametrize("train, val, kwargs, message", [
    (_pair(10, 3), _pair(4, 3), {"num_classes": 2}, "labels run 0..2 but num_classes is 2"),
    (_pair(10, 1), _pair(4, 1), {}, "single class"),
    ((torch.zeros(4, 3, 16, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])), _pair(4, 2), {}, "not square"),
    ((torch.zeros(4, 16, 16), torch.zeros(4)), _pair(4, 2), {}, r"must be \[N, C, H, W\]"),
    ([1, 2, 3], _pair(4, 2), {}, ""),
])
def test_bad_user_data_is_one_line(train, val, kwargs, message):
    with pytest.raises(DataError, match=message) as err:
        make_bundle(train, val, **kwargs)
    assert "\n" not in str(err.value)


def test_select_classes_renumbers_and_check_num_classes_names_both_counts(tiny_space):
    digits = load_data("digits", input_size=16)
    seven = select_classes(digits, range(7))
    assert seven.num_classes == 7 and int(seven.train.labels.max()) == 6 and len(seven.val) < len(digits.val)
    with pytest.raises(DataError, match="the model has 10 outputs but dataset digits.* has 7 classes"):
        check_num_classes(tiny_space, seven)
    check_num_classes(tiny_space, digits)
    with pytest.raises(DataError, match="takes 16x16 inputs"):
        check_num_classes(tiny_space, load_data("digits", input_size=32))
    generic = select_classes(make_bundle(TensorDataset(torch.randn(12, 3, 16, 16), torch.arange(12) % 4),
                                         TensorDataset(torch.randn(8, 3, 16, 16), torch.arange(8) % 4)), [3, 1])
    assert generic.num_classes == 2 and sorted({int(generic.train[i][1]) for i in range(len(generic.train))}) == [0, 1]
    with pytest.raises(DataError, match="not \\[12\\]"):
        select_classes(digits, [0, 12])


def test_to_bundle_takes_a_bundle_or_splits():
    digits = load_data("digits", input_size=16)
    assert to_bundle(digits) is digits
    assert to_bundle((_pair(10, 3), _pair(6, 3))).num_classes == 3
    assert to_bundle({"train": _pair(10, 3), "val": _pair(6, 3), "num_classes": 4}).num_classes == 4
    with pytest.raises(DataError, match="pass load_data"):
        to_bundle("digits")
