"""``nas-prune profile`` (build latency tables, here or through a device bundle) and ``nas-prune latency``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from nas_prune.cli import _common as opts
from nas_prune.errors import InvalidArchitectureError, NasPruneError
from nas_prune.on_device import PROVIDERS

__all__ = ["register"]

profile_app = typer.Typer(help="Profile a space into a latency table (here, or on a device through a bundle).")
latency_app = typer.Typer(help="Predict, measure and validate latencies.", no_args_is_help=True)


@profile_app.callback(invoke_without_command=True)
def profile(
    ctx: typer.Context,
    space_file: Optional[Path] = typer.Option(None, "--space", help="Space JSON."),
    provider: str = typer.Option("cpu", help=" | ".join(PROVIDERS)),
    threads: int = typer.Option(1, help="onnxruntime intra-op threads."),
    device_name: Optional[str] = typer.Option(None, help="Device name recorded in the table (default: host name)."),
    nets: Optional[int] = typer.Option(None, help="Networks to time (default: 5 per fitted coefficient, >= 60)."),
    rounds: Optional[int] = typer.Option(None, help="Interleaved rounds per group of networks (default: 30 at 1 thread, "
                                         "60 at more: every core is then in the measurement)."),
    runs_per_round: int = typer.Option(20, help="Runs of each network per round."),
    opt_level: str = typer.Option("all", help="Graph optimisation: disable | basic | extended | all."),
    seed: int = typer.Option(0, help="Seed of the random designs."),
    reference_ratio: float = typer.Option(0.5, help="The reference network is the space's uniform network at this width."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Table JSON to write."),
) -> None:
    """Measure a latency table for a space on this machine (saves as it goes; re-run to resume)."""
    if ctx.invoked_subcommand is not None:
        return
    if space_file is None or output is None:
        raise NasPruneError("nas-prune profile needs --space FILE and -o TABLE (or a subcommand: bundle, import)")
    from nas_prune.latency import build_table, flat_table_warning
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load(space_file)
    table = build_table(sp, provider=provider, threads=threads, output=output, nets=nets, seed=seed,
                        device_name=device_name, rounds=rounds, runs_per_round=runs_per_round, opt_level=opt_level,
                        reference_ratio=reference_ratio)
    cv = table.model["cv"]
    typer.echo(f"{output}: {len(table.entries)} networks, reference {table.reference_ms:.4f} ms, "
               f"cross-validated {cv['within_10pct']:.1%} within 10% (median error {cv['median_abs_err']:.1%})")
    flat = flat_table_warning(table, sp)
    if flat:
        typer.echo(flat, err=True)


@profile_app.command("bundle")
def profile_bundle(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    nets: Optional[int] = typer.Option(None, help="Networks to time (default: 5 per fitted coefficient, >= 60)."),
    threads: int = typer.Option(1, help="Default threads of the plan (the runner's --threads overrides it)."),
    rounds: int = typer.Option(30, help="Interleaved rounds per group."),
    runs_per_round: int = typer.Option(20, help="Runs of each network per round."),
    warmup: int = typer.Option(10, help="Untimed runs of each network before the first round."),
    seed: int = typer.Option(0, help="Seed of the random designs."),
    output: Path = typer.Option(..., "-o", "--output", help="bundle.zip to write."),
    mean: Optional[str] = opts.MEAN_OPTION,
    std: Optional[str] = opts.STD_OPTION,
    resize: Optional[int] = opts.RESIZE_OPTION,
) -> None:
    """Write ONNX models and a plan to time on a device with 'python -m nas_prune.on_device run'."""
    from nas_prune.data import Preprocess
    from nas_prune.latency import write_bundle
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load(space_file)
    given = mean is not None or std is not None or resize is not None
    preprocess = Preprocess.from_options(mean, std, resize).to_json() if given else None  # recorded, never timed
    write_bundle(sp, output, nets=nets, seed=seed, threads=threads, rounds=rounds, runs_per_round=runs_per_round,
                 warmup=warmup, preprocess=preprocess)
    typer.echo(f"{output}: bundle for {sp.id}; on the device run: python -m nas_prune.on_device run {output.name} "
               f"--threads {threads} -o results.json")


@profile_app.command("import")
def profile_import(
    results: Path = typer.Argument(..., help="results.json written by the device runner."),
    space_file: Optional[Path] = typer.Option(None, "--space", help="Check the results belong to this space."),
    emulated: Optional[str] = typer.Option(None, help="The results were timed under this emulator (e.g. "
                                           "qemu-aarch64): recorded in the table, never a device's speed."),
    output: Path = typer.Option(..., "-o", "--output", help="Table JSON to write."),
) -> None:
    """Turn device-runner results into a latency table."""
    from nas_prune.latency import import_results
    from nas_prune.space import ChannelSpace

    table = import_results(results, space=ChannelSpace.load(space_file) if space_file else None, emulated=emulated)
    table.save(output)
    where = f"EMULATED ({table.meta['emulated']}), not a device's speed" if table.meta.get("emulated") else \
        f"from {table.meta.get('device')}"
    typer.echo(f"{output}: {len(table.entries)} networks {where}, "
               f"cross-validated {table.model['cv']['within_10pct']:.1%} within 10%")


@latency_app.command("predict")
def predict(
    tables: List[Path] = typer.Option(..., "--table", help="Latency table (repeat for several devices)."),
    arch_file: Path = typer.Option(..., "--arch", help="Architecture JSON, or a search result (best.json)."),
    space_file: Optional[Path] = typer.Option(None, "--space", help="Space JSON: lets a table this machine did not "
                                              "calibrate be checked (and adapted) here first."),
    calibration: str = typer.Option("auto", help="auto (this machine's calibration) | refresh | off (as stored)."),
    reference_ms: Optional[float] = typer.Option(None, help="A fresh latency of the reference network (ms)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the predicted latency (ms) of an architecture under each table, as calibrated on this machine."""
    from nas_prune.cli._common import load_arch
    from nas_prune.latency import calibrated_table, calibration_label
    from nas_prune.space import ChannelSpace

    arch = load_arch(arch_file)
    sp = ChannelSpace.load(space_file) if space_file else None
    rows: list[dict[str, Any]] = []
    said: list[str] = []
    for path in tables:
        t = calibrated_table(path, sp, mode=calibration, log=said.append)
        allowed = t.structure.get("genes", {}) if isinstance(t.structure, dict) else {}
        for gene, count in arch.channels.items():  # the table extrapolates silently: refuse what no space allows
            if gene in allowed and count not in allowed[gene]:
                raise InvalidArchitectureError(f"architecture {arch_file}: gene {gene!r} has {count} channels; "
                                               f"table {path} allows {allowed[gene]}: pick one of those")
        rows.append({"table": str(path), "device": t.meta.get("device"), "threads": t.meta.get("threads"),
                     "latency_ms": t.predict(arch, reference_ms=reference_ms), "relative": t.relative(arch),
                     "calibration": calibration_label(t)})
    for line in said:  # after the checks, so that an error stays the only line
        typer.echo(line, err=True)
    if as_json:
        typer.echo(json.dumps(rows if len(rows) > 1 else rows[0]))
    else:
        for r in rows:
            typer.echo(f"{r['latency_ms']:.4f}" if len(rows) == 1 else f"{r['table']}: {r['latency_ms']:.4f} ms")


