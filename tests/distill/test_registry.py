"""Extending distillation: a toy method and a toy init kind, registered here and run through ``distill``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nas_prune.distill._methods as methods_module
import nas_prune.distill._student_init as init_module
from nas_prune.distill import (
    DistillConfig,
    DistillMethod,
    distill,
    get_init_kind,
    get_method,
    init_help,
    init_names,
    method_help,
    method_names,
    register_init,
    register_method,
)
from nas_prune.errors import NasPruneError
from nas_prune.export import load_checkpoint
from nas_prune.space import materialize

FAST = DistillConfig(batch_size=32)


@pytest.fixture
def registries(monkeypatch):
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(methods_module, "_REGISTRY", dict(methods_module._REGISTRY))
    monkeypatch.setattr(init_module, "_REGISTRY", dict(init_module._REGISTRY))


def test_builtin_names_are_registered():
    assert method_names()[:4] == ("kd", "cckd", "dafl", "none")
    assert init_names()[:5] == ("scratch", "teacher", "gates", "pnet", "model")
    assert init_help() == "scratch | teacher | gates:PATH | pnet:PATH | model:PATH"
    assert "dafl (data-free)" in method_help()
    assert "dafl-bn" in method_names() and not get_method("dafl-bn").reads_train_data
    with pytest.raises(NasPruneError, match="use one of scratch"):
        get_init_kind("pnet")  # needs its path


def test_toy_method_and_init_run_through_distill(registries, tiny_space, tiny_teacher, digits_small, tmp_path):
    built: list[str] = []

    @register_init("toy-init", arg="TAG", summary="the teacher's channels, noting the tag")
    def toy_init(space, arch, teacher, arg, *, seed, recal):
        built.append(arg)
        return materialize(teacher, arch, space=space).train()

    @register_method
    class ToyMSE(DistillMethod):
        """Match the teacher's logits, scaled by a learned factor (an extra, checkpointed module)."""

        name = "toy-mse"
        summary = "toy"
        steps_seen = 0

        def setup(self, run):
            run.extra["scale"] = nn.Linear(1, 1, bias=False)

        def loss(self, run, x, y, idx):
            ToyMSE.steps_seen += 1
            t_logits, _ = run.teacher_outputs(x, idx)
            factor = run.extra["scale"].weight.squeeze()
            return nn.functional.mse_loss(run.student(x) * factor, t_logits)

    assert "toy-mse (toy)" in method_help() and "toy-init:TAG" in init_help()
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, digits_small, method="toy-mse",
                      init="toy-init:hello", epochs=2, out_dir=tmp_path, measure_latency=False, config=FAST)
    assert built == ["hello"]
    assert metrics["method"] == "toy-mse" and metrics["init"] == "toy-init:hello"
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert ToyMSE.steps_seen == 2 * (len(digits_small.train) // FAST.batch_size)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt", what="checkpoint")
    assert set(ckpt["extra"]) == {"scale.weight"}
    assert not torch.equal(ckpt["extra"]["scale.weight"], torch.zeros(1, 1))


def test_unknown_and_duplicate_names(registries, tiny_space, tiny_teacher, digits_small, tmp_path):
    with pytest.raises(NasPruneError, match="unknown distillation method 'toy'"):
        distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, digits_small, method="toy", out_dir=tmp_path)
    with pytest.raises(NasPruneError, match="unknown init 'toy'"):
        distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, digits_small, init="toy", out_dir=tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()

    class Again(DistillMethod):
        name = "kd"

    with pytest.raises(ValueError, match="already registered"):
        register_method(Again)


def test_cli_choices_come_from_the_registries():
    from typer.testing import CliRunner

    from nas_prune.cli import app

    out = CliRunner().invoke(app, ["distill", "--help"], terminal_width=400).output
    assert all(name in out for name in method_names()) and "pnet:PATH" in out


def test_model_init_starts_from_a_saved_student_of_the_same_architecture(tiny_space, tmp_path):
    import pytest
    import torch

    from nas_prune.distill import init_student
    from nas_prune.errors import NasPruneError
    from nas_prune.export import save_model
    from nas_prune.space import materialize

    teacher = tiny_space.build_model().eval()
    arch = tiny_space.uniform(0.5)
    student = materialize(teacher, arch, space=tiny_space)
    path = save_model(student, tmp_path / "s.pt", space_id=tiny_space.id, arch=dict(arch.channels))
    got = init_student(tiny_space, arch, teacher, f"model:{path}").eval()
    x = tiny_space.example_input()
    with torch.no_grad():
        assert torch.allclose(got(x), student(x))
    with pytest.raises(NasPruneError, match="another architecture"):
        init_student(tiny_space, tiny_space.uniform(0.75), teacher, f"model:{path}")
