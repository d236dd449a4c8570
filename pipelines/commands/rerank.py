"""`tandem reranker train` and `tandem rerank`."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core.data.beir import BeirDataset, load_qrels
from core.data.groups import read_groups, write_groups
from core.data.runs import Run, read_run, write_run
from core.data.sources import open_dataset
from core.errors import TandemError
from core.options import build, resolve_options
from core.parts import torchrun_device, torchrun_world, work_in_parts
from pipelines.commands.common import (
    add_dataset_args,
    add_precision_arg,
    add_trainer_options,
    check_output_file,
    command_options,
    dataset_from,
    positive_int,
    prepare_training_output,
    weight,
    without_negatives_note,
    write_config,
)
from pipelines.defaults import RerankDefaults, RerankerDefaults
from pipelines.evaluation.dev_score import rerank_dev_score
from pipelines.evaluation.fusion import interpolate_reranked
from rerank.model import CrossEncoder, is_cross_encoder
from rerank.rerank import rerank_run
from rerank.teacher import score_groups
from rerank.train import RerankerConfig, train_reranker

log = logging.getLogger(__name__)
RERANK = RerankDefaults()
RERANKER = RerankerDefaults()
"""Defaults shared with `tandem run` (pipelines/defaults.py)."""


def register(commands: argparse._SubParsersAction) -> None:
    trainer = commands.add_parser("reranker", help="train a cross-encoder reranker")
    sub = trainer.add_subparsers(dest="reranker_command", metavar="ACTION", required=True)
    train = sub.add_parser(
        "train",
        help="train a cross-encoder on mined groups (listwise NLL or pointwise BCE)",
        description="Fine-tune a cross-encoder on training groups (from `tandem mine`). Each step scores B groups of "
        "up to --positives positives + hard negatives (resampled every epoch) in one forward pass. --loss nll: "
        "softmax cross-entropy over each group (localized contrastive estimation); --loss bce: pointwise baseline "
        "on the same pairs. With --dev-run and --dev-qrels it reranks those dev queries every --eval-every steps "
        "and keeps the best weights, as `tandem run` does; without them it keeps the last step's. Saves a Hugging "
        "Face folder that also loads as a sentence-transformers CrossEncoder.",
    )
    train.add_argument(
        "--groups", required=True, type=Path, nargs="+", help="training groups JSONL file(s), concatenated"
    )
    train.add_argument(
        "--dataset",
        help="BEIR folder or name whose corpus the groups' passage ids refer to "
        "(not needed for groups written with --with-text)",
    )
    train.add_argument("--out", required=True, type=Path, help="output model folder (checkpoints inside)")
    train.add_argument(
        "--dev-run",
        type=Path,
        help="first-stage TREC run of dev queries (never trained on): reranking its top --eval-depth hits every "
        "--eval-every steps chooses the weights kept (needs --dev-qrels and --dataset)",
    )
    train.add_argument("--dev-qrels", type=Path, help="qrels (BEIR TSV or TREC) judging the --dev-run queries")
    train.add_argument(
        "--eval-depth",
        type=positive_int,
        default=RERANKER.eval_depth,
        help="dev hits per query each evaluation reranks (default: %(default)s)",
    )
    add_trainer_options(train, RerankerConfig)
    train.set_defaults(handler=run_train)

    score = sub.add_parser(
        "score-groups",
        help="store a cross-encoder's score of every passage in training groups (for distillation)",
        description="Score every (query, passage) of every group with a trained cross-encoder and write the groups "
        "with a `teacher` score on each passage; `tandem retriever train --negatives OUT --loss kl` (or margin-mse) "
        "then distils the cross-encoder into the bi-encoder.",
    )
    score.add_argument("--groups", required=True, type=Path, help="training groups JSONL (from `tandem mine`)")
    score.add_argument("--dataset", help="BEIR folder or name the groups' passage ids refer to")
    score.add_argument("--model", required=True, help="trained cross-encoder folder or HF name (the teacher)")
    score.add_argument("--out", required=True, type=Path, help="scored groups JSONL to write")
    score.add_argument(
        "--batch-size",
        type=positive_int,
        default=RERANK.batch_size,
        help="pairs per forward pass (default: %(default)s)",
    )
    add_precision_arg(score, inference=True)
    score.add_argument("--device", help="cpu, cuda (default: cuda if available)")
    score.set_defaults(handler=run_score_groups)

    rerank = commands.add_parser(
        "rerank",
        help="rerank the top of a run with a cross-encoder",
        description="Rescore the top --depth hits of each query; the rest keep their order beneath.",
    )
    rerank.add_argument(
        "--run",
        "--first-stage",
        dest="run",
        required=True,
        type=Path,
        help="first-stage TREC run (--first-stage: the same, for torchrun, which mistakes --run for its --run-path)",
    )
    add_dataset_args(rerank, split=None)
    rerank.add_argument(
        "--split",
        help="rerank only the run's queries judged in this qrels split, e.g. test (default: every run query; "
        "each must be in queries.jsonl)",
    )
    rerank.add_argument("--model", required=True, help="cross-encoder folder or HF name")
    rerank.add_argument(
        "--depth", type=positive_int, default=RERANK.depth, help="hits per query to rescore (default: %(default)s)"
    )
    rerank.add_argument("--out", required=True, type=Path, help="reranked TREC run to write")
    rerank.add_argument(
        "--batch-size",
        type=positive_int,
        default=RERANK.batch_size,
        help="pairs per forward pass (default: %(default)s)",
    )
    rerank.add_argument("--max-length", type=positive_int, help="max tokens per pair (default: the model's)")
    rerank.add_argument(
        "--last-window",
        action=argparse.BooleanOptionalAction,
        default=RERANK.last_window,
        help="also score a passage too long for one window on its last window and keep the higher score (MaxP; "
        "up to twice the pairs), as `tandem run` does (default: %(default)s)",
    )
    rerank.add_argument(
        "--interpolate",
        type=weight,
        metavar="ALPHA",
        help="report ALPHA*CE + (1-ALPHA)*first-stage (min-max normalised) instead of the CE score",
    )
    add_precision_arg(rerank, inference=True)
    rerank.add_argument("--device", help="cpu, cuda (default: cuda if available)")
    rerank.add_argument(
        "--allow-untrained-head",
        action="store_true",
        help="accept a model without a trained one-logit head (e.g. a plain BERT: its scores are random)",
    )
    rerank.set_defaults(handler=run_rerank)


def reranker_config(args: argparse.Namespace) -> RerankerConfig:
    """What `tandem reranker train` trains: `RerankerConfig`'s defaults, then --config, --set and the flags."""
    config = build(RerankerConfig, resolve_options(RerankerConfig, args))
    if config.group_size < 2:
        raise TandemError("group_size must be at least 2 (1 positive + at least 1 negative)")
    return config


