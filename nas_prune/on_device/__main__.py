"""``python -m nas_prune.on_device run BUNDLE --threads T -o RESULTS`` (no torch; exit 2 on bad input)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from nas_prune.errors import NasPruneError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas_prune.on_device",
                                     description="Time the networks of a nas-prune latency bundle on this device.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a bundle and write results JSON (resumes an interrupted run)")
    run.add_argument("bundle", help="bundle.zip written by 'nas-prune profile bundle'")
    run.add_argument("-o", "--output", required=True, help="results JSON to write")
    run.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: the plan's)")
    run.add_argument("--device-name", default=None, help="name recorded in the results (default: host name)")
    run.add_argument("--rounds", type=int, default=None, help="override the plan's rounds per group")
    args = parser.parse_args(argv)
    try:
        from nas_prune.on_device._runner import run_bundle

        res = run_bundle(args.bundle, args.output, threads=args.threads, device_name=args.device_name,
                         rounds=args.rounds)
    except NasPruneError as exc:
        print(f"nas_prune.on_device: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nas_prune.on_device: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"{len(res['records'])} networks timed -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
