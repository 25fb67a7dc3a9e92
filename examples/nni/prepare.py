"""Build what the NNI trials need, next to this file: space, latency table, PruningNet, search space.

    cd examples/nni && python prepare.py      # ~2 minutes on a laptop CPU; re-running resumes

Writes space.json, table.json (measured here with onnxruntime), pnet.pt, search_space.json
(``quniform`` with q = the gene's step) and trial_config.json (budget: 70% of the full model's
predicted latency, or EXAMPLE_BUDGET_MS).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the model factory "model:small_net"

from nas_prune.data import load_data  # noqa: E402
from nas_prune.files import write_json  # noqa: E402
from nas_prune.latency import LatencyTable, build_table  # noqa: E402
from nas_prune.pruningnet import train_pruningnet  # noqa: E402
from nas_prune.search.nni_trial import write_trial_config  # noqa: E402
from nas_prune.space import ChannelSpace  # noqa: E402

INPUT = 16
EPOCHS = int(os.environ.get("EXAMPLE_EPOCHS", "4"))


def main() -> None:
    space = ChannelSpace.from_name("model:small_net", input_size=INPUT, num_classes=10)
    space.save(HERE / "space.json")
    table_path = HERE / "table.json"
    table = LatencyTable.load(table_path) if table_path.exists() else build_table(
        space, output=table_path, nets=int(os.environ.get("EXAMPLE_NETS", "24")), rounds=5, device_name="this-cpu")
    data = load_data("digits", input_size=INPUT)
    train_pruningnet(space, data, epochs=EPOCHS, checkpoint=HERE / "pnet.pt")
    write_json(HERE / "search_space.json", space.nni_search_space())
    budget = float(os.environ.get("EXAMPLE_BUDGET_MS", 0.7 * table.predict(space.full())))
    write_trial_config(HERE / "trial_config.json", space=HERE / "space.json", pnet=HERE / "pnet.pt",
                       tables=[table_path], budgets_ms=[budget], names=["this-cpu"], data="digits",
                       recal_batches=10, val_batches=4, batch_size=64)
    print(f"ready: budget {budget:.4f} ms; now: nnictl create --config config.yml --port 8080")


if __name__ == "__main__":
    main()