def run_train(args: argparse.Namespace) -> int:
    config = reranker_config(args)
    dataset = open_dataset(args.dataset) if args.dataset else None
    dev_score = dev_evaluator(args, dataset)
    writes = prepare_training_output(args, dataset)  # before the groups are read: a bad --out fails at once
    corpus = dataset.corpus if dataset else None
    groups = [group for path in args.groups for group in read_groups(path, corpus)]
    if writes:
        write_config(args.out / "command.json", args, trainer=asdict(config))
    summary = train_reranker(groups, config, args.out, resume=args.resume, dev_score=dev_score)
    print(
        f"trained {summary['steps']} steps on {summary['groups']} groups in {summary['seconds']:.0f} s; saved {args.out}"
        + without_negatives_note(summary)
    )
    return 0


def dev_evaluator(args: argparse.Namespace, dataset: BeirDataset | None) -> Callable[[CrossEncoder], float] | None:
    """The dev figure early stopping reads (nDCG@10 of reranking --dev-run), or None without --dev-run."""
    if args.dev_run is None and args.dev_qrels is None:
        return None
    if args.dev_run is None or args.dev_qrels is None or dataset is None:
        raise TandemError("dev evaluation needs all three of --dev-run, --dev-qrels and --dataset")
    qrels = load_qrels(args.dev_qrels, dataset.queries, dataset.corpus)
    first_stage = read_run(args.dev_run)
    if not any(query_id in qrels for query_id in first_stage):
        raise TandemError(f"no query of {args.dev_run} is judged in {args.dev_qrels}")
    return rerank_dev_score(first_stage, dataset.queries, dataset.corpus, qrels, args.eval_depth)


