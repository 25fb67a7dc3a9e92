"""Building latency tables: design the networks to time, time them (here or on a device), fit.

``build_table`` times the networks on this machine and saves every finished group to
``TABLE.partial.json`` (atomically), so a killed run resumes where it stopped. ``write_bundle`` and
``import_results`` do the same through the on-device runner (:mod:`nas_prune.on_device`).
"""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nas_prune._io import atomic_write_bytes, read_json, write_json
from nas_prune.errors import InvalidFileError, NasPruneError
from nas_prune.latency._fit import fit_additive
from nas_prune.latency._structure import FEATURES_PER_LAYER, structure_from_space
from nas_prune.latency._table import LatencyTable
from nas_prune.on_device import BUNDLE_FORMAT, FORMAT_VERSION, TimingSettings, load_results, machine_info, run_groups

__all__ = ["design_archs", "default_nets", "default_rounds", "build_table", "write_bundle", "import_results",
           "table_from_records", "refit_table"]

PARTIAL_FORMAT = "nas-prune/latency-partial"


def default_nets(space: Any) -> int:
    """Networks to time by default: five per fitted coefficient, at least 60."""
    n_layers = sum(1 for l in space.layers.values() if l.kind in ("conv", "linear"))
    return max(60, 5 * FEATURES_PER_LAYER * n_layers)


def default_rounds(threads: int) -> int:
    """Interleaved rounds per group: 30 at one thread, 60 when onnxruntime uses several.

    With every core in the measurement, any other process lands in it: on the 2-vCPU development
    VM a 2-thread mobilenet_v2 table built with 30 rounds validated at Spearman 0.976, with 60
    rounds at 0.983 (``benchmarks/results/latency_validate_*``).
    """
    return 30 if threads <= 1 else 60


def design_archs(space: Any, n: int, seed: int = 0) -> list[dict[str, int]]:
    """The networks a table is fitted to: structured designs, then random ones.

    Structured: uniform width ratios 0.1..1.0 (the full network measures the noise of the ruler).
    Random: two of three uniform over each gene's choices (the distribution a search and
    ``latency validate`` draw from), one of three a random global ratio jittered per gene (covers
    small and large networks evenly).
    """
    rng = random.Random(seed)
    designs: list[dict[str, int]] = []
    for r in np.linspace(0.1, 1.0, 10):
        if len(designs) < n:
            designs.append(dict(space.uniform(float(r)).channels))
    while len(designs) < n:
        if len(designs) % 3 == 2:
            ratio = rng.uniform(0.1, 1.0)
            designs.append({g.name: g.snap(g.width * ratio * rng.uniform(0.7, 1.3)) for g in space.genes})
        else:
            designs.append(dict(space.sample(rng).channels))
    return designs


def table_from_records(*, space_id: str, structure: Mapping[str, Any], settings: TimingSettings,
                       meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                       input_shape: Sequence[int], reference_channels: Mapping[str, int] | None = None) -> LatencyTable:
    """Fit the additive model to measured records and make the table."""
    fit = fit_additive(structure, [r["channels"] for r in records], [r["rel"] for r in records])
    ref_ms = float(np.median([r["ref_round_ms"] for r in records]))
    s = settings.to_json()
    full_meta = {**meta, "provider": settings.provider, "provider_options": s["provider_options"],
                 "threads": settings.threads, "opt_level": settings.opt_level, "input_shape": list(input_shape),
                 "batch": settings.batch, "repeats": settings.rounds * settings.runs_per_round,
                 "nets": len(records), "statistic": f"p{settings.percentile:g} of each round, median ratio over rounds"}
    reference = {"channels": dict(reference_channels) if reference_channels else "full (unpruned)", "ms": ref_ms,
                 "ms_spread": [float(np.min([r["ref_round_ms"] for r in records])),
                               float(np.max([r["ref_round_ms"] for r in records]))]}
    entries = [{k: r[k] for k in ("id", "channels", "rel", "rel_iqr", "median_ms", "p10_ms", "iqr_ms", "round_ms",
                                  "ref_round_ms") if k in r} for r in records]
    return LatencyTable(space_id=space_id, meta=full_meta, settings=s, reference=reference, structure=structure,
                        model=fit.to_json(), entries=entries)


