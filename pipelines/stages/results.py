"""The closing stages: rerank both first stages with each cross-encoder, fuse BM25 and dense (RRF),
and write the comparison report."""

from __future__ import annotations

import time
from pathlib import Path

from core.data.runs import read_run, write_run
from pipelines.evaluation.fusion import rrf
from pipelines.evaluation.metrics import evaluate
from pipelines.evaluation.report import System, write_report
from pipelines.stages.context import RunContext, seconds_per_query
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run


def stage_rerank(ctx: RunContext, work: Path) -> dict:
    options = ctx.config["rerank"]
    queries = ctx.dataset.queries
    latency = {}
    for loss in ctx.config["reranker"]["losses"]:
        model = CrossEncoder.from_pretrained(ctx.stage_dir("reranker") / loss).to_device()
        for first in ("bm25", "index"):
            run = read_run(ctx.stage_dir(first) / "test.trec")
            started = time.perf_counter()
            reranked = rerank_run(run, queries, ctx.dataset.corpus, model, options["depth"], options["batch_size"])
            latency[f"{first}-{loss}"] = seconds_per_query(started, run)
            write_run(reranked, work / f"{first}-{loss}.trec", tag=f"{first}-ce-{loss}")
    hybrid = rrf(
        [read_run(ctx.stage_dir(s) / "test.trec") for s in ("bm25", "index")],
        ctx.config["hybrid"]["rrf_k"],
        ctx.config["hybrid"]["depth"],
    )
    write_run(hybrid, work / "hybrid.trec", tag="hybrid-rrf")
    return {"latency": latency}


def stage_report(ctx: RunContext, work: Path) -> dict:
    qrels = ctx.dataset.qrels(ctx.config["split"]["test"])
    latency = {
        s: (ctx.done(s) or {}).get("result", {}).get("latency", {})
        for s in ("bm25", "dense-zeroshot", "index", "rerank")
    }
    systems = [
        System("BM25", evaluate(read_run(ctx.stage_dir("bm25") / "test.trec"), qrels), {"retrieve": latency["bm25"]["retrieve"]}),
        System("dense zero-shot", evaluate(read_run(ctx.stage_dir("dense-zeroshot") / "test.trec"), qrels), {"retrieve": latency["dense-zeroshot"]["retrieve"]}),
        System("dense fine-tuned", evaluate(read_run(ctx.stage_dir("index") / "test.trec"), qrels), {"retrieve": latency["index"]["retrieve"]}),
        System("hybrid (RRF BM25 + dense ft)", evaluate(read_run(ctx.stage_dir("rerank") / "hybrid.trec"), qrels), {}),
    ]  # fmt: skip
    names = {"bm25": "BM25", "index": "dense fine-tuned"}
    for loss in ctx.config["reranker"]["losses"]:
        for first in ("bm25", "index"):
            stage_latency = {"retrieve": latency[first]["retrieve"], "rerank": latency["rerank"][f"{first}-{loss}"]}
            run = read_run(ctx.stage_dir("rerank") / f"{first}-{loss}.trec")
            systems.append(
                System(f"{names[first]} + CE ({loss.upper()})", evaluate(run, qrels), stage_latency, names[first])
            )
    depth = ctx.config["rerank"]["depth"]
    notes = f"Dataset {ctx.dataset.name}, split {ctx.config['split']['test']}; cross-encoders rerank the top {depth}. Latency: wall-clock ms per query of each stage on this machine."
    write_report(work, f"tandem run: {ctx.dataset.name}", systems, "BM25", notes)
    return {"systems": [s.name for s in systems]}
