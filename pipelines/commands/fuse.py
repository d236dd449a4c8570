"""`tandem fuse`: hybrid runs from existing runs (reciprocal rank fusion or score interpolation)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.data.runs import read_run, truncate, write_run
from core.errors import TandemError
from pipelines.commands.common import check_output_file, positive_int, weight
from pipelines.defaults import HybridDefaults
from pipelines.evaluation.fusion import interpolate, rrf

HYBRID = HybridDefaults()
"""Defaults shared with `tandem run` (pipelines/defaults.py)."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fuse",
        help="fuse TREC runs: reciprocal rank fusion or score interpolation",
        description="RRF: score = sum of 1/(rrf_k + rank) over runs. Interpolation (exactly two runs): "
        "ALPHA * first + (1 - ALPHA) * second after per-query min-max normalisation; e.g. a reranked run with its "
        "first stage, reported as its own system. Only the top --depth of each run is fused.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    parser.add_argument("--method", choices=["rrf", "interpolation"], default="rrf", help="default: rrf")
    parser.add_argument(
        "--alpha", type=weight, default=0.5, help="weight of the first run for interpolation (default: 0.5)"
    )
    parser.add_argument("--rrf-k", type=positive_int, default=HYBRID.rrf_k, help="RRF constant (default: %(default)s)")
    parser.add_argument(
        "--depth", type=positive_int, default=HYBRID.depth, help="hits of each run fused (default: %(default)s)"
    )
    parser.add_argument("--out", required=True, type=Path, help="fused TREC run to write")
    parser.set_defaults(handler=run_fuse)


def run_fuse(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise TandemError("give at least two runs to fuse")
    if args.method == "interpolation" and len(args.runs) != 2:
        raise TandemError("interpolation fuses exactly two runs")
    check_output_file(args.out, "TREC run", None, args.runs)
    runs = [truncate(read_run(path), args.depth) for path in args.runs]
    if args.method == "rrf":
        fused = rrf(runs, args.rrf_k, args.depth, args.depth)
    else:
        fused = interpolate(runs[0], runs[1], args.alpha, args.depth, args.depth)
    write_run(fused, args.out, tag=f"fuse-{args.method}")
    print(f"fused {len(args.runs)} runs ({args.method}) into {args.out}")
    return 0
