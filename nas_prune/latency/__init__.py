"""Measured onnxruntime latency tables that predict a pruned network's real latency.

Networks of a space are timed whole, interleaved with the unpruned reference network so that
their ratio survives the machine's drift; an additive per-layer model with SIMD staircase
features is fitted to the ratios (see :mod:`nas_prune.latency._fit`), with a kernel residual over the
whole architecture where it cross-validates better (:mod:`nas_prune.latency._residual`).
``table.predict(arch)`` gives milliseconds in ~5-25 microseconds. A table this machine did not calibrate is checked,
adapted or rebuilt on first use (:func:`calibrated_table`, :mod:`nas_prune.latency._calibrate`).
The tables measured on the development VM ship as package data (:func:`shipped_tables`).
"""

from __future__ import annotations

from nas_prune.latency._adapt import Correction, fit_correction
from nas_prune.latency._build import (
    build_table,
    default_nets,
    design_archs,
    import_results,
    refit_table,
    table_from_records,
    write_bundle,
)
from nas_prune.latency._calibrate import (
    ADAPT_NETS,
    ADAPT_ROUNDS,
    ADAPT_SECONDS,
    adapt_table,
    calibrate,
    calibrated_table,
    calibration_label,
    check_table,
    foreign_reason,
)
from nas_prune.latency._fit import FitResult, fit_additive
from nas_prune.latency._measure import arch_onnx_bytes, measure_interleaved, measure_latency, to_onnx_bytes
from nas_prune.latency._nets import NetFactory
from nas_prune.latency._ratio import QUIET_TOL, measure_ratios, ratio_verdict
from nas_prune.latency._relative import measure_relative
from nas_prune.latency._residual import KernelResidual, fit_residual
from nas_prune.latency._retarget import retarget_table
from nas_prune.latency._scores import scores
from nas_prune.latency._shipped import find_shipped_table, shipped_tables, shipped_tables_dir
from nas_prune.latency._structure import LayerCosts, structure_from_space
from nas_prune.latency._table import TABLE_FORMAT, TABLE_VERSION, LatencyTable, ScaledTable
from nas_prune.latency._validate import (
    FLAT_FRACTION,
    bootstrap_intervals,
    flat_table_warning,
    narrowest_fraction,
    predict_cpu_us,
    rescore,
    spearman,
    validate_table,
)

__all__ = [
    "ADAPT_NETS",
    "FLAT_FRACTION",
    "ADAPT_ROUNDS",
    "ADAPT_SECONDS",
    "Correction",
    "adapt_table",
    "calibrate",
    "calibrated_table",
    "calibration_label",
    "check_table",
    "fit_correction",
    "fit_residual",
    "foreign_reason",
    "FitResult",
    "KernelResidual",
    "LatencyTable",
    "LayerCosts",
    "NetFactory",
    "ScaledTable",
    "TABLE_FORMAT",
    "TABLE_VERSION",
    "arch_onnx_bytes",
    "bootstrap_intervals",
    "build_table",
    "default_nets",
    "design_archs",
    "find_shipped_table",
    "flat_table_warning",
    "fit_additive",
    "import_results",
    "measure_interleaved",
    "measure_latency",
    "measure_ratios",
    "QUIET_TOL",
    "ratio_verdict",
    "measure_relative",
    "narrowest_fraction",
    "retarget_table",
    "predict_cpu_us",
    "refit_table",
    "rescore",
    "scores",
    "shipped_tables",
    "shipped_tables_dir",
    "spearman",
    "structure_from_space",
    "table_from_records",
    "to_onnx_bytes",
    "validate_table",
    "write_bundle",
]
