"""The mining stage: hard negatives for the train queries from the fine-tuned dense index and/or BM25
(`retrieval.negatives`, as `tandem mine` does), plus title pseudo-query groups with BM25 negatives."""

from __future__ import annotations

import logging
from pathlib import Path

from core.data.groups import MINED_GROUPS, TITLE_GROUPS
from core.options import from_section
from pipelines.estimate import StagePlan, Workload, bm25_query_seconds
from pipelines.stages.context import RunContext, skipped
from retrieval.mining import MiningConfig
from retrieval.negatives import mine_negatives, mine_title_negatives
from retrieval.pseudo import title_queries, title_query_count

log = logging.getLogger(__name__)


def mining_config(options: dict, min_relevance: int = 1) -> MiningConfig:
    """The mining job's settings from the `mining` section (its rank range as a pair)."""
    window = options.get("rank_range")
    return from_section(MiningConfig, options, rank_range=window and tuple(window), min_relevance=min_relevance)


def stage_mining(ctx: RunContext, work: Path) -> dict:
    """Hard negatives from the fine-tuned dense index and/or BM25: for the train queries plus title
    pseudo-query groups (BM25 negatives) in train mode, for the title pseudo-queries in self-supervised mode."""
    if not ctx.trains:
        return skipped(f"nothing to train in {ctx.mode} mode")
    options = ctx.config["mining"]
    bm25_index = ctx.stage_dir("bm25") / "index"
    config = mining_config(options, ctx.config["split"]["min_relevance"])
    indexes = {
        "bm25_index": bm25_index if "bm25" in options["sources"] else None,
        "dense_index": ctx.stage_dir("index") / "index" if "dense" in options["sources"] else None,
    }
    if ctx.mode == "self-supervised":
        queries, qrels = title_queries(ctx.dataset.corpus, options["title_queries"], options["seed"])
        stats = mine_negatives(ctx.dataset, queries, qrels, work / MINED_GROUPS, config, passage_form="text", **indexes)
        return {"stats": stats.to_dict()}
    queries, qrels = ctx.train_queries(), ctx.dataset.qrels(ctx.config["split"]["train"])
    result = {"stats": mine_negatives(ctx.dataset, queries, qrels, work / MINED_GROUPS, config, **indexes).to_dict()}
    count = title_query_count(options["title_queries_per_query"], len(queries))
    log.info(
        "%d title pseudo-queries beside %d judged training queries (mining.title_queries_per_query %g; "
        "mining.title_queries counts them in self-supervised mode only)",
        count,
        len(queries),
        options["title_queries_per_query"],
    )
    if count:
        title_config = mining_config({**options, "margin": None})
        result["title_stats"] = mine_title_negatives(
            ctx.dataset, count, work / TITLE_GROUPS, title_config, bm25_index
        ).to_dict()
    return result


def estimate_mining(w: Workload) -> StagePlan:
    if not w.trains:
        return StagePlan("mining", "skipped", 0)
    queries = w.train_queries + w.title_queries
    return StagePlan(
        "mining",
        f"{queries:,} queries, dense + BM25",
        queries * bm25_query_seconds(w.config["mining"]["depth"]) * 2,  # a dense and a BM25 search each
    )
