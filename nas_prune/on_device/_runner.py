"""Run a latency bundle on the target device and write the results (no torch needed).

A bundle (``nas-prune profile bundle``) is a zip of ONNX models and ``plan.json``. The runner
extracts it safely (members whose paths would leave the target folder are refused: "zip slip"),
times the networks in groups interleaved with the reference network exactly as the local
profiler does (:mod:`nas_prune.on_device._timing`), and writes the results after every group, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

from nas_prune._io import read_json, write_json
from nas_prune.errors import InvalidFileError, NasPruneError
from nas_prune.on_device._info import machine_info
from nas_prune.on_device._timing import TimingSettings, relative_records
from nas_prune.on_device._worker import time_models

__all__ = ["BUNDLE_FORMAT", "RESULTS_FORMAT", "FORMAT_VERSION", "safe_extract", "read_plan", "run_bundle",
           "run_groups", "load_results"]

BUNDLE_FORMAT = "nas-prune/latency-bundle"
RESULTS_FORMAT = "nas-prune/latency-results"
FORMAT_VERSION = 1
_MAX_MEMBER_BYTES = 1 << 30


def safe_extract(bundle: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Extract ``bundle`` into ``target``, refusing absolute paths, ``..`` and links (zip slip).

    Raises:
        InvalidFileError: not a zip, or a member would land outside ``target``.
    """
    bundle, root = Path(bundle), Path(target).resolve()
    if not bundle.is_file():
        raise InvalidFileError(f"bundle {bundle} does not exist: check the path")
    try:
        zf = zipfile.ZipFile(bundle)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidFileError(f"bundle {bundle} is not a zip file ({exc}): copy it again") from None
    with zf:
        for info in zf.infolist():
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            dest = (root / name).resolve()
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name or is_link or (
                    dest != root and root not in dest.parents):
                raise InvalidFileError(
                    f"bundle {bundle} member {name!r} would be written outside the target folder (zip slip): "
                    "refusing it; rebuild the bundle with 'nas-prune profile bundle'"
                )
            if info.file_size > _MAX_MEMBER_BYTES:
                raise InvalidFileError(f"bundle {bundle} member {name!r} is larger than 1 GiB: refusing it")
        try:
            zf.extractall(root)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InvalidFileError(f"bundle {bundle} is corrupt ({exc}): copy it again") from None
    return root


def read_plan(root: Path, source: str) -> dict[str, Any]:
    """Read and validate ``plan.json`` of an extracted bundle."""
    plan = read_json(root / "plan.json", what=f"plan of bundle {source}")
    bad = lambda why: InvalidFileError(f"bundle {source} has an invalid plan.json ({why}): rebuild it")  # noqa: E731
    if not isinstance(plan, dict) or plan.get("format") != BUNDLE_FORMAT:
        raise bad(f"format must be {BUNDLE_FORMAT!r}")
    if plan.get("version") != FORMAT_VERSION:
        raise bad(f"version {plan.get('version')!r} is not {FORMAT_VERSION}")
    if not isinstance(plan.get("nets"), list) or not isinstance(plan.get("reference"), str):
        raise bad("'nets' and 'reference' are required")
    try:
        TimingSettings.from_json(plan["settings"])
    except (KeyError, TypeError, ValueError, NasPruneError) as exc:
        raise bad(f"settings: {exc}") from None
    for net in plan["nets"]:
        if not isinstance(net, dict) or not isinstance(net.get("id"), str) or not isinstance(net.get("file"), str) \
                or not isinstance(net.get("channels"), dict):
            raise bad("every net needs 'id', 'file' and 'channels'")
    return plan


