"""`tandem run`: the main job, every stage end to end (see pipelines/runner.py), on one dataset or many."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.data.sources import open_dataset
from core.errors import TandemError
from core.outputs import claim_folder
from pipelines.modes import MODES
from pipelines.plan import parse_budget
from pipelines.runner import STAGES, load_config, print_config, run_all


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="the main job: BM25, dense, fine-tuning, mining, cross-encoder, reranking, report",
        description="Run every stage in order (" + " -> ".join(STAGES) + "), each into DIR/<stage>/ with the "
        "configuration it ran with. Finished stages are skipped, so an interrupted run resumes where it stopped. "
        "The report (DIR/report/: report.md, index.html, metrics.json, record.json, plots) compares BM25, dense "
        "zero-shot, dense fine-tuned, their RRF hybrid, BM25 and the hybrid each reranked by the cross-encoder, "
        "each of those mixed with its first stage (fused) and with BM25 and dense (convex), and the dense "
        "distilled systems when distill.enabled; the result is the one with the best dev nDCG@10. A dataset "
        "without a train split still gets a "
        "full report: models transferred from another run (--models-from), self-supervised title queries "
        "(--mode self-supervised) or zero-shot systems only; the report says which mode ran. Several datasets "
        "run into DIR/<name>/ each and add a BEIR-style table in DIR/report.md.",
    )
    parser.add_argument(
        "--dataset",
        nargs="+",
        metavar="D",
        help="one or more BEIR folders or names (looked up under $TANDEM_DATA_DIR, then the cache, then downloaded)",
    )
    parser.add_argument("--strict", action="store_true", help="make qrels rows with unknown ids an error")
    parser.add_argument("--out", type=Path, help="run folder (required unless --print-config)")
    parser.add_argument("--config", type=Path, help="YAML or TOML file overriding the defaults (see --print-config)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="an option over the defaults and --config, e.g. --set reranker.epochs=2 (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test profile: every stage on little compute")
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="train, transfer, self-supervised or zero-shot (default: auto = train when the "
        "dataset has a train split, else transfer when models are given, else zero-shot)",
    )
    parser.add_argument(
        "--models-from",
        type=Path,
        metavar="DIR",
        help="another run's folder: use its retriever/model and reranker/<loss> instead of training (transfer mode)",
    )
    parser.add_argument(
        "--force",
        nargs="*",
        choices=STAGES,
        metavar="STAGE",
        help="redo these stages (and all after); alone, redo every stage, which may also replace another "
        "dataset's results in --out (refused otherwise)",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print every stage with its size and an estimated time (from a short measured warm-up "
        "on this machine), and exit",
    )
    parser.add_argument(
        "--budget",
        metavar="TIME",
        help="fit the run into TIME (e.g. 45m, 2h) by the plan's estimate: first the distill stage is "
        "skipped, then the cross-encoder's steps and rerank depth are scaled down (to half at most), "
        "last the retriever's steps with them; the report records the cuts",
    )
    parser.add_argument(
        "--fresh-warmup",
        action="store_true",
        help="time the warm-up again instead of reusing what this machine measured for the same job "
        "(the cache keeps it per CPU, collection and timed options)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the configuration that would run, and exit")
    parser.set_defaults(handler=run_main)


def run_main(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.quick, args.set)
    if args.mode:
        config["run"]["mode"] = args.mode
    if args.models_from:
        config["run"]["models_from"] = str(args.models_from.resolve())
    if args.print_config:
        print(print_config(config), end="")
        return 0
    if args.out is None or not args.dataset:
        raise TandemError("--dataset and --out are required (except with --print-config)")
    datasets = [open_dataset(spec, strict=args.strict) for spec in args.dataset]
    force = list(STAGES) if args.force == [] else args.force or []
    budget = parse_budget(args.budget) / len(datasets) if args.budget else None
    plan = {"show_plan": True, "budget": budget, "plan_only": args.plan, "fresh_warmup": args.fresh_warmup}
    if len(datasets) == 1:
        ran = run_all(datasets[0], args.out, config, force, **plan)
        if args.plan:
            return 0
        print(f"stages run: {', '.join(ran) or 'none (all finished)'}; report: {args.out / 'report' / 'report.md'}")
        return 0
    from pipelines.evaluation.table import write_table

    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise TandemError(f"dataset folder names must differ (they name the run folders): {names}")
    if not args.plan:
        claim_folder(args.out, "runs", [path for d in datasets for path in d.protected])
    for dataset in datasets:
        ran = run_all(dataset, args.out / dataset.name, config, force, **plan)
        print(f"{dataset.name}: stages run: {', '.join(ran) or 'none (all finished)'}")
    if args.plan:
        return 0
    report = write_table(args.out, {d.name: args.out / d.name for d in datasets})
    print(f"table: {report}")
    return 0
