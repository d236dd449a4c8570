"""`tandem compare`: the comparison table (and optionally the full report) for any TREC runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.data.runs import read_run
from core.errors import TandemError
from core.outputs import claim_folder
from pipelines.commands.common import add_dataset_args, check_output_folder, dataset_from
from pipelines.evaluation.explorer import explorer_data, write_explorer
from pipelines.evaluation.metrics import evaluate
from pipelines.evaluation.report import System, markdown_table, write_report


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare",
        help="compare TREC runs: metrics, significance vs a baseline, plots",
        description="Evaluate several runs on one split and print one table (nDCG@10, MRR@10, Recall@100) with a "
        "paired t-test of each against the baseline (the first run unless --baseline). With --out, also write "
        "report.md, metrics.json and plots; --rerank-of pairs a reranked run with its first stage for a per-query plot.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="TREC run files")
    add_dataset_args(parser)
    parser.add_argument("--names", nargs="+", help="display names, one per run (default: file names)")
    parser.add_argument("--baseline", help="name of the baseline system (default: the first run)")
    parser.add_argument(
        "--rerank-of", nargs="+", default=[], metavar="RERANKED=FIRST", help="per-query plot pairs, by name"
    )
    parser.add_argument("--out", type=Path, help="write report.md, metrics.json and plots into this folder")
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    names = args.names or [run.name for run in args.runs]
    if len(names) != len(args.runs):
        raise TandemError(f"--names gives {len(names)} names for {len(args.runs)} runs")
    if len(set(names)) != len(names):
        raise TandemError("system names must be unique (use --names)")
    dataset = dataset_from(args)
    if args.out:
        check_output_folder(args, "report", dataset)
    qrels = dataset.qrels(args.split)
    systems = [
        System(name, evaluate(read_run(path), qrels), run_file=path)
        for name, path in zip(names, args.runs, strict=True)
    ]
    baseline = args.baseline or names[0]
    if baseline not in names:
        raise TandemError(f"--baseline '{baseline}' is not one of {names}")
    for pair in args.rerank_of:
        reranked, _, first = pair.partition("=")
        if reranked not in names or first not in names:
            raise TandemError(f"--rerank-of '{pair}': both sides must be system names ({names})")
        next(s for s in systems if s.name == reranked).first_stage = first
    print(markdown_table(systems, baseline))
    if args.out:
        claim_folder(args.out, "report")
        title = f"{dataset.name} / {args.split}"
        path = write_report(args.out, title, systems, baseline)
        data = explorer_data(title, systems, baseline, None, qrels, dataset.queries, dataset.corpus)
        write_explorer(args.out / "index.html", data)
        print(f"wrote {path} and {args.out / 'index.html'}")
    return 0