def run_groups(load: Callable[[str], bytes | str], reference: str, nets: list[dict[str, Any]],
               settings: TimingSettings, *, group_size: int, done: Mapping[str, Any],
               on_group: Callable[[list[dict[str, Any]]], None], advance: Callable[[int], None] | None = None) -> None:
    """Time ``nets`` in groups of ``group_size``, each group interleaved with the reference.

    ``load(file)`` gives a model's ONNX (bytes or path); nets whose id is in ``done`` are skipped.
    ``on_group(records)`` is called after every group (the caller saves them).
    """
    ref_model = load(reference)
    todo = [n for n in nets if n["id"] not in done]
    for start in range(0, len(todo), group_size):
        group = todo[start:start + group_size]
        models = {"__reference__": ref_model, **{net["id"]: load(net["file"]) for net in group}}
        whats = {"__reference__": f"reference model {reference}", **{net["id"]: f"model {net['file']}" for net in group}}
        seeds = {name: i for i, name in enumerate(models)}
        stats = relative_records(time_models(models, settings, seeds=seeds, whats=whats), "__reference__", settings)
        records = [{"id": net["id"], "channels": net["channels"], **stats[net["id"]]} for net in group]
        on_group(records)
        if advance is not None:
            advance(len(group))


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_bundle(bundle: str | os.PathLike[str], output: str | os.PathLike[str], *, threads: int | None = None,
               device_name: str | None = None, rounds: int | None = None,
               advance: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run every network of ``bundle`` and write the results JSON to ``output`` (resumable).

    Args:
        bundle: Zip written by ``nas-prune profile bundle``.
        output: Results file; if it exists for the same bundle and threads, finished groups are kept.
        threads: onnxruntime intra-op threads (default: the plan's).
        device_name: Name recorded in the results (default: the host name).
        rounds: Override the plan's rounds per group.
    """
    bundle, output = Path(bundle), Path(output)
    digest = _digest(bundle) if bundle.is_file() else ""
    with tempfile.TemporaryDirectory(prefix="nas-prune-bundle-") as tmp:
        root = safe_extract(bundle, tmp)
        plan = read_plan(root, str(bundle))
        s = dict(plan["settings"])
        if threads is not None:
            s["threads"] = int(threads)
        if rounds is not None:
            s["rounds"] = int(rounds)
        settings = TimingSettings.from_json(s)
        results: dict[str, Any] = {
            "format": RESULTS_FORMAT, "version": FORMAT_VERSION, "bundle_sha256": digest,
            "plan": {k: v for k, v in plan.items() if k != "nets"}, "settings": settings.to_json(),
            "meta": machine_info(device_name), "records": [], "complete": False,
        }
        if output.exists():
            old = read_json(output, what="results file")
            if isinstance(old, dict) and old.get("bundle_sha256") == digest and old.get("settings") == results["settings"] \
                    and isinstance(old.get("records"), list):
                results["records"] = old["records"]
                results["meta"]["resumed_from"] = old.get("meta", {}).get("date")

        def load(file: str) -> str:
            path = (root / file).resolve()
            if root not in path.parents or not path.is_file():
                raise InvalidFileError(f"bundle {bundle} lacks model {file!r} named in its plan: rebuild it")
            return str(path)

        def on_group(records: list[dict[str, Any]]) -> None:
            results["records"].extend(records)
            write_json(output, results)

        done = {r["id"] for r in results["records"]}
        try:
            run_groups(load, plan["reference"], plan["nets"], settings, group_size=int(plan.get("group_size", 8)),
                       done=done, on_group=on_group, advance=advance)
        except InvalidFileError as exc:  # a model of the bundle is broken: name the bundle and how to fix it
            if str(bundle) in str(exc):
                raise
            raise InvalidFileError(f"bundle {bundle}: {exc}; rebuild the bundle with 'nas-prune profile bundle'") from None
        results["complete"] = True
        results["meta"]["load_average_end"] = machine_info(device_name)["load_average"]
        write_json(output, results)
        return results


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a results file written by :func:`run_bundle`."""
    obj = read_json(path, what="results file")
    ok = isinstance(obj, dict) and obj.get("format") == RESULTS_FORMAT and obj.get("version") == FORMAT_VERSION \
        and isinstance(obj.get("records"), list) and isinstance(obj.get("plan"), dict) and isinstance(obj.get("meta"), dict)
    if not ok:
        raise InvalidFileError(
            f"results file {path} is not a nas-prune latency results file (format {RESULTS_FORMAT!r}): "
            "write it with 'python -m nas_prune.on_device run'"
        )
    return json.loads(json.dumps(obj))
