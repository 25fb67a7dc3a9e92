"""Every checkpoint loader refuses pickle payloads, foreign and truncated checkpoints: one line, exit 2, nothing damaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas_prune.export import save_model
from tests.robustness._files import (assert_one_line_error, assert_untouched, payload_is_live, run_main, snapshot,
                                     write_foreign_checkpoint, write_malicious_checkpoint, write_truncated_checkpoint)


def _setup(case: str, tmp: Path, space_file: Path, space) -> tuple[Path, list[str]]:  # noqa: ANN001
    """(the file the hostile content goes into, the command that must load it)."""
    arch = tmp / "arch.json"
    space.uniform(0.5).save(arch)
    teacher = tmp / "good-teacher.pt"
    save_model(space.build_model(), teacher, space_id=space.id)
    common = ["--space", space_file, "--data", "digits", "--train-subset", "64"]
    if case == "teacher":
        bad = tmp / "teacher.pt"
        return bad, ["distill", *common, "--arch", arch, "--teacher", bad, "--epochs", "1", "-o", tmp / "out"]
    if case == "distill-checkpoint":
        (tmp / "out").mkdir()
        bad = tmp / "out" / "checkpoint.pt"
        return bad, ["distill", *common, "--arch", arch, "--teacher", teacher, "--epochs", "1", "-o", tmp / "out"]
    if case == "teacher-partial":
        bad = tmp / "teacher.pt.partial"
        return bad, ["train", *common, "--epochs", "1", "-o", tmp / "teacher.pt"]
    if case == "gates-partial":
        bad = tmp / "gates.json.partial"
        return bad, ["gates", *common, "--epochs", "1", "--ratios", "0.5", "-o", tmp / "gates.json"]
    if case == "pruningnet":
        bad = tmp / "pnet.pt"
        return bad, ["pruningnet", "eval", "--pnet", bad, "--arch", "full", "--data", "digits", "--val-batches", "1"]
    if case == "pruningnet-resume":  # the output of 'pruningnet train' is also what it resumes from
        bad = tmp / "pnet.pt"
        return bad, ["pruningnet", "train", *common, "--epochs", "1", "-o", bad]
    raise AssertionError(case)


CASES = ["teacher", "distill-checkpoint", "teacher-partial", "gates-partial", "pruningnet", "pruningnet-resume"]


def test_the_payload_is_live(tmp_path):
    assert payload_is_live(tmp_path)  # so the refusals below are meaningful


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["pickle-payload", "foreign", "truncated"])
def test_hostile_checkpoint_is_refused(capsys, tmp_path, tiny_space_file, tiny_space, case, kind):
    bad, args = _setup(case, tmp_path, tiny_space_file, tiny_space)
    marker = tmp_path / "PWNED"
    {"pickle-payload": lambda p: write_malicious_checkpoint(p, marker), "foreign": write_foreign_checkpoint,
     "truncated": write_truncated_checkpoint}[kind](bad)
    before = snapshot(tmp_path)
    code, out, err = run_main(capsys, *args)
    assert_one_line_error(code, err, str(bad))
    assert not marker.exists(), "the pickle payload ran"
    assert_untouched(before, tmp_path)
    for product in ("teacher.pt", "gates.json", "out/metrics.json", "out/model.pt"):
        assert tmp_path / product == bad or not (tmp_path / product).exists(), product
