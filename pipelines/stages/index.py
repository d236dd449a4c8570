"""The index stage: the corpus indexed in FAISS by the fine-tuned (or transferred) bi-encoder, and its
test and dev runs, as the dense-zeroshot stage writes them."""

from __future__ import annotations

from pathlib import Path

from pipelines.estimate import StagePlan, Workload
from pipelines.stages.context import RunContext, SystemRuns, first_stage_system, skipped
from pipelines.stages.dense_zeroshot import dense_stage_runs


def stage_index(ctx: RunContext, work: Path) -> dict:
    """Index the corpus with the trained (or transferred) bi-encoder."""
    encoder = ctx.bi_encoder()
    if encoder is None:
        return skipped(f"no bi-encoder beyond the zero-shot start in {ctx.mode} mode")
    return dense_stage_runs(ctx, work, encoder)


def estimate_index(w: Workload) -> StagePlan:
    if not w.has_bi_encoder:
        return StagePlan("index", "skipped", 0)
    return StagePlan(
        "index", f"encode {w.passages:,} passages", w.index_seconds(w.config["retriever"]["passage_max_length"])
    )


def systems_index(ctx: RunContext) -> list[SystemRuns]:
    return [first_stage_system(ctx, "index")] if ctx.dense_stage() == "index" else []
