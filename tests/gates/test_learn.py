"""Gate learning: the regulariser, the clamp, the checkpoint choice, determinism and resume."""

from __future__ import annotations

import pytest
import torch

from nas_prune.errors import NasPruneError
from nas_prune.gates import GateHooks, default_epochs, gate_targets, learn_gates


def _mean(run) -> float:
    vals = [v for vs in run.gates.values() for v in vs]
    return sum(vals) / len(vals)


def test_targets_are_the_norms_after_member_convs(tiny_space):
    targets = gate_targets(tiny_space.build_model(), tiny_space)
    # stem.0 -> stem.1 and block.6 -> block.7 share the residual gene's gates
    assert {k: sorted(v) for k, v in targets.items()} == {
        "stem.0": ["block.7", "stem.1"], "block.0": ["block.1", "block.4"], "head.0": ["head.1"]}


def test_gates_multiply_after_the_norm(tiny_space):
    model = tiny_space.build_model().eval()
    x = tiny_space.example_input(2)
    with torch.no_grad():
        ref = model(x)
        with GateHooks(model, tiny_space) as hooks:  # all gates 1: the model is unchanged
            assert torch.allclose(model(x), ref)
            hooks.gates["head.0"].data.zero_()  # head channels closed: logits are the bias alone
            assert torch.allclose(model(x), model.fc.bias.expand(2, -1))
        assert torch.allclose(model(x), ref)  # hooks removed on exit


def test_the_share_of_non_zero_gates_ends_at_each_ratio(tiny_gates):
    for run in tiny_gates.runs:
        assert run.met_ratio and run.ratio - 0.05 <= run.nonzero_fraction <= run.ratio
        assert _mean(run) <= run.ratio  # the regulariser pulls the mean, the projection the share
    by_ratio = {r.ratio: r for r in tiny_gates.runs if r.seed == 0}
    assert by_ratio[0.3].gates != by_ratio[0.6].gates


def test_the_ratio_is_reached_even_without_the_regulariser(tiny_space, tiny_data):
    run = learn_gates(tiny_space, tiny_data, ratios=(0.3,), epochs=4, gamma=0.0, batch_size=32).runs[0]
    assert run.met_ratio and abs(run.nonzero_fraction - 0.3) <= 0.05


def test_kept_gates_shrink_on_the_cubic_schedule():
    from nas_prune.gates import PRUNE_SHARE, kept_gates

    kept = [kept_gates(step, 100, 1000, 0.3) for step in range(101)]
    assert kept[0] == 1000 and kept[round(PRUNE_SHARE * 100)] == 300 and kept[-1] == 300
    assert all(a >= b for a, b in zip(kept, kept[1:]))
    assert kept[10] < 1000 - 0.1 * 700  # cubic: fast at first


def test_gates_train_for_steps_not_epochs(tiny_space, tiny_data):
    from nas_prune.gates import MIN_STEPS

    g = learn_gates(tiny_space, tiny_data, ratios=(0.5,), steps=10, batch_size=32)
    assert g.settings["epochs"] * 4 >= MIN_STEPS  # 128 images = 4 steps an epoch; the floor applies


def test_gates_stay_clamped_and_weights_stay_random(tiny_space, tiny_data):
    g = learn_gates(tiny_space, tiny_data, ratios=(0.3,), epochs=2, gamma=50.0, lr=0.5, batch_size=32)
    vals = [v for vs in g.runs[0].gates.values() for v in vs]
    assert all(0.0 <= v <= 1.0 for v in vals)
    assert any(v == 0.0 for v in vals)  # the projection produces exact zeros


def test_kept_checkpoint_respects_the_ratio(tiny_space, tiny_data):
    g = learn_gates(tiny_space, tiny_data, ratios=(0.3,), epochs=3, gamma=50.0, lr=0.5, batch_size=32)
    run = g.runs[0]
    assert run.met_ratio and run.nonzero_fraction <= 0.3
    vals = [v for vs in run.gates.values() for v in vs]
    assert sum(v != 0 for v in vals) / len(vals) == pytest.approx(run.nonzero_fraction)


