"""`tandem mine`: hard-negative mining into a training-groups JSONL."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from core.atomic import atomic_file
from core.errors import TandemError
from core.parts import add_up, torchrun_world, work_in_parts
from pipelines.commands.common import (
    add_dataset_args,
    check_output_file,
    command_options,
    dataset_from,
    positive_int,
    write_config,
)
from pipelines.defaults import MiningDefaults, SplitDefaults
from retrieval.mining import MiningConfig, MiningStats, parse_rank_range, summarise
from retrieval.negatives import mine_negatives
from retrieval.pseudo import title_queries

MINING = MiningDefaults()
SPLIT = SplitDefaults()
"""Defaults shared with `tandem run` (pipelines/defaults.py)."""


def rank_range_argument(text: str) -> tuple[int, int] | None:
    """`--rank-range` parsed as `parse_rank_range` does, its error as argparse's."""
    try:
        return parse_rank_range(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "mine",
        help="mine hard negatives into training groups (JSONL)",
        description="Retrieve the top --depth passages for every training query from a dense index and/or BM25, "
        "drop judged positives and likely false negatives, sample --num-negatives per query and write one "
        "group per query (all its judged positives and its negatives, by passage id). Statistics go to GROUPS.stats.json.",
    )
    add_dataset_args(parser, split="train")
    parser.add_argument("--out", required=True, type=Path, help="groups JSONL to write")
    parser.add_argument("--index", type=Path, help="dense index directory (from `tandem index build`)")
    parser.add_argument("--bm25-index", type=Path, help="BM25 index directory (from `tandem bm25 index`)")
    parser.add_argument(
        "--num-negatives",
        type=positive_int,
        default=MINING.num_negatives,
        help="negatives kept per query (default: %(default)s)",
    )
    parser.add_argument(
        "--depth",
        type=positive_int,
        default=MINING.depth,
        help="candidates retrieved per query and source (default: %(default)s)",
    )
    parser.add_argument(
        "--rank-range",
        metavar="A:B",
        type=rank_range_argument,
        default=tuple(MINING.rank_range) if MINING.rank_range else None,
        help="keep only candidates ranked A..B (1-based) by their source, e.g. 10:100; none: every rank "
        "(default: %s)" % (":".join(map(str, MINING.rank_range)) if MINING.rank_range else "none"),
    )
    parser.add_argument(
        "--margin", type=float, help="drop candidates scoring above MARGIN x the positive's score (e.g. 0.95)"
    )
    parser.add_argument(
        "--reranker", type=Path, help="cross-encoder folder: drop candidates it scores above the positive"
    )
    parser.add_argument("--seed", type=int, default=MINING.seed, help="sampling seed (default: %(default)s)")
    parser.add_argument(
        "--min-relevance",
        type=positive_int,
        default=SPLIT.min_relevance,
        help="qrels grade a passage needs to be a positive (default: 1, i.e. any grade > 0); "
        "judged passages below it are never used as negatives",
    )
    parser.add_argument(
        "--with-text",
        action="store_true",
        help="embed passage texts in the groups file, for tools that do not read the corpus "
        "(tandem itself resolves ids from --dataset)",
    )
    parser.add_argument(
        "--title-queries",
        type=positive_int,
        metavar="N",
        help="instead of the split's queries, use the titles of N sampled documents as queries (their "
        "abstract is the positive; passages are written without titles)",
    )
    parser.add_argument("--shard-id", type=int, default=0, help="this shard of the queries (default: 0)")
    parser.add_argument(
        "--num-shards", type=positive_int, default=1, help="split the queries into this many shards (default: 1)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="encoder / reranker batch size (default: 64)"
    )
    parser.set_defaults(handler=run_mine)


def run_mine(args: argparse.Namespace) -> int:
    if not args.index and not args.bm25_index:
        raise TandemError("give --index (dense), --bm25-index, or both")
    if not 0 <= args.shard_id < args.num_shards:
        raise TandemError(f"--shard-id must be in 0..{args.num_shards - 1}")
    try:
        config = MiningConfig(
            args.num_negatives,
            args.depth,
            args.rank_range,
            args.margin,
            args.seed,
            args.min_relevance,
        )
    except ValueError as err:
        raise TandemError(str(err)) from None
    dataset = dataset_from(args)
    check_output_file(args.out, "groups file", dataset)
    passage_form = "title+text"
    if args.title_queries:
        queries, qrels = title_queries(dataset.corpus, args.title_queries, args.seed)
        passage_form = "text"
    else:
        qrels = dataset.qrels(args.split)
        queries = dataset.split_queries(args.split)
    reranker_filter = None
    if args.reranker:
        from rerank.filter import cross_encoder_filter

        reranker_filter = cross_encoder_filter(args.reranker, dataset.corpus, args.batch_size)

    def mine(part_queries: dict[str, str], out: Path) -> MiningStats:
        return mine_negatives(
            dataset,
            part_queries,
            qrels,
            out,
            config,
            bm25_index=args.bm25_index,
            dense_index=args.index,
            reranker_filter=reranker_filter,
            passage_form=passage_form,
            batch_size=args.batch_size,
            with_text=args.with_text,
        )

    rank, world = torchrun_world()
    if world > 1:
        if args.num_shards != 1:
            raise TandemError("under torchrun each process mines the share of its rank: leave out --num-shards")
        made_with = {"args": command_options(args), "config": asdict(config)}
        parts = work_in_parts(
            lambda ids, path: mine({q: queries[q] for q in ids}, path).to_dict(), list(queries), args.out, made_with
        )
        if parts is None:
            print(f"rank {rank}: mined its share of the queries; rank 0 merges them into {args.out}")
            return 0
        stats = add_up(parts)
    else:
        queries = {q: text for i, (q, text) in enumerate(queries.items()) if i % args.num_shards == args.shard_id}
        stats = mine(queries, args.out).to_dict()
    with atomic_file(args.out.with_name(args.out.name + ".stats.json")) as out:
        out.write(json.dumps({"config": asdict(config), **stats}, indent=2) + "\n")
    write_config(args.out.with_name(args.out.name + ".config.json"), args)
    print(summarise(stats))
    print(f"wrote {stats['groups']} groups to {args.out}")
    return 0
