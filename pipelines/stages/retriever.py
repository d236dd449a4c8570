"""The retriever stage: BM25 negatives for the training queries, then the bi-encoder fine-tuned with
in-batch NLL (`retrieval.train`), as `tandem retriever train` does."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from core.data.groups import read_groups
from core.models import resolve_model
from core.options import from_section
from pipelines.estimate import StagePlan, Workload, bm25_query_seconds, training_steps
from pipelines.stages.context import RunContext, skipped
from retrieval.encoder import BiEncoderConfig, saved_config
from retrieval.mining import MiningConfig
from retrieval.negatives import mine_negatives, mine_title_negatives
from retrieval.train import RetrieverConfig, train_retriever


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


def estimate_retriever(w: Workload) -> StagePlan:
    if not w.trains:
        return StagePlan("retriever", "skipped", 0)
    options = w.config["retriever"]
    steps = training_steps(w.train_queries, options)
    return StagePlan(
        "retriever",
        f"{w.train_queries:,} groups (one per query), {steps:,} steps",
        w.train_queries * bm25_query_seconds(options["negatives_depth"]) + steps * w.rates.retriever_step_s,
        steps,
    )