def test_deterministic_with_a_seed_and_seeds_differ(tiny_gates):
    by_seed = {(r.ratio, r.seed): r.gates for r in tiny_gates.runs}
    assert by_seed[(0.3, 0)] != by_seed[(0.3, 1)]


def test_resume_after_interrupt_gives_the_same_gates(tiny_space, tiny_data, tmp_path, monkeypatch):
    kwargs = dict(ratios=(0.3, 0.6), epochs=2, gamma=50.0, lr=0.05, batch_size=32)
    ref = learn_gates(tiny_space, tiny_data, **kwargs)
    ckpt = tmp_path / "gates.partial"
    import nas_prune.gates._learn as learn_mod

    calls = {"n": 0}
    real = learn_mod.evaluate

    def flaky(model, dataset, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # second run, last epoch: the first run is done and checkpointed
            raise KeyboardInterrupt
        return real(model, dataset, **kw)

    monkeypatch.setattr(learn_mod, "evaluate", flaky)
    with pytest.raises(KeyboardInterrupt):
        learn_gates(tiny_space, tiny_data, checkpoint=ckpt, **kwargs)
    assert ckpt.exists()
    monkeypatch.setattr(learn_mod, "evaluate", real)
    resumed = learn_gates(tiny_space, tiny_data, checkpoint=ckpt, **kwargs)
    assert [r.to_json() for r in resumed.runs] == [r.to_json() for r in ref.runs]
    with pytest.raises(NasPruneError, match="other settings"):
        learn_gates(tiny_space, tiny_data, checkpoint=ckpt, **{**kwargs, "epochs": 3})


def test_validation_is_scored_only_once_the_ratio_is_reached(tiny_space, tiny_data, monkeypatch):
    import nas_prune.gates._learn as learn_mod

    scored: list[float] = []
    real = learn_mod.evaluate

    def counting(model, dataset, **kw):
        scored.append(1.0)
        return real(model, dataset, **kw)

    monkeypatch.setattr(learn_mod, "evaluate", counting)
    out = learn_gates(tiny_space, tiny_data, ratios=(0.5,), epochs=10, gamma=50.0, lr=0.05, batch_size=32)
    run = out.runs[0]
    assert run.met_ratio
    # the projection allows the ratio only after PRUNE_SHARE (70 %) of the steps; gates the regulariser
    # drives to zero can reach it a little earlier: the first epochs, above the ratio, are not scored
    assert 1 <= len(scored) <= 10 - 3 and run.epoch >= 10 - len(scored) + 1


def test_bad_ratio_is_one_line(tiny_space, tiny_data):
    with pytest.raises(NasPruneError, match="ratio"):
        learn_gates(tiny_space, tiny_data, ratios=(1.5,), epochs=1)


def test_default_epochs_scale_with_the_data():
    assert default_epochs(391) == 10  # CIFAR-10 at batch 128: the paper's 10 epochs
    assert default_epochs(10000) == 1  # ImageNet: one pass
    from nas_prune.gates import MIN_STEPS

    assert default_epochs(8) * 8 >= MIN_STEPS  # tiny data: enough steps to move the gates


def test_gate_epochs_is_the_schedule_the_run_prints_and_learn_gates_runs():
    from nas_prune.gates import MIN_STEPS, default_epochs, gate_epochs

    assert gate_epochs(3, steps=10) == 50  # 10 steps asked on a 3-step epoch: raised to MIN_STEPS (150)
    assert gate_epochs(100, steps=400) == 4 and gate_epochs(100, steps=401) == 5  # whole epochs
    assert gate_epochs(3, steps=10, epochs=7) == 7  # epochs win
    assert gate_epochs(3) == default_epochs(3) == MIN_STEPS // 3
