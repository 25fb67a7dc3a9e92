"""Image folders stream from disk: worker processes, training-only augmentation, bad files skipped and
counted (or stopping the run in one line), and a scoring cache that decodes nothing once warm."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from nas_prune.data import ImageArrays, ImageFiles, augment_batch, batches, load_data, unaugmented
from nas_prune.errors import DataError


def _folder(root: Path, per_class: int = 8, size: int = 40, bad: int = 0) -> Path:
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", per_class), ("val", 3)):
        for c, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = (torch.rand(size, size + 8, 3, generator=g) * 120 + 100 * c).clamp(0, 255).to(torch.uint8)
                Image.fromarray(pixels.numpy()).save(folder / f"{i}.jpg", quality=90)
    for i in range(bad):
        (root / "train" / "dog" / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short by a crash")
    return root


def test_batches_come_from_worker_processes(tmp_path):
    root = _folder(tmp_path)
    before = ImageFiles.decodes
    data = load_data(f"imagefolder:{root}", input_size=16, workers=2)
    assert data.train.workers == 2
    xs = [x for x, _ in batches(data.train, 4, shuffle=True, seed=0)]
    assert sum(len(x) for x in xs) == 16 and xs[0].dtype == torch.float32
    assert ImageFiles.decodes == before  # decoded in the workers, not here
    data0 = load_data(f"imagefolder:{root}", input_size=16, workers=0)
    xs0 = [x for x, _ in batches(data0.train, 4, shuffle=True, seed=0)]
    assert ImageFiles.decodes == before + 16
    # the same seed: the same batches, augmentation included, whatever the worker count
    assert all(torch.equal(a, b) for a, b in zip(xs, xs0))


def test_augmentation_in_training_only_and_the_centre_crop_at_evaluation(tmp_path):
    root = _folder(tmp_path)
    data = load_data(f"imagefolder:{root}", input_size=16, workers=0)
    assert data.augment == "standard" and data.train.augment == "standard"
    assert data.val.augment == "none" and data.test.augment == "none"
    e1 = torch.cat([x for x, _ in batches(data.train, 4, seed=1)])
    e2 = torch.cat([x for x, _ in batches(data.train, 4, seed=2)])
    assert not torch.equal(e1, e2)  # other crops and flips each epoch
    v1 = torch.cat([x for x, _ in batches(data.val, 4)])
    v2 = torch.cat([x for x, _ in batches(data.val, 4)])
    assert torch.equal(v1, v2)  # evaluation: always the centre crop
    plain = load_data(f"imagefolder:{root}", input_size=16, workers=0, augment="none")
    p1 = torch.cat([x for x, _ in batches(plain.train, 4, seed=1)])
    assert torch.equal(p1, torch.cat([x for x, _ in batches(unaugmented(data.train), 4, seed=2)]))
    # the evaluation crop: shorter side to ceil(16 / 0.875) = 19, the centre 16 x 16 cut out
    img = Image.open(sorted((root / "val" / "cat").iterdir())[0]).convert("RGB")
    from torchvision.transforms import functional as TF

    want = TF.center_crop(TF.resize(TF.pil_to_tensor(img), 19, antialias=True), 16)
    got, _ = next(iter(batches(data.val, 1, normalize=False)))
    assert got.dtype == torch.uint8 and (got[0].int() - want.int()).abs().max() <= 2  # JPEG decoder rounding


def test_in_memory_training_split_is_augmented_when_asked():
    digits = load_data("digits", input_size=16)
    assert digits.augment == "none" and digits.train.augment == "none"  # a flipped 2 is not a 2
    aug = load_data("digits", input_size=16, augment="standard")
    assert aug.train.augment == "standard" and aug.val.augment == "none"
    x_plain = next(iter(batches(digits.train, 8, shuffle=True, seed=3)))[0]
    x_aug = next(iter(batches(aug.train, 8, shuffle=True, seed=3)))[0]
    assert x_plain.shape == x_aug.shape and not torch.equal(x_plain, x_aug)
    assert torch.equal(x_aug, next(iter(batches(aug.train, 8, shuffle=True, seed=3)))[0])  # seeded
    assert torch.equal(next(iter(batches(aug.val, 8)))[0], next(iter(batches(digits.val, 8)))[0])
    imgs = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    out = augment_batch(imgs, torch.Generator().manual_seed(0))
    assert out.shape == imgs.shape and out.dtype == torch.uint8
    assert isinstance(unaugmented(aug.train), ImageArrays) and unaugmented(aug.train).augment == "none"


def test_a_bad_jpeg_is_skipped_and_counted(tmp_path, capsys):
    root = _folder(tmp_path, bad=1)
    data = load_data(f"imagefolder:{root}", input_size=16, workers=0, max_bad_fraction=0.1)
    n = sum(len(y) for _, y in batches(data.train, 4, shuffle=True, seed=0))
    assert n == 15
    assert data.bad_files()["train"]["count"] == 1 and data.bad_files()["train"]["first"][0].endswith("dog/0.jpg")
    n2 = sum(len(y) for _, y in batches(data.train, 4, shuffle=True, seed=1))
    assert n2 == 15 and data.bad_files()["train"]["count"] == 1  # counted once, logged once
    warned = [line for line in capsys.readouterr().err.splitlines() if "cannot be read" in line]
    assert len(warned) == 1 and "dog/0.jpg" in warned[0]  # said once, with the file


def test_too_many_bad_files_stop_with_one_line_naming_them(tmp_path):
    root = _folder(tmp_path, bad=3)
    data = load_data(f"imagefolder:{root}", input_size=16, workers=0, max_bad_fraction=0.1)
    with pytest.raises(DataError) as err:
        for _ in batches(data.train, 16):
            pass
    msg = str(err.value)
    assert "\n" not in msg and "2 of 16 images" in msg and "over the 10.0% allowed" in msg and "dog/0.jpg" in msg
    strict = load_data(f"imagefolder:{_folder(tmp_path / 'b', bad=1)}", input_size=16, workers=0, strict=True)
    with pytest.raises(DataError, match=r"1 of 16 images .* cannot be read \(none allowed: --strict-data\)"):
        list(batches(strict.train, 16))


def test_scoring_decodes_nothing_once_the_cache_is_warm(tmp_path):
    from nas_prune.pruningnet import PruningNet, PruningNetEvaluator
    from nas_prune.space import ChannelSpace

    root = _folder(tmp_path)
    data = load_data(f"imagefolder:{root}", input_size=16, workers=0)
    space = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=2)
    pnet = PruningNet(space)
    ev = PruningNetEvaluator(pnet, data, recal_batches=2, batch_size=4)
    assert all(x.dtype == torch.uint8 for x in ev.recal) and ev.val_images == 6
    assert ev.cache_bytes == (8 + 6) * 3 * 16 * 16
    warm = ImageFiles.decodes
    ev.score(space.uniform(0.5))
    ev.score(space.full())
    assert ImageFiles.decodes == warm
    small = PruningNetEvaluator(pnet, data, recal_batches=1, batch_size=2, cache_mb=6 * 3 * 16 * 16 / 2**20)
    assert small.val_images == 4  # the memory cap, not the split, sets the validation subset


def test_the_command_line_takes_workers_augment_and_strict_data(capsys, tmp_path, tiny_space_file):
    import json

    from tests.conftest import run_main
    from tests.robustness._files import assert_one_line_error

    root = _folder(tmp_path / "images", per_class=6)
    out = tmp_path / "teacher.pt"
    code, stdout, err = run_main(capsys, "train", "--space", str(tiny_space_file), "--data", f"imagefolder:{root}",
                                 "--epochs", "1", "--batch-size", "4", "--workers", "1", "--augment", "none",
                                 "-o", str(out))
    assert code == 0, err
    assert 0.0 <= json.loads(stdout.strip().splitlines()[-1])["test_accuracy"] <= 1.0
    code, _, err = run_main(capsys, "train", "--space", str(tiny_space_file), "--data", f"imagefolder:{root}",
                            "--epochs", "1", "--augment", "heavy", "-o", str(tmp_path / "t2.pt"))
    assert_one_line_error(code, err, "augment 'heavy': use one of none, standard")
    (root / "train" / "cat" / "0.jpg").write_bytes(b"not a jpeg")
    code, _, err = run_main(capsys, "train", "--space", str(tiny_space_file), "--data", f"imagefolder:{root}",
                            "--epochs", "1", "--batch-size", "4", "--workers", "0", "--strict-data",
                            "-o", str(tmp_path / "t3.pt"))
    assert_one_line_error(code, err, "none allowed: --strict-data", "cat/0.jpg")


def test_run_config_records_the_augmentation_of_the_data():
    from nas_prune.errors import NasPruneError
    from nas_prune.pipeline import RunConfig

    assert RunConfig(data="imagefolder:/data/photos").augment == "standard"
    assert RunConfig(data="digits").augment == "none"
    assert RunConfig(data="digits", augment="standard").to_json()["augment"] == "standard"
    with pytest.raises(NasPruneError, match="augment 'all'"):
        RunConfig(augment="all")
    with pytest.raises(NasPruneError, match="workers -1"):
        RunConfig(workers=-1)
