"""The first-stage stages: BM25, the zero-shot dense index, and the index of the fine-tuned bi-encoder.
Each calls the library functions its command calls and writes a TREC run of the test queries
(`test.trec`) and, when the run has a dev split, of the dev queries (`dev.trec`)."""

from __future__ import annotations

import time
from pathlib import Path

from core.data.runs import write_run
from pipelines.stages.context import RunContext, seconds_per_query, skipped
from retrieval import bm25
from retrieval.dense import dense_search
from retrieval.index import DenseIndex, build_dense_index


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


def dense_stage_runs(ctx: RunContext, work: Path, encoder: str | None) -> dict:
    """Index the corpus with `encoder` into `work/index` and write its test (and dev) runs."""
    options = ctx.config["dense"]
    started = time.perf_counter()
    meta = build_dense_index(
        encoder,
        ctx.dataset.corpus_path,
        work / "index",
        options["factory"],
        options["batch_size"],
        options["precision"],
    )
    encode_seconds = time.perf_counter() - started
    queries = ctx.dataset.split_queries(ctx.config["split"]["test"])
    started = time.perf_counter()
    index = DenseIndex(work / "index")
    run, _ = dense_search(index, queries, options["k"], options["batch_size"])
    latency = seconds_per_query(started, queries)
    write_run(run, work / "test.trec", tag="dense")
    if ctx.dev_queries():
        dev, _ = dense_search(index, ctx.dev_queries(), options["k"], options["batch_size"])
        write_run(dev, work / "dev.trec", tag="dense")
    return {
        "latency": {"retrieve": latency},
        "encode_seconds": encode_seconds,
        "passages": meta.count,
    }


def stage_dense_zeroshot(ctx: RunContext, work: Path) -> dict:
    return dense_stage_runs(ctx, work, ctx.config["dense"]["model"])


def stage_index(ctx: RunContext, work: Path) -> dict:
    """Index the corpus with the trained (or transferred) bi-encoder."""
    encoder = ctx.bi_encoder()
    if encoder is None:
        return skipped(f"no bi-encoder beyond the zero-shot start in {ctx.mode} mode")
    return dense_stage_runs(ctx, work, encoder)