def run_score_groups(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.dataset) if args.dataset else None
    check_output_file(args.out, "groups file", dataset, [args.groups])
    if not is_cross_encoder(args.model):
        raise TandemError(f"{args.model} is not a trained cross-encoder: its scores would teach nothing")
    groups = read_groups(args.groups, dataset.corpus if dataset else None)
    model = CrossEncoder.from_pretrained(args.model).to_device(args.device)
    started = time.perf_counter()
    score_groups(groups, model, args.batch_size, args.precision)
    count = write_groups(groups, args.out)
    pairs = sum(len(g.positives) + len(g.negatives) for g in groups)
    print(f"scored {pairs} pairs of {count} groups in {time.perf_counter() - started:.0f} s; wrote {args.out}")
    return 0


def run_rerank(args: argparse.Namespace) -> int:
    dataset = dataset_from(args)
    check_output_file(args.out, "TREC run", dataset, [args.run])
    if not args.allow_untrained_head and not is_cross_encoder(args.model):
        raise TandemError(
            f"{args.model} is not a trained cross-encoder (no one-logit sequence-classification head): its scores "
            "would be random; train one with `tandem reranker train`, or pass --allow-untrained-head"
        )
    run = queries_to_rerank(read_run(args.run), dataset, args.split, args.run)
    queries = dataset.queries
    model = CrossEncoder.from_pretrained(args.model, max_length=args.max_length, last_window=args.last_window)
    model = model.to_device(torchrun_device(args.device))
    tag = "rerank" if args.interpolate is None else f"rerank-interp{args.interpolate}"

    def rerank_share(query_ids: list[str], out: Path) -> dict:
        share = {query_id: run[query_id] for query_id in query_ids}
        started = time.perf_counter()
        reranked = rerank_run(
            share, queries, dataset.corpus, model, args.depth, args.batch_size, precision=args.precision
        )
        seconds = time.perf_counter() - started
        if args.interpolate is not None:
            reranked = interpolate_reranked(reranked, share, args.interpolate, args.depth)
        write_run(reranked, out, tag=tag)
        return {"seconds": seconds, "pairs": sum(min(len(h), args.depth) for h in share.values())}

    rank, world = torchrun_world()
    if world > 1:  # each process reranks a share of the queries; rank 0 merges
        made_with = command_options(args)
        parts = work_in_parts(rerank_share, list(run), args.out, made_with)
        if parts is None:
            print(f"rank {rank}: reranked its share of the queries; rank 0 merges them into {args.out}")
            return 0
        done = {"seconds": max(p["seconds"] for p in parts), "pairs": sum(p["pairs"] for p in parts)}
    else:
        done = rerank_share(list(run), args.out)
    seconds, pairs = done["seconds"], done["pairs"]
    write_config(args.out.with_name(args.out.name + ".config.json"), args, seconds=seconds, pairs=pairs)
    print(
        f"reranked {pairs} pairs of {len(run)} queries in {seconds:.1f} s ({pairs / seconds:.1f} pairs/s); wrote {args.out}"
    )
    return 0


def queries_to_rerank(run: Run, dataset: BeirDataset, split: str | None, run_path: Path) -> Run:
    """The part of `run` to rerank: every query, or with `split` only those judged in it (the others
    are counted in a warning, and a run with none of them is an error)."""
    if split is None:
        return run
    judged = dataset.split_queries(split)
    kept = {query_id: hits for query_id, hits in run.items() if query_id in judged}
    if not kept:
        raise TandemError(f"no query of {run_path} is judged in the '{split}' split of {dataset.root}")
    if len(kept) < len(run):
        log.warning(
            "%d of %d queries in %s are not judged in '%s' and are left out",
            len(run) - len(kept),
            len(run),
            run_path,
            split,
        )
    return kept
