"""``nas-prune run``: every stage of :data:`~nas_prune.pipeline.stages.STAGES` in order, each cached in the run directory.

A stage that finished is skipped on re-run; one that was killed resumes from its own checkpoint.
The summary and the report come last.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from nas_prune._io import read_json, write_json
from nas_prune.distributed import init_from_env, is_main
from nas_prune.errors import NasPruneError
from nas_prune.pipeline._cache import StageCache
from nas_prune.pipeline._config import RunConfig
from nas_prune.pipeline._context import RunContext
from nas_prune.pipeline._summary import build_summary
from nas_prune.pipeline.stages import STAGES
from nas_prune.progress import console

__all__ = ["run_pipeline"]

#: Settings a run directory is bound to: resuming it with any other value is refused.
BOUND_SETTINGS = ("model", "data", "budget", "input_size", "threads", "backend", "sampler", "method", "seed",
                  "teacher", "weights", "preprocess", "augment", "select")


def _check_config(cfg: RunConfig, out: Path) -> None:
    """A run directory belongs to one configuration: resuming with other settings is refused."""
    path = out / "config.json"
    new = cfg.to_json()
    if path.exists():
        old = read_json(path, what="run configuration")
        if not isinstance(old, dict):
            raise NasPruneError(f"{path} is not a nas-prune run configuration (a JSON object): use another --out")
        before = {"augment": "none", "select": "score"}  # what runs made before these settings existed did
        diff = [k for k in BOUND_SETTINGS if old.get(k, before.get(k)) != new.get(k)]
        if diff:
            raise NasPruneError(
                f"{out} holds a run with other settings ({', '.join(diff)}): use another --out or delete it"
            )
    write_json(path, new)


def _context(cfg: RunConfig) -> RunContext:
    """Join the process group (under torchrun), load the data once, bind the run directory to ``cfg``."""
    from nas_prune.data import load_data
    from nas_prune.training import set_seed

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if init_from_env(cfg.torch_device).active and not is_main():
        console.quiet = True  # under torchrun rank 0 speaks for every process
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    set_seed(cfg.seed)
    data = load_data(cfg.data, input_size=cfg.input_size, train_subset=cfg.train_subset, seed=cfg.seed,
                     preprocess=cfg.preprocess, augment=cfg.augment, workers=cfg.workers, strict=cfg.strict_data)
    console.print(f"preprocessing: {cfg.preprocess.describe()}; training augmentation: {cfg.augment}", markup=False)
    _check_config(cfg, out)  # after every setting, the data included, is known to be valid
    return RunContext(cfg=cfg, out=out, data=data, device=cfg.torch_device)


def run_pipeline(cfg: RunConfig) -> dict[str, Any]:
    """Run (or resume) the whole job; returns the summary also written to ``DIR/summary.json``."""
    ctx = _context(cfg)
    cache = StageCache(ctx.out)
    for stage in STAGES:
        ctx.results[stage.name] = cache.run(stage.name, functools.partial(stage.run, ctx), outputs=stage.outputs,
                                            everyone=stage.everyone)
    summary = build_summary(ctx, cache.seconds())
    write_json(ctx.out / "summary.json", summary)
    if is_main():
        from nas_prune.report import write_report

        write_report(ctx.out)
    return summary
