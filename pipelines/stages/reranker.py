"""The reranker stage: one cross-encoder per configured loss, trained on the mining stage's groups with
the library's recipe (`rerank.train`, as `tandem reranker train` does), keeping the weights of its best
dev evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from core.data.groups import read_mined_groups
from core.options import from_section
from pipelines.estimate import StagePlan, Workload, training_steps
from pipelines.evaluation.dev_score import rerank_dev_score
from pipelines.stages.context import RunContext, skipped
from pipelines.stages.rerank import hybrid_run
from pipelines.stages.retriever import trainable_groups
from rerank.model import CrossEncoder
from rerank.train import RerankerConfig, train_reranker


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


def estimate_reranker(w: Workload) -> StagePlan:
    """Training steps, plus the dev evaluations (`eval_every`: each reranks `eval_depth` hits of every dev
    query)."""
    options = w.config["reranker"]
    if not w.trains:
        return StagePlan("reranker", "skipped", 0)
    losses = len(options["losses"]) if options["enabled"] else 0
    steps = training_steps(w.train_queries + w.title_queries, options)
    evaluations = math.ceil(steps / options["eval_every"]) if w.dev and options["eval_every"] else 0
    dev_pairs = evaluations * w.dev * options["eval_depth"]
    work = f"{losses} x {steps:,} steps" + (f", {evaluations} dev evaluations" if losses and evaluations else "")
    seconds = losses * (steps * w.rates.reranker_step_s + w.rates.score_seconds(dev_pairs))
    return StagePlan("reranker", work, seconds, steps)
