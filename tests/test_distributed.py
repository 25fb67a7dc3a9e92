"""torch.distributed: 2 processes with half of each batch take the same steps as 1 process with all of it.

The processes are real (``torch.multiprocessing.spawn``, the ``gloo`` backend on the CPU, a file
rendezvous). The networks here have no BatchNorm: with it, each process normalises its own share
of the batch (DDP on CPUs), which is a different computation from one process normalising all of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from nas_prune.distributed import World, shard

BATCH = 32
TRAIN = 4 * BATCH  # four steps


def plain_cnn(num_classes: int = 10) -> nn.Module:
    """A CNN without BatchNorm (a space's factory)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def _data():
    from nas_prune.data import load_data, make_bundle

    d = load_data("digits", input_size=16, augment="none")
    idx = torch.arange(TRAIN)
    return make_bundle(d.train.subset(idx), d.val.subset(torch.arange(64)), num_classes=10)


def _teacher(out: Path) -> dict[str, torch.Tensor]:
    from nas_prune.training import TrainConfig, fit, set_seed

    set_seed(0)
    model = plain_cnn()
    data = _data()
    fit(model, data.train, None, TrainConfig(epochs=1, batch_size=BATCH, lr=0.05, seed=0, label="teacher"))
    return model.state_dict()


def _pnet(out: Path) -> dict[str, torch.Tensor]:
    from nas_prune.pruningnet import train_pruningnet
    from nas_prune.space import ChannelSpace

    space = ChannelSpace.from_name("tests.test_distributed:plain_cnn", input_size=16, num_classes=10)
    pnet = train_pruningnet(space, _data(), epochs=1, batch_size=BATCH, seed=0, checkpoint=out / "pnet.ckpt")
    return pnet.state_dict()


def _distill(out: Path) -> dict[str, torch.Tensor]:
    from nas_prune.distill import DistillConfig, distill
    from nas_prune.space import ChannelSpace
    from nas_prune.training import set_seed

    space = ChannelSpace.from_name("tests.test_distributed:plain_cnn", input_size=16, num_classes=10)
    set_seed(1)
    teacher = plain_cnn()
    distill(space, space.uniform(0.5), teacher, _data(), method="kd", init="scratch", epochs=1, seed=0,
            out_dir=out, config=DistillConfig(batch_size=BATCH), measure_latency=False)
    if not (out / "model.pt").exists():
        return {}  # ranks other than 0 write nothing
    from nas_prune.export import load_checkpoint

    return load_checkpoint(out / "model.pt")["state_dict"]


STAGES = {"teacher": _teacher, "pnet": _pnet, "distill": _distill}


def _count_student_batches(module: nn.Module, args: tuple) -> None:
    """A global forward pre-hook: the batch size of every training-mode first convolution."""
    if module.training and isinstance(module, nn.Conv2d) and module.in_channels == 3:
        _FORWARDS.append(int(args[0].shape[0]))


_FORWARDS: list[int] = []


def _worker(rank: int, world: int, stage: str, tmp: str) -> None:
    import torch.distributed as dist

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    import nas_prune.training as training

    seen: list[int] = []  # the images of every training batch this process read
    real = training.batches

    def spy(*args, **kwargs):
        for x, y in real(*args, **kwargs):
            seen.append(len(y))
            yield x, y

    training.batches = spy
    nn.modules.module.register_module_forward_pre_hook(_count_student_batches)
    try:
        state = STAGES[stage](Path(tmp) / f"rank{rank}")
        seen = _FORWARDS if stage == "distill" else seen  # the distillation reads its batches itself
        torch.save({"state": state, "seen": torch.tensor(seen)}, Path(tmp) / f"{stage}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _one_process(stage: str, tmp: Path) -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    return STAGES[stage](tmp / "single")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_two_processes_take_the_steps_of_one(stage, tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    ref = _one_process(stage, tmp_path)
    mp.spawn(_worker, args=(2, stage, str(tmp_path)), nprocs=2, join=True)
    saved = [torch.load(tmp_path / f"{stage}-rank{r}.pt", weights_only=True) for r in range(2)]
    for s in saved:  # each process read half of every batch of the 4 steps
        assert s["seen"].tolist() == [BATCH // 2] * (TRAIN // BATCH)
    states = [s["state"] for s in saved if s["state"]]  # the distillation: rank 0's model.pt
    assert states[0].keys() == ref.keys()
    for k, v in ref.items():
        for st in states:
            torch.testing.assert_close(st[k], v, rtol=1e-4, atol=1e-5, msg=f"{stage}: {k}")
    if stage == "pnet":  # only rank 0 wrote the checkpoint
        assert (tmp_path / "rank0" / "pnet.ckpt").exists() and not (tmp_path / "rank1" / "pnet.ckpt").exists()


def test_each_process_reads_its_share_of_the_same_global_batches(digits16):
    from nas_prune.data import batches

    full = list(batches(digits16.train, 8, shuffle=True, seed=3, drop_last=True, max_batches=3))
    parts = [list(batches(digits16.train, 8, shuffle=True, seed=3, drop_last=True, max_batches=3,
                          world=World(rank, 2, rank))) for rank in range(2)]
    for i, (x, y) in enumerate(full):
        torch.testing.assert_close(torch.cat([parts[0][i][0], parts[1][i][0]]), x)
        assert torch.equal(torch.cat([parts[0][i][1], parts[1][i][1]]), y)


def test_a_batch_that_does_not_split_is_one_line():
    from nas_prune.errors import NasPruneError

    assert shard(8, World(1, 2, 1)) == slice(4, 8)
    with pytest.raises(NasPruneError, match="multiple of 3"):
        shard(8, World(0, 3, 0))


def test_image_folder_shares_decode_only_their_images_augmented_as_one_process(tmp_path):
    from nas_prune.data import ImageFiles, batches, load_data
    from tests.data.test_files import _folder

    data = load_data(f"imagefolder:{_folder(tmp_path)}", input_size=16, workers=0)  # augment: standard
    full = list(batches(data.train, 8, shuffle=True, seed=5, drop_last=True))
    before = ImageFiles.decodes
    parts = [list(batches(data.train, 8, shuffle=True, seed=5, drop_last=True, world=World(rank, 2, rank)))
             for rank in range(2)]
    assert ImageFiles.decodes - before == sum(len(y) for x, y in full)  # each image decoded by one process
    for i, (x, y) in enumerate(full):  # the same crops and flips as one process draws
        torch.testing.assert_close(torch.cat([parts[0][i][0], parts[1][i][0]]), x)
        assert torch.equal(torch.cat([parts[0][i][1], parts[1][i][1]]), y)
