"""The whole job in one call: ``run_pipeline(RunConfig(...))`` (``nas-prune run``), a loop over the
registered stages (:data:`~nas_prune.pipeline.stages.STAGES`); ``recheck_run(DIR)`` measures a
finished run's latency verdict again (``nas-prune check``)."""

from __future__ import annotations

from nas_prune.pipeline._cache import StageCache
from nas_prune.pipeline._check import recheck_run
from nas_prune.pipeline._config import PRESETS, RUN_INITS, RunConfig
from nas_prune.pipeline._context import RunContext, Stage
from nas_prune.pipeline._run import run_pipeline
from nas_prune.pipeline._select import SELECT_IMAGES, SELECT_STEPS
from nas_prune.pipeline.stages import STAGES, get_stage, stage_names

__all__ = ["PRESETS", "RUN_INITS", "SELECT_IMAGES", "SELECT_STEPS", "STAGES", "RunConfig", "RunContext", "Stage", "StageCache", "get_stage",
           "recheck_run", "run_pipeline", "stage_names"]
