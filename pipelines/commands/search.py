"""`tandem search`: ask a finished run's indexes and models a question."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.errors import TandemError
from pipelines.commands.common import positive_int
from pipelines.pipeline import SYSTEMS, Pipeline, run_corpus


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "search",
        help="search a finished run's indexes (and rerank with its cross-encoder) for a query",
        description="Load a finished `tandem run` folder's BM25 index, dense index and cross-encoder once, then "
        "print the top hits (id, score, title) for the query given, or for each line read from stdin with "
        "--interactive.",
    )
    parser.add_argument("query", nargs="?", help="the query text")
    parser.add_argument("--run-dir", required=True, type=Path, help="a finished `tandem run` folder")
    parser.add_argument("--system", choices=SYSTEMS, default="ce",
                        help="bm25, dense, hybrid (their RRF) or ce (the hybrid's top --depth reranked; default)")  # fmt: skip
    parser.add_argument("--k", type=positive_int, default=10, help="hits to print (default: %(default)s)")
    parser.add_argument(
        "--depth",
        type=positive_int,
        help="with --system ce: hybrid hits the cross-encoder rescores (default: the run's rerank.depth, as "
        "in its report; fewer answer faster)",
    )
    parser.add_argument(
        "--cascade",
        type=positive_int,
        metavar="K",
        help="with --system ce: a cheap first pass (the cross-encoder reading 64 tokens per pair) reorders "
        "the top --depth, and the full model rescores only its top K (bench.rerank_frontier measures the "
        "trade-off; default: no cascade)",
    )
    parser.add_argument("--interactive", action="store_true", help="read queries from stdin, one per line")
    parser.set_defaults(handler=run_search)


def run_search(args: argparse.Namespace) -> int:
    if not args.query and not args.interactive:
        raise TandemError("give a query, or --interactive to read queries from stdin")
    started = time.perf_counter()
    corpus = run_corpus(args.run_dir)  # the titles printed, and the texts the cross-encoder scores
    pipeline = Pipeline.from_run(args.run_dir, args.system, args.depth, corpus, cascade_keep=args.cascade)
    pipeline.search_one("warm-up", 1)  # Java, the searcher and the models' first call: part of loading
    print(f"loaded {args.system} from {args.run_dir} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    queries = [args.query] if args.query else (line.strip() for line in sys.stdin)
    for query in queries:
        if not query:
            continue
        started = time.perf_counter()
        hits = pipeline.search_one(query, args.k)
        print(f"# {query}  ({(time.perf_counter() - started) * 1000:.0f} ms)")
        for rank, (doc_id, score) in enumerate(hits, start=1):
            title = corpus.titles[corpus.position[doc_id]] or corpus.texts[corpus.position[doc_id]][:80]
            print(f"{rank:>3}  {score:>9.4f}  {doc_id}  {title[:100]}")
        sys.stdout.flush()
    return 0
