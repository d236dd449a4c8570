"""The training stages: BM25 negatives and the bi-encoder, mining hard negatives with it, and the
cross-encoder (one per configured loss). Each calls the library functions its command calls."""

from __future__ import annotations

from pathlib import Path

from core.data.groups import read_groups
from core.errors import TandemError
from pipelines.stages.context import RunContext
from rerank.train import RerankerConfig, train_reranker
from retrieval.encoder import BiEncoderConfig
from retrieval.mining import MiningConfig
from retrieval.negatives import mine_negatives, mine_title_negatives
from retrieval.train import RetrieverConfig, train_retriever


def mining_config(options: dict) -> MiningConfig:
    return MiningConfig(
        options["num_negatives"],
        options["depth"],
        options.get("rank_range") and tuple(options["rank_range"]),
        options.get("margin"),
        options["seed"],
    )


def stage_retriever(ctx: RunContext, work: Path) -> dict:
    """Mine BM25 negatives for the train queries, then fine-tune the bi-encoder (in-batch NLL)."""
    options = ctx.config["retriever"]
    split = ctx.config["split"]["train"]
    mining = MiningConfig(options["num_negatives"], options["negatives_depth"], seed=options["seed"])
    stats = mine_negatives(
        ctx.dataset, ctx.dataset.split_queries(split), ctx.dataset.qrels(split), work / "bm25-negatives.jsonl",
        mining, bm25_index=ctx.stage_dir("bm25") / "index",
    ).to_dict()  # fmt: skip
    encoder = BiEncoderConfig(
        temperature=options["temperature"], passage_max_length=options["passage_max_length"],
        query_max_length=options["query_max_length"],
    )  # fmt: skip
    config = RetrieverConfig(
        model=ctx.config["dense"]["model"], encoder=encoder, group_size=options["group_size"],
        batch_queries=options["batch_queries"], attention_dropout=options["attention_dropout"], epochs=options["epochs"],
        learning_rate=options["learning_rate"], seed=options["seed"],
    )  # fmt: skip
    groups = read_groups(work / "bm25-negatives.jsonl")
    config.batch_queries = min(config.batch_queries, len(groups))
    summary = train_retriever(groups, config, work / "model")
    return {"mining": stats, "training": summary}


def stage_mining(ctx: RunContext, work: Path) -> dict:
    """Hard negatives for the train queries from the fine-tuned dense index and/or BM25, plus title
    pseudo-query groups for the cross-encoder."""
    options = ctx.config["mining"]
    split = ctx.config["split"]["train"]
    unknown = set(options["sources"]) - {"dense", "bm25"}
    if unknown or not options["sources"]:
        raise TandemError(f"mining.sources must list 'dense' and/or 'bm25', not {options['sources']}")
    bm25_index = ctx.stage_dir("bm25") / "index"
    stats = mine_negatives(
        ctx.dataset, ctx.dataset.split_queries(split), ctx.dataset.qrels(split), work / "groups.jsonl",
        mining_config(options),
        bm25_index=bm25_index if "bm25" in options["sources"] else None,
        dense_index=ctx.stage_dir("index") / "index" if "dense" in options["sources"] else None,
    )  # fmt: skip
    result = {"stats": stats.to_dict()}
    if options["title_queries"]:
        title_config = mining_config({**options, "margin": None})
        result["title_stats"] = mine_title_negatives(
            ctx.dataset, options["title_queries"], work / "title-groups.jsonl", title_config, bm25_index
        ).to_dict()
    return result


def stage_reranker(ctx: RunContext, work: Path) -> dict:
    """Trains one cross-encoder per configured loss, into reranker/<loss>/ (resuming from checkpoints)."""
    options = ctx.config["reranker"]
    mined = ctx.stage_dir("mining")
    groups = read_groups(mined / "groups.jsonl")
    if (mined / "title-groups.jsonl").is_file():
        groups += read_groups(mined / "title-groups.jsonl")
    summaries = {}
    for loss in options["losses"]:
        if (work / loss / "training_config.json").is_file():  # finished before an interruption
            continue
        config = RerankerConfig(
            model=options["model"], loss=loss, group_size=options["group_size"], batch_queries=min(options["batch_queries"], len(groups)),
            max_length=options["max_length"], attention_dropout=options["attention_dropout"], epochs=options["epochs"],
            learning_rate=options["learning_rate"], save_every=options["save_every"], seed=options["seed"],
        )  # fmt: skip
        summaries[loss] = train_reranker(groups, config, work / loss, resume=True)
    return {"training": summaries}
