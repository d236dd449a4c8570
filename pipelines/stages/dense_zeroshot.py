"""The dense-zeroshot stage: the corpus indexed in FAISS by the start bi-encoder, and its TREC runs of
the test queries (`test.trec`) and, when the run has a dev split, of the dev queries (`dev.trec`). The
index and distill stages index with their own bi-encoders through `dense_stage_runs`."""

from __future__ import annotations

import time
from pathlib import Path

from core.data.runs import write_run
from pipelines.estimate import StagePlan, Workload
from pipelines.stages.context import RunContext, SystemRuns, first_stage_system, seconds_per_query
from retrieval.dense import dense_search
from retrieval.index import DenseIndex, build_dense_index

ZERO_SHOT_MAX_LENGTH = 256
"""The passage length the start encoder's encoding is costed at."""


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


def estimate_dense_zeroshot(w: Workload) -> StagePlan:
    return StagePlan("dense-zeroshot", f"encode {w.passages:,} passages", w.index_seconds(ZERO_SHOT_MAX_LENGTH))


def systems_dense_zeroshot(ctx: RunContext) -> list[SystemRuns]:
    return [first_stage_system(ctx, "dense-zeroshot")]
