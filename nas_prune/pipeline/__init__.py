"""The whole job in one call: ``run_pipeline(RunConfig(...))`` (``nas-prune run``)."""

from __future__ import annotations

from nas_prune.pipeline._cache import StageCache
from nas_prune.pipeline._config import PRESETS, RUN_INITS, RunConfig
from nas_prune.pipeline._stages import run_pipeline

__all__ = ["PRESETS", "RUN_INITS", "RunConfig", "StageCache", "run_pipeline"]
