"""Stages chain: search results as --arch, model factories from the current directory, no config left by a typo."""

from __future__ import annotations

import json
import sys

import pytest

from nas_prune.latency import shipped_tables_dir
from nas_prune.space import ChannelSpace, shipped_space
from tests.conftest import run_main

SPACE = shipped_space("mobilenet_v2-32")
TABLE = shipped_tables_dir() / "devvm-amd-epyc-2vcpu" / "mobilenet_v2-32_amd-epyc-avx512_cpu-1thread.json"


@pytest.fixture(scope="module")
def arch_and_result(tmp_path_factory):
    from nas_prune.search import RESULT_FORMAT

    tmp = tmp_path_factory.mktemp("chain")
    arch = ChannelSpace.load(SPACE).uniform(0.5)
    arch_file = arch.save(tmp / "arch.json")
    best = tmp / "best.json"  # the shape `nas-prune search -o best.json` writes
    best.write_text(json.dumps({"format": RESULT_FORMAT, "version": 1, "space": arch.space, "n_complete": 3,
                                "best": {"trial": 2, "architecture": arch.to_json(), "accuracy": 0.5,
                                         "latency_ms": {"cpu": 0.1}, "flops": 1, "params": 1}}))
    return arch_file, best


def test_every_arch_option_takes_a_search_result(capsys, arch_and_result, tmp_path):
    arch_file, best = arch_and_result
    outputs = []
    for source in (arch_file, best):
        code, info, err = run_main(capsys, "arch", "info", "--space", str(SPACE), "--arch", str(source))
        assert code == 0, err
        code, predicted, err = run_main(capsys, "latency", "predict", "--table", str(TABLE), "--arch", str(source))
        assert code == 0, err
        outputs.append((info, predicted))
    assert outputs[0] == outputs[1]
    code, _, err = run_main(capsys, "arch", "materialize", "--space", str(SPACE), "--arch", str(best),
                            "-o", str(tmp_path / "m.onnx"))
    assert code == 0 and (tmp_path / "m.onnx").is_file(), err
    from nas_prune.cli._pruningnet import parse_arch

    space = ChannelSpace.load(SPACE)
    assert parse_arch(str(best), space) == parse_arch(str(arch_file), space)


def test_a_result_without_an_architecture_is_one_line_error(capsys, tmp_path):
    bad = tmp_path / "best.json"
    bad.write_text(json.dumps({"best": {"architecture": {"space": "x"}}}))
    code, _, err = run_main(capsys, "arch", "info", "--space", str(SPACE), "--arch", str(bad))
    assert code == 2 and err.count("\n") == 1 and "best.architecture" in err and "is not an architecture" in err


def test_model_factory_is_found_in_the_current_directory(capsys, tmp_path, monkeypatch):
    (tmp_path / "chain_cwd_model.py").write_text(
        "from tests.conftest import tiny_resnet\n\ndef factory(num_classes=10):\n    return tiny_resnet(num_classes)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "chain_cwd_model", raising=False)
    path_before = list(sys.path)
    try:
        code, out, err = run_main(capsys, "space", "chain_cwd_model:factory", "--input-size", "16", "-o", "space.json")
    finally:
        sys.modules.pop("chain_cwd_model", None)
    assert code == 0, err
    assert sys.path == path_before  # the current directory was only searched for this import
    assert json.loads((tmp_path / "space.json").read_text())["model"]["spec"] == "chain_cwd_model:factory"


@pytest.mark.parametrize("bad", [["--model", "resnet-18"], ["--data", "cifar10:/no/such/folder"],
                                 ["--sampler", "tpee"], ["--method", "kdd"], ["--init", "pnett"]])
def test_a_typo_leaves_no_config_behind(capsys, tmp_path, bad):
    out = tmp_path / "run"
    code, _, err = run_main(capsys, "run", *bad, "--out", str(out))
    assert code == 2 and err.count("\n") == 1, err
    assert not (out / "config.json").exists()


def test_distill_takes_a_search_result(capsys, tiny_space, tiny_space_file, tmp_path):
    from nas_prune.search import RESULT_FORMAT

    best = tmp_path / "best.json"
    best.write_text(json.dumps({"format": RESULT_FORMAT, "best": {"architecture": tiny_space.uniform(0.5).to_json()}}))
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"\x00garbage")
    code, _, err = run_main(capsys, "distill", "--space", str(tiny_space_file), "--arch", str(best), "--teacher", str(bad),
                            "-o", str(tmp_path / "o"))
    assert code == 2 and str(bad) in err and "architecture" not in err  # the architecture was accepted
    code, _, err = run_main(capsys, "distill", "--space", str(tiny_space_file), "--arch", str(best), "--teacher", str(bad),
                            "--method", "kdd", "-o", str(tmp_path / "o"))
    assert code == 2 and "unknown distillation method 'kdd'" in err