@latency_app.command("adapt")
def adapt(
    table_file: Path = typer.Option(..., "--table", help="Latency table measured elsewhere (or long ago)."),
    space_file: Path = typer.Option(..., "--space", help="Space JSON of the table."),
    output: Path = typer.Option(..., "-o", "--output", help="Table JSON to write, recorded as adapted to this machine."),
    nets: int = typer.Option(120, help="Networks to measure at most (the check's 12 included; --seconds binds first)."),
    seconds: float = typer.Option(60.0, help="Measurement time limit of the adaptation (s)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild the table here if adaptation is not enough."),
    force: bool = typer.Option(False, "--force", help="Adapt even when the check says the table fits."),
    seed: int = typer.Option(15, help="Seed of the measured networks."),
) -> None:
    """Check a table on this machine and adapt it (few-shot correction) or rebuild it; write the result."""
    from nas_prune.latency import LatencyTable, adapt_table, calibrate, calibration_label, foreign_reason
    from nas_prune.space import ChannelSpace

    if nets < 6 or seconds <= 0:
        raise NasPruneError(f"--nets {nets} / --seconds {seconds}: adaptation needs at least 6 networks and some time")
    sp = ChannelSpace.load(space_file)
    table = LatencyTable.load(table_file)
    table.check_space(sp)
    reason = foreign_reason(table) or "asked for"
    say = lambda m: typer.echo(m, err=True)  # noqa: E731
    if force:
        out = adapt_table(table, sp, n=nets, max_seconds=seconds, seed=seed, reason=reason, log=say)
    else:
        out = calibrate(table, sp, reason=reason, rebuild=rebuild, seed=seed, log=say, n=nets, max_seconds=seconds,
                        rebuild_output=Path(str(output) + ".rebuild.json"))
    out.save(output)
    typer.echo(f"{output}: {calibration_label(out)}")


