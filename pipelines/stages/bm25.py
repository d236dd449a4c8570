"""The bm25 stage: Pyserini's BM25 index of the corpus and its TREC runs of the test queries
(`test.trec`) and, when the run has a dev split, of the dev queries (`dev.trec`)."""

from __future__ import annotations

import time
from pathlib import Path

from core.data.runs import write_run
from pipelines.estimate import BM25_INDEX_PER_S, JVM_START_S, StagePlan, Workload, bm25_query_seconds
from pipelines.stages.context import RunContext, SystemRuns, first_stage_system, seconds_per_query
from retrieval import bm25


def stage_bm25(ctx: RunContext, work: Path) -> dict:
    options = ctx.config["bm25"]
    bm25.build_index(ctx.dataset.corpus_path, work / "index", fields=options["fields"])
    queries = ctx.dataset.split_queries(ctx.config["split"]["test"])
    started = time.perf_counter()
    run = bm25.search(work / "index", queries, k=options["k"], k1=options["k1"], b=options["b"])
    latency = seconds_per_query(started, queries)
    write_run(run, work / "test.trec", tag="bm25")
    if ctx.dev_queries():
        dev = bm25.search(work / "index", ctx.dev_queries(), k=options["k"], k1=options["k1"], b=options["b"])
        write_run(dev, work / "dev.trec", tag="bm25")
    return {"latency": {"retrieve": latency}}


def estimate_bm25(w: Workload) -> StagePlan:
    return StagePlan(
        "bm25",
        f"index {w.passages:,} passages, search {w.evaluated:,} test + dev queries",
        JVM_START_S + w.passages / BM25_INDEX_PER_S + w.evaluated * bm25_query_seconds(w.config["bm25"]["k"]),
    )


def systems_bm25(ctx: RunContext) -> list[SystemRuns]:
    return [first_stage_system(ctx, "bm25")]
