from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from nas_prune.data import load_data
from nas_prune.errors import InvalidFileError, SpaceMismatchError
from nas_prune.export import save_state_dict
from nas_prune.pruningnet import ArchSampler, PruningNet, PruningNetEvaluator, train_pruningnet
from nas_prune.space import Architecture, ChannelSpace, materialize




def _perturb(pnet: PruningNet, seed: int = 0) -> None:
    """Give every generator a non-trivial dependence on the encoding (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in pnet.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def _archs(space: ChannelSpace) -> list[Architecture]:
    return [space.sample(s) for s in range(4)] + [space.uniform(0.1), space.full()]


@pytest.mark.parametrize("generator", ["lowrank", "mlp"])
def test_generated_weights_have_materialized_shapes(tiny_space, generator):
    pnet = PruningNet(tiny_space, generator=generator)
    base = tiny_space.build_model()
    for arch in _archs(tiny_space):
        bound = pnet.generate(arch)
        pruned = dict(materialize(base, arch, space=tiny_space).named_modules())
        checked = 0
        for (name, attr), value in bound.attrs.items():
            if attr in ("weight", "bias") and value is not None:
                assert tuple(value.shape) == tuple(getattr(pruned[name], attr).shape), (name, attr)
                checked += 1
        assert checked >= 10


@pytest.mark.parametrize("generator", ["lowrank", "mlp"])
@pytest.mark.parametrize("reverse", [False, True])
def test_export_equals_pruningnet_forward(tiny_space, generator, reverse):
    importance = {g.name: list(range(g.width))[::-1] for g in tiny_space.searchable_genes} if reverse else None
    pnet = PruningNet(tiny_space, generator=generator, importance=importance).eval()
    _perturb(pnet)
    x = torch.randn(6, *tiny_space.input_shape)
    recal = [torch.randn(16, *tiny_space.input_shape) for _ in range(3)]
    for arch in _archs(tiny_space):
        stats = pnet.recalibrate(pnet.generate(arch), recal)
        with torch.no_grad():
            expected = pnet(x, arch, stats)
            got = pnet.export(arch, stats)(x)
        assert torch.allclose(got, expected, atol=1e-5), (arch.channels, (got - expected).abs().max())
    # The two orders keep different channels, so they really give different networks.
    if reverse:
        plain = PruningNet(tiny_space, generator=generator).eval()
        plain.load_state_dict(pnet.state_dict())
        arch = tiny_space.uniform(0.5)
        with torch.no_grad():
            assert not torch.allclose(plain(x, arch), pnet(x, arch))


def test_recalibration_matches_train_mode_statistics(tiny_space):
    pnet = PruningNet(tiny_space).eval()
    arch = tiny_space.sample(1)
    batch = torch.randn(32, *tiny_space.input_shape)
    stats = pnet.recalibrate(pnet.generate(arch), [batch])
    with torch.no_grad():
        train_mode = pnet.train()(batch, arch)  # batch statistics
        eval_mode = pnet.eval()(batch, arch, stats)  # the same statistics, stored
    assert torch.allclose(train_mode, eval_mode, atol=1e-3)


@pytest.mark.slow
def test_training_reduces_loss(tiny_space, digits16):
    torch.manual_seed(0)
    pnet = train_pruningnet(tiny_space, digits16, epochs=4, batch_size=32, lr=0.05, seed=0)
    losses = [h["loss"] for h in pnet.history]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    score = PruningNetEvaluator(pnet, digits16, recal_batches=5, batch_size=64).score(tiny_space.full())
    assert score["accuracy"] > 0.3 and score["seconds"] > 0


@pytest.mark.slow
def test_resume_continues_from_checkpoint(tiny_space, digits16, tmp_path, monkeypatch):
    from nas_prune import training as _train  # the epoch loop the PruningNet trains with

    ckpt = tmp_path / "pnet.pt"
    torch.manual_seed(0)
    straight = train_pruningnet(tiny_space, digits16, epochs=2, batch_size=64, seed=3)

    real_batches, calls = _train.batches, []

    def interrupted(*args, **kwargs):  # the second epoch is killed after two batches
        calls.append(1)
        for i, batch in enumerate(real_batches(*args, **kwargs)):
            if len(calls) == 2 and i == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(_train, "batches", interrupted)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_pruningnet(tiny_space, digits16, epochs=2, batch_size=64, seed=3, checkpoint=ckpt)
    monkeypatch.setattr(_train, "batches", real_batches)
    assert ckpt.exists()
    torch.manual_seed(123)  # resuming must not depend on the global generator
    resumed = train_pruningnet(tiny_space, digits16, epochs=2, batch_size=64, seed=3, checkpoint=ckpt)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in straight.history])
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), k
    # A finished checkpoint is returned as is.
    again = train_pruningnet(tiny_space, digits16, epochs=2, batch_size=64, seed=3, checkpoint=ckpt)
    assert again.history == resumed.history


def test_save_load_roundtrip_and_space_checks(tiny_space, tmp_path):
    pnet = PruningNet(tiny_space, generator="mlp", hidden=8).eval()
    _perturb(pnet)
    path = pnet.save(tmp_path / "p.pt")
    loaded = PruningNet.load(path)  # rebuilt from the embedded space
    assert loaded.space_id == tiny_space.id and loaded.config == pnet.config
    x = torch.randn(2, *tiny_space.input_shape)
    arch = tiny_space.sample(5)
    with torch.no_grad():
        assert torch.allclose(loaded(x, arch), pnet(x, arch))
    other = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=10, round_to=4)
    assert other.id != tiny_space.id
    with pytest.raises(SpaceMismatchError, match="is for space"):
        PruningNet.load(path, space=other)
    with pytest.raises(SpaceMismatchError):
        pnet.check_space(other)
    with pytest.raises(SpaceMismatchError):
        train_pruningnet(other, load_data("digits", input_size=16), epochs=1, checkpoint=path)


def test_load_refuses_other_files(tiny_space, tmp_path):
    save_state_dict(nn.Linear(2, 2), tmp_path / "model.pt", format="nas-prune/model")
    with pytest.raises(InvalidFileError, match="not a PruningNet"):
        PruningNet.load(tmp_path / "model.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidFileError):
        PruningNet.load(tmp_path / "junk.pt")


def test_prior_sampler_follows_the_prior(tiny_space):
    gene = tiny_space.gene("block.0")
    sampler = ArchSampler(tiny_space, prior={"block.0": (16.0, 1.0)}, prior_mix=1.0)
    rng = random.Random(0)
    counts = [sampler.sample(rng).channels["block.0"] for _ in range(400)]
    assert all(c in gene.choices for c in counts)
    # The std is floored at one grid step: centred on the mean, but not stuck there.
    assert max(set(counts), key=counts.count) == 16 and len(set(counts)) > 1


def test_a_std_zero_prior_still_explores(tiny_space):
    gene = tiny_space.gene("block.0")
    sampler = ArchSampler(tiny_space, prior={"block.0": (16.0, 0.0)}, prior_mix=1.0)
    rng = random.Random(1)
    counts = {sampler.sample(rng).channels["block.0"] for _ in range(200)}
    assert {16 - gene.step, 16, 16 + gene.step} <= counts


def test_size_targeted_draws_cover_the_space_range():
    from nas_prune.space import flops_cost, smallest

    space = ChannelSpace.from_name("mobilenet_v3_small", input_size=32, num_classes=10)
    cost = flops_cost(space)
    rng = random.Random(0)
    sized = sorted(cost(ArchSampler(space).sample(rng)) for _ in range(300))
    flat = sorted(cost(ArchSampler(space, mode="uniform").sample(rng)) for _ in range(300))
    low = cost(smallest(space))
    q = lambda xs, p: xs[int(p * (len(xs) - 1))]  # noqa: E731
    # Uniform per-gene draws never reach wide networks; size-targeted ones span the whole range.
    assert q(flat, 0.95) < 0.7
    assert q(sized, 0.05) < low + 0.1 and q(sized, 0.95) > 0.85 and max(sized) > 0.95
    # Each tenth of the range is drawn (roughly) as often.
    deciles = [sum(low + (1 - low) * k / 10 <= c < low + (1 - low) * (k + 1) / 10 for c in sized) for k in range(10)]
    assert min(deciles) >= 10


def test_sandwich_steps_train_the_full_the_smallest_and_random_candidates(tiny_space, digits16, monkeypatch):
    from nas_prune.space import smallest

    seen: list[dict[str, int]] = []
    real = PruningNet.forward

    def recording(self, x, arch, bn_stats=None):
        seen.append(dict(arch.channels))
        return real(self, x, arch, bn_stats)

    monkeypatch.setattr(PruningNet, "forward", recording)
    train_pruningnet(tiny_space, digits16, epochs=1, batch_size=128, n_random=2, seed=0)
    steps = len(seen) // 4
    assert steps >= 5 and len(seen) == 4 * steps
    full, small = dict(tiny_space.full().channels), dict(smallest(tiny_space).channels)
    for i in range(steps):
        step = seen[4 * i: 4 * i + 4]
        assert step[0] == full and step[1] == small
    randoms = {tuple(c.values()) for i in range(steps) for c in seen[4 * i + 2: 4 * i + 4]}
    assert len(randoms) > steps  # new random candidates every step


def test_teacher_initialises_the_shared_weights_and_the_channel_order(tiny_space, digits16):
    from nas_prune.space import l1_importance
    from nas_prune.training import TrainConfig, fit

    torch.manual_seed(0)
    teacher = tiny_space.build_model()
    fit(teacher, digits16.train, None, TrainConfig(epochs=1, batch_size=64))
    pnet = PruningNet(tiny_space, importance=l1_importance(teacher, tiny_space), init_state=teacher.state_dict())
    state = teacher.state_dict()
    for name, w in pnet.full_weights(tiny_space.full()).items():
        assert torch.allclose(w, state[f"{name}.weight"]), name
    # Trained from the teacher (0 epochs = no step yet is not allowed, so train one and compare orders).
    trained = train_pruningnet(tiny_space, digits16, epochs=1, teacher=teacher, batch_size=128)
    assert trained.orders == check_orders_of(teacher, tiny_space)
    assert trained.train_settings["teacher_init"] and trained.train_settings["sandwich"]


def check_orders_of(teacher, space):
    from nas_prune.pruningnet._channels import check_orders
    from nas_prune.space import l1_importance

    return check_orders(space, l1_importance(teacher, space))


def test_scores_are_exp_of_minus_the_validation_loss(tiny_space, digits16):
    pnet = PruningNet(tiny_space)
    res = PruningNetEvaluator(pnet, digits16, recal_batches=2, batch_size=64).score(tiny_space.full())
    assert 0 < res["score"] <= 1 and res["score"] == pytest.approx(math.exp(-res["loss"]))
    assert res["loss_se"] > 0 and res["score_se"] == pytest.approx(res["score"] * res["loss_se"])
    assert 0 <= res["accuracy"] <= 1


def test_uniform_width_check_flags_an_inverted_ranking(tiny_space):
    from nas_prune.pruningnet import uniform_width_check

    class Fake:
        def __init__(self, scores):
            self.scores = iter(scores)

        def score(self, arch):
            return {"score": next(self.scores), "score_se": 0.001, "accuracy": 0.5}

    assert uniform_width_check(Fake([0.5, 0.6, 0.7, 0.8]), tiny_space)["ordered"]
    assert not uniform_width_check(Fake([0.5, 0.6, 0.7, 0.55]), tiny_space)["ordered"]


@pytest.mark.slow
def test_real_torchvision_space_forward():
    space = ChannelSpace.from_name("mobilenet_v3_small", input_size=32, num_classes=10)
    pnet = PruningNet(space).train()
    arch = space.sample(7)
    shapes = space.layer_channels(arch)
    bound = pnet.generate(arch)
    for name, info in space.layers.items():
        if info.kind == "conv" and not info.depthwise and info.groups == 1:
            w = bound.attrs[(name, "weight")]
            assert (w.shape[1], w.shape[0]) == shapes[name], name
    out = pnet(space.example_input(4), arch)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in pnet.generators.parameters())


def test_per_choice_bn_statistics(tiny_space, digits16):
    torch.manual_seed(0)
    pnet = train_pruningnet(tiny_space, digits16, epochs=1, batch_size=64, per_choice_bn=True)
    assert pnet.config["per_choice_bn"]
    means = {n: b for n, b in pnet.choice_bn.named_buffers() if n.endswith("__mean")}
    assert len(means) == 5  # every BN of the tiny model has one gene
    assert any(b.abs().sum() > 0 for b in means.values())  # training updated them
    arch = tiny_space.sample(0)
    evaluator = PruningNetEvaluator(pnet, digits16, recal_batches=0, batch_size=64)
    stats = evaluator.recalibrated(arch)
    assert set(stats) == {"stem.1", "block.1", "block.4", "block.7", "head.1"}
    assert 0 <= evaluator.score(arch)["accuracy"] <= 1
    x = torch.randn(3, *tiny_space.input_shape)
    with torch.no_grad():
        assert torch.allclose(pnet.export(arch, stats)(x), pnet.eval()(x, arch), atol=1e-5)


def test_a_class_count_mismatch_is_refused_up_front(tiny_space, digits16):
    from nas_prune.data import select_classes
    from nas_prune.errors import DataError

    seven = select_classes(digits16, range(7))
    with pytest.raises(DataError, match="10.*7|7.*10"):
        train_pruningnet(tiny_space, seven, epochs=1)
    with pytest.raises(DataError, match="10.*7|7.*10"):
        PruningNetEvaluator(PruningNet(tiny_space), seven)
