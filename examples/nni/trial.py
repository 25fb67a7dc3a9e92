"""One NNI trial: score the candidate NNI proposes under the latency budget and report it.

The web UI shows, per trial, ``default`` (the PruningNet score if feasible, ``-1 - overshoot`` if not: no
feasible candidate can lose to an infeasible one), ``accuracy``, ``feasible``,
``latency_ms:this-cpu``, ``flops``, ``params`` and the channels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nni

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the model factory "model:small_net"

from nas_prune.search.nni_trial import run_trial  # noqa: E402

if __name__ == "__main__":
    params = nni.get_next_parameter()
    metrics = run_trial(str(HERE / "trial_config.json"), params)
    nni.report_final_result(metrics)
    print(metrics)
