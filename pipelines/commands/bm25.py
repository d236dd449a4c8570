"""`tandem bm25 index` and `tandem bm25 search`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.data.runs import write_run
from core.errors import TandemError
from pipelines.commands.common import (
    add_dataset_args,
    check_output_file,
    check_output_folder,
    dataset_from,
    positive_int,
    write_config,
)
from pipelines.defaults import Bm25Defaults
from retrieval import bm25

BM25 = Bm25Defaults()
"""Defaults shared with `tandem run` (pipelines/defaults.py)."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bm25", help="BM25 baseline with Pyserini (index, search)")
    sub = parser.add_subparsers(dest="bm25_command", metavar="ACTION", required=True)

    index = sub.add_parser(
        "index",
        help="build a Lucene index of a dataset's corpus",
        description="Build a Lucene BM25 index of a BEIR corpus with Anserini. The index "
        "appears in --out only when complete; an up-to-date index is left as it is.",
    )
    add_dataset_args(index, split=None)
    index.add_argument("--out", required=True, type=Path, help="index directory to create")
    index.add_argument(
        "--fields",
        choices=bm25.FIELDS,
        default=BM25.fields,
        help="flat: title+text in one field; multifield: title and text searched as separate "
        "fields (both as in Pyserini's BEIR regressions). Default: flat",
    )
    index.add_argument("--threads", type=positive_int, default=2, help="indexing threads (default: 2)")
    index.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if an up-to-date index exists (only ever replaces a tandem BM25 index)",
    )
    index.set_defaults(handler=run_index)

    search = sub.add_parser(
        "search",
        help="BM25 top-k for a split's queries, written as a TREC run",
        description="Search every query judged in --split with BM25 and write a TREC run.",
    )
    search.add_argument("--index", required=True, type=Path, help="index directory from `tandem bm25 index`")
    add_dataset_args(search)
    search.add_argument("--out", required=True, type=Path, help="TREC run file to write")
    search.add_argument("--k", type=positive_int, default=BM25.k, help="hits per query (default: %(default)s)")
    search.add_argument("--k1", type=float, default=BM25.k1, help="BM25 k1 (default: %(default)s)")
    search.add_argument("--b", type=float, default=BM25.b, help="BM25 b (default: %(default)s)")
    search.add_argument("--threads", type=positive_int, default=2, help="search threads (default: 2)")
    search.add_argument(
        "--keep-query-id",
        action="store_true",
        help="keep hits whose id equals the query id (dropped by default, as in BEIR)",
    )
    search.set_defaults(handler=run_search)


def run_index(args: argparse.Namespace) -> int:
    dataset = dataset_from(args)
    existing = check_output_folder(args, "bm25-index", dataset)
    if existing is not None and (args.out / bm25.META_FILE).is_file() and not args.force:
        meta = bm25.read_index_meta(args.out)
        if meta.fields == args.fields and meta.corpus_fingerprint == dataset.corpus_fingerprint:
            print(f"{args.out}: index is up to date ({meta.fields}); use --force to rebuild")
            return 0
        raise TandemError(
            f"{args.out} holds a different index ({meta.fields}, corpus {meta.corpus_path}); use --force to replace it"
        )
    meta = bm25.build_index(dataset.corpus_path, args.out, fields=args.fields, threads=args.threads)
    write_config(args.out / "config.json", args)
    print(f"indexed {dataset.corpus_path} ({meta.fields}) into {args.out} in {meta.build_seconds:.1f} s")
    return 0


def run_search(args: argparse.Namespace) -> int:
    dataset = dataset_from(args)
    check_output_file(args.out, "TREC run", dataset)
    meta = bm25.read_index_meta(args.index)
    if meta.corpus_fingerprint != dataset.corpus_fingerprint:
        raise TandemError(
            f"{args.index} was built from {meta.corpus_path}, not from {dataset.corpus_path} (corpus fingerprints differ)"
        )
    queries = dataset.split_queries(args.split)
    started = time.perf_counter()
    run = bm25.search(
        args.index, queries, k=args.k, k1=args.k1, b=args.b, threads=args.threads, remove_query=not args.keep_query_id
    )
    seconds = time.perf_counter() - started
    write_run(run, args.out, tag=f"bm25-{meta.fields}")
    write_config(args.out.with_name(args.out.name + ".config.json"), args, search_seconds=seconds)
    print(f"searched {len(queries)} queries in {seconds:.1f} s; wrote {args.out}")
    return 0