@latency_app.command("refit")
def refit(
    table_file: Path = typer.Option(..., "--table", help="Latency table to fit again (nothing is timed)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Table JSON to write (default: in place)."),
) -> None:
    """Fit a table's model again to its own measured networks, with this version's model choices."""
    from nas_prune.latency import LatencyTable, refit_table

    table = LatencyTable.load(table_file)
    new = refit_table(table)
    out = new.save(output or table_file)
    b, a = new.model["refit"]["before"], new.model
    def desc(m: dict[str, Any]) -> str:
        cv = m.get("cv") or {}
        return (f"block {m.get('block')}, terms {'+'.join(m['terms'])}, cross-validated median "
                f"error {100 * cv.get('median_abs_err', float('nan')):.2f} %, within +-10 % "
                f"{100 * cv.get('within_10pct', float('nan')):.1f} %")
    typer.echo(f"{out}: was {desc(b)}; now {desc(a)}")


@latency_app.command("measure")
def measure(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    arch_file: Optional[Path] = typer.Option(None, "--arch", help="Architecture JSON or search result (default: the full model)."),
    threads: int = typer.Option(1, help="onnxruntime intra-op threads."),
    provider: str = typer.Option("cpu", help=" | ".join(PROVIDERS)),
    repeats: int = typer.Option(300, help="Timed runs."),
) -> None:
    """Time the materialized architecture end to end in onnxruntime; print median, p10 and IQR (ms)."""
    from nas_prune.cli._common import load_arch
    from nas_prune.latency import arch_onnx_bytes, measure_latency
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load(space_file)
    arch = load_arch(arch_file) if arch_file else sp.full()
    stats = measure_latency(arch_onnx_bytes(sp, arch), sp.input_shape, threads=threads, provider=provider, repeats=repeats)
    typer.echo(json.dumps({**stats, "threads": threads, "provider": provider}))


@latency_app.command("validate")
def validate(
    table_file: Path = typer.Option(..., "--table", help="Latency table."),
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    n: int = typer.Option(50, "--n", help="Random architectures to time."),
    seed: int = typer.Option(0, help="Seed of the architectures."),
    rounds: Optional[int] = typer.Option(None, help="Override the table's rounds per group."),
    exact: bool = typer.Option(False, "--exact", help="Materialize + torch-export every network (slow) "
                               "instead of slicing the full network's ONNX."),
    as_json: bool = typer.Option(False, "--json", help="Print the full JSON."),
) -> None:
    """Time N random architectures end to end and compare them with the table's predictions."""
    from nas_prune.latency import LatencyTable, validate_table
    from nas_prune.space import ChannelSpace

    if n < 3:
        raise NasPruneError(f"--n {n}: validate needs at least 3 architectures")
    res = validate_table(LatencyTable.load(table_file), ChannelSpace.load(space_file), n=n, seed=seed, rounds=rounds,
                         exact=exact)
    if as_json:
        typer.echo(json.dumps(res, indent=2))
    else:
        ci = res["intervals"]

        def iv(key: str, pct: bool = True) -> str:
            lo, hi = ci[key]
            if lo is None:
                return ""
            return f" [{lo:.1%}, {hi:.1%}]" if pct else f" [{lo:.3f}, {hi:.3f}]"

        spearman = "-" if res["spearman"] is None else f"{res['spearman']:.3f}"
        typer.echo(f"n={res['n']} within 5%: {res['within_5pct']:.1%}{iv('within_5pct')}  within 10%: "
                   f"{res['within_10pct']:.1%}{iv('within_10pct')}  median error {res['median_abs_err']:.1%}"
                   f"{iv('median_abs_err')}  Spearman {spearman}{iv('spearman', False)}  (95% bootstrap intervals)  "
                   f"predict {res['predict_us']:.1f} us")
        typer.echo(f"load average during the measurement: start {res['load_average_start'][0]:.2f}, max "
                   f"{res['load_1min_max']:.2f}, end {res['load_average_end'][0]:.2f} (1 min); table "
                   f"{res['calibration'] or 'without calibration record'}, built on {res['built_on']['device']}, "
                   f"validated on {res['validated_on']['host']} ({res['validated_on']['machine_key']})")


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")
    app.add_typer(latency_app, name="latency")