def refit_table(table: LatencyTable) -> LatencyTable:
    """The same table with its model fitted again to its own measured networks (nothing is timed).

    For a table fitted by an older nas-prune: the fit's choices (block, ridge, terms, kernel residual) are made again
    by cross-validation, the entries, reference and metadata stay, and ``model["refit"]`` records
    the model it replaces.

    Raises:
        NasPruneError: the table was adapted to this machine (its model is no longer a fit of its
            entries: refit the table it was adapted from, then adapt again) or holds fewer than 4 networks.
    """
    cal = table.meta.get("calibration") or {}
    if isinstance(cal, dict) and cal.get("kind") == "adapted":
        raise NasPruneError("this table was adapted to a machine, so its entries do not match its model: refit the "
                            "table it was adapted from, then run 'nas-prune latency adapt' again")
    old = table.model
    fit = fit_additive(table.structure, [e["channels"] for e in table.entries], [e["rel"] for e in table.entries])
    before = {"block": old.get("block"), "ridge": old.get("ridge"), "terms": list(table.costs.terms),
              "cv": old.get("cv")}
    model = {**fit.to_json(), "refit": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "before": before}}
    return LatencyTable(space_id=table.space_id, meta=table.meta, settings=table.settings, reference=table.reference,
                        structure=table.structure, model=model, entries=table.entries)


