"""The network's preprocessing: parsed once, applied by every split, recorded."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from nas_prune.data import DEFAULT_PREPROCESS, Preprocess, load_data, parse_channel_values
from nas_prune.errors import DataError


def test_one_value_or_one_per_channel():
    assert parse_channel_values("0.286", what="mean") == (0.286,)
    assert parse_channel_values("0.485, 0.456,0.406", what="mean") == (0.485, 0.456, 0.406)
    for bad in ("0.1,0.2", "", "a", "1,2,3,4", "nan"):
        with pytest.raises(DataError, match="one number for every channel or one per channel"):
            parse_channel_values(bad, what="--mean")
    with pytest.raises(DataError, match="positive"):
        Preprocess((0.5,), (0.0,))


def test_normalize_per_channel_and_grey_made_three_channels():
    p = Preprocess((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    grey = torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)
    x = p.normalize(grey)
    assert x.shape == (2, 3, 4, 4)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]))
    assert Preprocess.from_json(p.to_json()) == Preprocess(p.mean, p.std, None, p.source)
    assert Preprocess.from_options(None, None) is DEFAULT_PREPROCESS
    assert Preprocess.from_options("0.3", None).std == (0.25,)


def test_every_split_of_a_dataset_uses_the_preprocessing():
    p = Preprocess((0.2,), (0.1,), source="--mean/--std")
    data = load_data("digits", input_size=16, preprocess=p)
    default = load_data("digits", input_size=16)
    assert data.preprocess == p
    for split in ("train", "val", "test"):
        x, _ = getattr(data, split)[0]
        x0, _ = getattr(default, split)[0]
        # the same pixels: (v - 0.2) / 0.1 against (v - 0.5) / 0.25
        assert torch.allclose(x * 0.1 + 0.2, x0 * 0.25 + 0.5, atol=1e-5), split


def test_image_folders_resize_and_centre_crop(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            im = Image.new("RGB", (40, 20), (255, 0, 0))
            for x in range(10):  # a black border left and right: cut off by the centre crop
                for y in range(20):
                    im.putpixel((x, y), (0, 0, 0))
                    im.putpixel((39 - x, y), (0, 0, 0))
            im.save(tmp_path / cls / f"{i}.jpg")
    default = load_data(f"imagefolder:{tmp_path}", input_size=16)
    cropped = load_data(f"imagefolder:{tmp_path}", input_size=16,
                        preprocess=Preprocess((0.0,), (1.0,), resize=16))
    x, _ = cropped.val[0]
    assert x.shape == (3, 16, 16) and x[0].min() > 0.8  # only the red centre is left
    xs, _ = default.val[0]  # the aspect ratio kept: shorter side to 16 / 0.875 = 19, centre 16 cut out
    assert xs.shape == (3, 16, 16) and xs[0].min() > 0.8
