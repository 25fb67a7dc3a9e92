"""``nas-prune run --model mobilenet_v2 --input-size 224`` on ImageFolder data finds the shipped 224 table.

The shipped 224x224 tables are for 1000 classes; a dataset of 10 (here: digits images written as an
ImageFolder) gets the same network's table re-keyed to its space (``retarget_table``). The run is
stopped after its budget stage, the last one that uses the table before the search.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas_prune.errors import NasPruneError
from tests.conftest import run_main

ROOT = Path(__file__).resolve().parents[2]


def _digits_image_folder(root: Path, per_class: dict[str, int]) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    taken = {split: {c: 0 for c in range(10)} for split in per_class}
    for img, label in zip(d.images, d.target):
        for split, n in per_class.items():
            if taken[split][label] < n:
                taken[split][label] += 1
                folder = root / split / f"digit{label}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(folder / f"{taken[split][label]}.png")
                break
    return root


@pytest.mark.slow
def test_run_at_224_finds_the_shipped_1000_class_table(tmp_path, monkeypatch, capsys):
    import nas_prune.gates
    from nas_prune.latency import LatencyTable, shipped_tables_dir
    from nas_prune.space import ChannelSpace

    data = _digits_image_folder(tmp_path / "digits", {"train": 3, "val": 1})
    shipped_space = ChannelSpace.load(ROOT / "search_spaces" / "mobilenet_v2-224.json")
    assert shipped_space.model["num_classes"] == 1000 and list(shipped_space.input_shape) == [3, 224, 224]
    tables = shipped_tables_dir()  # the real shipped tables (package data)
    shipped = next(iter(sorted(tables.rglob("mobilenet_v2-224_*cpu-1thread.json"))))

    def stop(*_args, **_kwargs):
        raise NasPruneError("stopped by the test after the budget stage")

    monkeypatch.setattr(nas_prune.gates, "learn_gates", stop)
    out = tmp_path / "run"
    code, _, err = run_main(capsys, "run", "--model", "mobilenet_v2", "--input-size", "224", "--data",
                            f"imagefolder:{data}", "--teacher-epochs", "1", "--calibration", "off", "--batch-size", "4",
                            "--out", str(out))
    assert code == 2 and "stopped by the test after the budget stage" in err, err[-2000:]
    run_space = ChannelSpace.load(out / "space.json")
    assert run_space.model["num_classes"] == 10 and run_space.id != shipped_space.id
    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == config["distill_batch_size"] == 4  # --batch-size: every training stage
    stages = json.loads((out / "stages.json").read_text())
    assert stages["latency"]["result"] == {"source": f"shipped:{shipped.relative_to(tables).as_posix()}",
                                           "retargeted_from": shipped_space.id}
    used = LatencyTable.load(out / "table.json")
    assert used.space_id == run_space.id and used.meta["retargeted"]["from_space"] == shipped_space.id
    arch = dict(run_space.uniform(0.7).channels)
    assert used.predict(arch) == pytest.approx(LatencyTable.load(shipped).predict(arch))
    assert stages["budget"]["result"]["budget_ms"] > 0