class _PartialFile:
    """``TABLE.partial.json``: a build's records so far, saved after every group so that a killed build resumes.

    Attributes:
        path: The file (``None``: the build saves nothing).
        key: What a resumed build must share with the one that wrote the file (format, space,
            settings, seed, reference).
        meta: The table's metadata, saved with the records.
        records: The networks measured so far.
        started: When this run of the build started (``time.time()``).
        spent_before: Seconds that earlier runs of the same build spent.
    """

    def __init__(self, output: str | os.PathLike[str] | None, key: Mapping[str, Any], meta: dict[str, Any]) -> None:
        self.path = Path(str(output) + ".partial.json") if output is not None else None
        self.key = dict(key)
        self.meta = meta
        self.records: list[dict[str, Any]] = []
        self.started, self.spent_before = time.time(), 0.0

    def resume(self, ids: set[str]) -> None:
        """Take over the records of networks ``ids`` from an earlier run's file, if there is one.

        Raises:
            InvalidFileError: The file was started with other options.
        """
        if self.path is None or not self.path.exists():
            return
        old = read_json(self.path, what="partial latency table")
        if not isinstance(old, dict) or any(old.get(k) != v for k, v in self.key.items()) or not isinstance(old.get("records"), list):
            raise InvalidFileError(
                f"partial latency table {self.path} was started with other options (space, settings or seed): "
                "re-run with the same options to resume, or delete it to start over"
            )
        self.records = [r for r in old["records"] if r.get("id") in ids]
        self.spent_before = float(old.get("seconds", 0.0))
        self.meta["resumed"] = True

    def seconds(self) -> float:
        """Seconds the build has spent, earlier runs included."""
        return self.spent_before + time.time() - self.started

    def add(self, new: list[dict[str, Any]]) -> None:
        """Append a measured group and save the file."""
        self.records.extend(new)
        if self.path is not None:
            write_json(self.path, {**self.key, "meta": self.meta, "records": self.records, "seconds": self.seconds()})

    def remove(self) -> None:
        """Delete the file (the table is saved)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def build_table(space: Any, *, provider: str = "cpu", threads: int = 1, output: str | os.PathLike[str] | None = None,
                nets: int | None = None, seed: int = 0, device_name: str | None = None, rounds: int | None = None,
                runs_per_round: int = 20, warmup: int = 10, opt_level: str = "all", batch: int = 1,
                group_size: int = 8, provider_options: Mapping[str, Any] | None = None,
                reference_ratio: float = 0.5) -> LatencyTable:
    """Profile ``space`` on this machine and return (and, with ``output``, save) its latency table.

    Every group of ``group_size`` networks is timed round-robin with the unpruned reference network
    and appended to ``output``.partial.json; a re-run with the same options resumes from it.

    Args:
        space: The :class:`~nas_prune.space.ChannelSpace`.
        provider: ``cpu``, ``cuda`` (IO binding) or ``tensorrt`` (engine cache; whole networks).
        threads: onnxruntime intra-op threads.
        output: Table path (the partial file lives beside it).
        nets: Networks to time (default :func:`default_nets`).
        seed: Seed of the random designs.
        device_name: Name recorded in the table (default: host name).
        rounds: Interleaved rounds per group (default :func:`default_rounds`).
        runs_per_round: Runs of each network per round (timing setting).
        warmup: Untimed runs before timing.
        opt_level: onnxruntime graph optimisation level.
        batch: Batch size of the timed inputs.
        provider_options: The execution provider's options.
        group_size: Networks per interleaved group.
        reference_ratio: The reference network is ``space.uniform(reference_ratio)``. A reference
            near the middle of the space drifts like the candidates do; the full resnet18 (4x the
            latency of a typical candidate, weights far beyond the cache) made ratios noisier.
    """
    from nas_prune.latency._nets import NetFactory
    from nas_prune.progress import progress_bar

    rounds = default_rounds(threads) if rounds is None else rounds
    settings = TimingSettings(provider=provider, threads=threads, opt_level=opt_level, rounds=rounds,
                              runs_per_round=runs_per_round, warmup=warmup, batch=batch,
                              provider_options=dict(provider_options or {}))
    n = nets if nets is not None else default_nets(space)
    designs = design_archs(space, n, seed)
    plan_nets: list[dict[str, Any]] = [{"id": f"n{i:04d}", "file": f"n{i:04d}", "channels": d} for i, d in enumerate(designs)]
    # designs[:k] are the same for every n >= k, so a resumed run may ask for more or fewer networks
    ref_channels = dict(space.uniform(reference_ratio).channels)
    key = {"format": PARTIAL_FORMAT, "space": space.id, "settings": settings.to_json(), "seed": seed,
           "reference": ref_channels}
    partial = _PartialFile(output, key, machine_info(device_name))
    partial.resume({p["id"] for p in plan_nets})
    meta = partial.meta
    factory = NetFactory(space)
    meta["nets_method"] = factory.method

    def load(file: str) -> bytes:
        return factory.onnx(ref_channels) if file == "reference" else factory.onnx(designs[int(file[1:])])

    done = {r["id"] for r in partial.records}
    with progress_bar(f"profiling {space.id} ({provider}, {threads} thr)", total=n) as advance:
        advance(len(done))
        run_groups(load, "reference", plan_nets, settings, group_size=group_size, done=done, on_group=partial.add,
                   advance=advance)
    meta["load_average_end"] = machine_info(device_name)["load_average"]
    meta["build_seconds"] = round(partial.seconds(), 1)
    from nas_prune.latency._record import calibration_record

    meta["calibration"] = calibration_record("built", settings.to_json())
    table = table_from_records(space_id=space.id, structure=structure_from_space(space), settings=settings,
                               meta=meta, records=partial.records, input_shape=space.input_shape,
                               reference_channels=ref_channels)
    if output is not None:
        table.save(output)
        partial.remove()
    return table


def write_bundle(space: Any, path: str | os.PathLike[str], *, nets: int | None = None, seed: int = 0,
                 threads: int = 1, rounds: int = 30, runs_per_round: int = 20, warmup: int = 10,
                 opt_level: str = "all", group_size: int = 8, reference_ratio: float = 0.5,
                 preprocess: Mapping[str, Any] | None = None) -> Path:
    """Write a bundle (ONNX models + ``plan.json``) for ``python -m nas_prune.on_device run`` on a device.

    ``preprocess`` (``Preprocess.to_json()``: the network's input mean, std and resize) travels in
    the plan, the device's results and the imported table's ``meta``, so what the network expects
    on the device is written beside its timings (it does not change them).
    """
    import json

    from nas_prune.latency._nets import NetFactory
    from nas_prune.progress import progress_bar

    settings = TimingSettings(threads=threads, opt_level=opt_level, rounds=rounds, runs_per_round=runs_per_round,
                              warmup=warmup)
    n = nets if nets is not None else default_nets(space)
    designs = design_archs(space, n, seed)
    plan = {"format": BUNDLE_FORMAT, "version": FORMAT_VERSION, "space": space.id,
            "input_shape": list(space.input_shape), "settings": settings.to_json(), "group_size": group_size,
            "structure": structure_from_space(space), "reference": "models/reference.onnx",
            "reference_channels": dict(space.uniform(reference_ratio).channels),
            "nets": [{"id": f"n{i:04d}", "file": f"models/n{i:04d}.onnx", "channels": d} for i, d in enumerate(designs)]}
    if preprocess is not None:
        plan["preprocess"] = dict(preprocess)
    factory = NetFactory(space)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, progress_bar("writing bundle", total=n + 1) as advance:
        zf.writestr("plan.json", json.dumps(plan, indent=1))
        zf.writestr(plan["reference"], factory.onnx(plan["reference_channels"]))
        advance(1)
        for net, d in zip(plan["nets"], designs):
            zf.writestr(net["file"], factory.onnx(d))
            advance(1)
    return atomic_write_bytes(path, buf.getvalue())


def import_results(path: str | os.PathLike[str], *, space: Any | None = None,
                   emulated: str | None = None) -> LatencyTable:
    """Build a table from the results of ``python -m nas_prune.on_device run`` (checked against ``space``).

    Args:
        path: The results file.
        space: Check that the results belong to this space.
        emulated: The emulator the runner ran under (``qemu-aarch64``), recorded as ``meta.emulated``;
            the runner records one it detects itself. An emulated table is never "this machine's"
            (qemu-user shares the host's machine key) and says so wherever its calibration is shown.
    """
    res = load_results(path)
    plan = res["plan"]
    if space is not None and plan.get("space") != space.id:
        from nas_prune.errors import SpaceMismatchError

        raise SpaceMismatchError(f"results {path} are for space {plan.get('space')!r}, not {space.id!r}: use the matching space")
    try:
        settings = TimingSettings.from_json(res["settings"])
        records = [r for r in res["records"] if isinstance(r, dict)]
        for r in records:
            if not all(isinstance(r.get(k), (int, float)) for k in ("rel", "ref_round_ms")) or not isinstance(r.get("channels"), dict):
                raise ValueError("a record lacks rel, ref_round_ms or channels")
        from nas_prune.latency._record import calibration_record

        here = calibration_record("built", settings.to_json())
        # results from this very machine are its own table; from a phone or board they are that
        # device's, and must not be "calibrated" to the host that imports them
        meta = dict(res["meta"])
        if emulated:
            meta["emulated"] = emulated
        same = res["meta"].get("machine_key") == here["machine"] and res["meta"].get("onnxruntime") == here["onnxruntime"] \
            and not meta.get("emulated")
        cal = here if same else {"kind": "device", "device": meta.get("device"), "machine": meta.get("machine_key"),
                                 "onnxruntime": meta.get("onnxruntime")}
        if meta.get("emulated"):
            cal["emulated"] = meta["emulated"]
        return table_from_records(space_id=str(plan["space"]), structure=plan["structure"], settings=settings,
                                  meta={**meta, "source": "device runner", "complete": bool(res.get("complete")),
                                        **({"preprocess": plan["preprocess"]} if plan.get("preprocess") else {}),
                                        "calibration": cal},
                                  records=records, input_shape=plan["input_shape"],
                                  reference_channels=plan.get("reference_channels"))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidFileError(f"results file {path} is invalid ({exc}): re-run the device runner") from None
    except NasPruneError:
        raise
