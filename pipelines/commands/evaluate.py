"""`tandem evaluate`: standard metrics of a TREC run against a dataset's qrels."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import load_qrels
from core.data.runs import read_run
from core.errors import TandemError
from pipelines.commands.common import add_dataset_args, check_output_file, dataset_from
from pipelines.evaluation.metrics import MEASURES, evaluate, format_table

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="nDCG@10, MRR@10, Recall@100/1000, MAP of a TREC run",
        description="Evaluate a TREC run with trec_eval semantics (via ir-measures). "
        "Judged queries missing from the run count as 0.",
    )
    parser.add_argument("--run", required=True, type=Path, help="TREC run file")
    add_dataset_args(parser, required=False)
    parser.add_argument(
        "--qrels", type=Path, help="a qrels file (BEIR TSV or TREC) to score against instead of --dataset's split"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--per-query",
        type=Path,
        metavar="FILE",
        help="also write per-query values (TSV: query-id, measure, value) for significance tests",
    )
    parser.add_argument(
        "--measures",
        nargs="+",
        default=list(MEASURES),
        metavar="M",
        help=f"measures to compute: any ir-measures name, e.g. nDCG@20 P@5 R@1000 (default: {' '.join(MEASURES)})",
    )
    parser.set_defaults(handler=run_evaluate)


def warn_about_foreign_passages(run: dict, dataset, path: Path) -> None:
    """One warning when most of a run's passages are not in the dataset's corpus: another collection's run
    scores near zero, which must not pass for a figure."""
    passages = {doc_id for hits in run.values() for doc_id, _ in hits}
    foreign = [doc_id for doc_id in passages if doc_id not in dataset.corpus]
    if passages and len(foreign) > len(passages) / 2:
        log.warning(
            "%s: %d of its %d passages are not in %s's corpus (e.g. '%s'): a run of another collection?",
            path, len(foreign), len(passages), dataset.name, foreign[0],
        )  # fmt: skip


def run_evaluate(args: argparse.Namespace) -> int:
    if (args.qrels is None) == (args.dataset is None):
        raise TandemError("give exactly one of --dataset (its --split qrels) or --qrels FILE")
    dataset = dataset_from(args) if args.dataset else None
    if args.per_query:
        check_output_file(args.per_query, "per-query table", dataset, [args.run, args.qrels], flag="--per-query")
    run = read_run(args.run)
    if dataset is not None:
        warn_about_foreign_passages(run, dataset, args.run)
    qrels = load_qrels(args.qrels) if args.qrels else dataset.qrels(args.split)
    result = evaluate(run, qrels, args.measures)
    if args.per_query:
        with atomic_file(args.per_query) as out:
            out.write("query-id\tmeasure\tvalue\n")
            for query_id, values in result.per_query.items():
                for name, value in values.items():
                    out.write(f"{query_id}\t{name}\t{value:.6f}\n")
    if args.json:
        print(
            json.dumps(
                {"run": str(args.run), "split": args.split, "queries": result.num_queries, **result.aggregate}, indent=2
            )
        )
    else:
        judged_by = args.qrels if args.qrels else f"{dataset.name}/{args.split}"
        print(f"{args.run} on {judged_by} ({result.num_queries} queries)")
        print(format_table({args.run.name: result.aggregate}, args.measures))
    return 0
