"""The whole job in one call: ``run_pipeline(RunConfig(...))`` (``nas-prune run``); ``recheck_run(DIR)``
measures a finished run's latency verdict again (``nas-prune check``)."""

from __future__ import annotations

from nas_prune.pipeline._cache import StageCache
from nas_prune.pipeline._check import recheck_run
from nas_prune.pipeline._config import PRESETS, RUN_INITS, RunConfig
from nas_prune.pipeline._stages import run_pipeline

__all__ = ["PRESETS", "RUN_INITS", "RunConfig", "StageCache", "recheck_run", "run_pipeline"]
