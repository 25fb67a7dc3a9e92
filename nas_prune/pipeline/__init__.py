"""The whole job in one call: ``run_pipeline(RunConfig(...))`` (``nas-prune run``)."""

from __future__ import annotations

from nas_prune.pipeline._config import PRESETS, RUN_INITS, RunConfig
from nas_prune.pipeline._stages import find_shipped_table, run_pipeline

__all__ = ["PRESETS", "RUN_INITS", "RunConfig", "find_shipped_table", "run_pipeline"]
