"""The training stages: BM25 negatives and the bi-encoder, mining hard negatives with it, and the
cross-encoder (one per configured loss). Each calls the library functions its command calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core.data.groups import MINED_GROUPS, TITLE_GROUPS, read_groups, read_mined_groups
from core.models import resolve_model
from core.options import from_section
from pipelines.evaluation.dev_score import rerank_dev_score
from pipelines.stages.context import RunContext, skipped
from pipelines.stages.rerank import hybrid_run
from rerank.model import CrossEncoder
from rerank.train import RerankerConfig, train_reranker
from retrieval.encoder import BiEncoderConfig, saved_config
from retrieval.mining import MiningConfig
from retrieval.negatives import mine_negatives, mine_title_negatives
from retrieval.pseudo import title_queries
from retrieval.train import RetrieverConfig, train_retriever


def mining_config(options: dict, min_relevance: int = 1) -> MiningConfig:
    """The mining job's settings from the `mining` section (its rank range as a pair)."""
    window = options.get("rank_range")
    return from_section(MiningConfig, options, rank_range=window and tuple(window), min_relevance=min_relevance)


def trainable_groups(groups: list) -> int:
    """Groups a trainer can use (those with a negative), at least 1: a small dataset's batch shrinks to fit."""
    return max(1, sum(1 for g in groups if g.negatives))


def retriever_config(config: dict, model: str | None, training: dict, groups: list, **loss) -> RetrieverConfig:
    """The bi-encoder trainer's settings from a run's `config`: encoder, dropout and precision from its
    `retriever` section, the schedule (`group_size`, `batch_queries`, `epochs`, `min_steps`, `max_steps`,
    `learning_rate`, `seed`) from `training` (the `retriever` or `distill` section), `loss` options (the
    distill stage's) as given."""
    options = config["retriever"]
    start = saved_config(resolve_model(model)) or BiEncoderConfig()  # pooling, normalisation, prompts
    encoder = from_section(BiEncoderConfig, {**asdict(start), **options})
    schedule = {key: training[key] for key in SCHEDULE if key in training}
    return from_section(
        RetrieverConfig,
        {**options, "min_steps": 0, **schedule},
        model=model,
        encoder=encoder,
        batch_queries=min(training["batch_queries"], trainable_groups(groups)),
        **loss,
    )


SCHEDULE = ("group_size", "batch_queries", "epochs", "min_steps", "max_steps", "learning_rate", "seed")
"""The options a training section (`retriever` or `distill`) sets for the bi-encoder trainer."""


def stage_retriever(ctx: RunContext, work: Path) -> dict:
    """Mine BM25 negatives for the training queries (the train split's less the dev ones, or title
    pseudo-queries in self-supervised mode), then fine-tune the bi-encoder (in-batch NLL)."""
    if not ctx.trains:
        return skipped(f"nothing to train in {ctx.mode} mode")
    options = ctx.config["retriever"]
    mining = MiningConfig(
        options["num_negatives"],
        options["negatives_depth"],
        seed=options["seed"],
        min_relevance=ctx.config["split"]["min_relevance"],
    )
    groups_path, bm25_index = work / "bm25-negatives.jsonl", ctx.stage_dir("bm25") / "index"
    if ctx.mode == "self-supervised":
        count = ctx.config["mining"]["title_queries"]
        stats = mine_title_negatives(ctx.dataset, count, groups_path, mining, bm25_index)
    else:
        queries, qrels = ctx.train_queries(), ctx.dataset.qrels(ctx.config["split"]["train"])
        stats = mine_negatives(ctx.dataset, queries, qrels, groups_path, mining, bm25_index=bm25_index)
    groups = read_groups(groups_path, ctx.dataset.corpus)
    config = retriever_config(ctx.config, options["model"] or ctx.config["dense"]["model"], options, groups)
    summary = train_retriever(groups, config, work / "model")
    return {"mining": stats.to_dict(), "training": summary}


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
    if options["title_queries"]:
        title_config = mining_config({**options, "margin": None})
        result["title_stats"] = mine_title_negatives(
            ctx.dataset, options["title_queries"], work / TITLE_GROUPS, title_config, bm25_index
        ).to_dict()
    return result


def stage_reranker(ctx: RunContext, work: Path) -> dict:
    """Trains one cross-encoder per configured loss, into reranker/<loss>/ (resuming from checkpoints)."""
    if not ctx.trains:
        return skipped(f"nothing to train in {ctx.mode} mode")
    options = ctx.config["reranker"]
    if not options["enabled"]:
        return skipped("reranker.enabled is false")
    groups = read_mined_groups(ctx.stage_dir("mining"), ctx.dataset.corpus)
    dev_score = reranker_dev_score(ctx) if options["eval_every"] else None
    summaries = {}
    for loss in options["losses"]:
        if (work / loss / "training_config.json").is_file():  # finished before an interruption
            continue
        batch_queries = min(options["batch_queries"], trainable_groups(groups))
        config = from_section(RerankerConfig, options, loss=loss, batch_queries=batch_queries)
        summaries[loss] = train_reranker(groups, config, work / loss, resume=True, dev_score=dev_score)
    return {"training": summaries}


def reranker_dev_score(ctx: RunContext) -> Callable[[CrossEncoder], float] | None:
    """What early stopping reads while the cross-encoder trains: nDCG@10 of reranking the dev queries'
    top `reranker.eval_depth` of the RRF hybrid of BM25 and the fine-tuned bi-encoder (None without dev)."""
    if not ctx.dev_queries():
        return None
    depth = ctx.config["reranker"]["eval_depth"]
    return rerank_dev_score(hybrid_run(ctx, "dev"), ctx.dataset.queries, ctx.dataset.corpus, ctx.dev_qrels(), depth)
