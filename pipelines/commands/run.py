"""`tandem run`: the main job, every stage end to end (see pipelines/run.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import TandemError
from pipelines.commands.common import add_dataset_args, dataset_from
from pipelines.runner import STAGES, load_config, print_config, run_all


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="the main job: BM25, dense, fine-tuning, mining, cross-encoder, reranking, report",
        description="Run every stage in order (" + " -> ".join(STAGES) + "), each into DIR/<stage>/ with the "
        "configuration it ran with. Finished stages are skipped, so an interrupted run resumes where it stopped. "
        "The report (DIR/report/report.md, metrics.json, plots) compares BM25, dense zero-shot, dense fine-tuned, "
        "hybrid and both first stages reranked by the cross-encoder.",
    )
    add_dataset_args(parser, split=None)
    parser._option_string_actions["--dataset"].required = False  # not needed for --print-config
    parser.add_argument("--out", type=Path, help="run folder (required unless --print-config)")
    parser.add_argument("--config", type=Path, help="YAML or TOML file overriding the defaults (see --print-config)")
    parser.add_argument("--quick", action="store_true", help="smoke-test profile: every stage on little compute")
    parser.add_argument(
        "--force", nargs="+", default=[], choices=STAGES, metavar="STAGE", help="redo these stages (and all after)"
    )
    parser.add_argument("--print-config", action="store_true", help="print the configuration that would run, and exit")
    parser.set_defaults(handler=run_main)


def run_main(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.quick)
    if args.print_config:
        print(print_config(config), end="")
        return 0
    if args.out is None or args.dataset is None:
        raise TandemError("--dataset and --out are required (except with --print-config)")
    ran = run_all(dataset_from(args), args.out, config, args.force)
    print(f"stages run: {', '.join(ran) or 'none (all finished)'}; report: {args.out / 'report' / 'report.md'}")
    return 0
