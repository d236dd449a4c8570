"""The fuse stage: each reranked run mixed with BM25's and the dense stage's scores,
`a * CE + b * BM25 + c * dense` (each min-max normalised per query, over the reranked top `rerank.depth`),
the weights chosen on dev from a grid over the simplex (`fuse.grid_step`), as its best point or bagged
over bootstrap samples of the dev queries (`fuse.resamples`). The rerank stage's `-fused`
runs mix a cross-encoder with its own first stage only; here BM25 and dense each get their own weight,
and the cross-encoder gets none when dev says it adds nothing. Runs go to `fuse/` and `fuse/dev/`."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

from core.data.runs import read_run, write_run
from pipelines.estimate import StagePlan, Workload
from pipelines.evaluation.fusion import choose_convex_weights, convex, simplex_grid
from pipelines.stages.context import RunContext, SystemRuns, skipped
from pipelines.stages.rerank import run_path

PARTS = ("ce", "bm25", "dense")


def stage_fuse(ctx: RunContext, work: Path) -> dict:
    options = ctx.config["fuse"]
    if not options["enabled"]:
        return skipped("fuse.enabled is false")
    if not ctx.dev_queries():
        return skipped("no dev split to choose the weights on")
    if not ctx.rerankers():
        return skipped("no cross-encoder")
    splits = ("dev", "test")
    others = {
        split: [read_run(ctx.stage_run(stage, split)) for stage in ("bm25", ctx.dense_stage())] for split in splits
    }
    grid, depth = simplex_grid(len(PARTS), options["grid_step"]), ctx.config["rerank"]["depth"]
    chosen = {}
    for label in ctx.rerankers():
        for first in ctx.done("rerank")["result"]["first_stages"]:
            name = f"{first}-{label}"
            reranked = {split: read_run(run_path(ctx.stage_dir("rerank"), split, name)) for split in splits}
            weights, figure = choose_convex_weights(
                reranked["dev"], others["dev"], ctx.dev_qrels(), grid, depth, resamples=options["resamples"]
            )
            for split in splits:
                fused = convex(reranked[split], others[split], list(weights), depth)
                write_run(fused, run_path(work, split, f"{name}-convex"), tag=f"{name}-convex")
            chosen[name] = {"weights": dict(zip(PARTS, weights, strict=True)), "dev_nDCG@10": figure}
    return {"convex": chosen}


def estimate_fuse(w: Workload) -> StagePlan:
    """Each weight combination is one dev evaluation of each reranked run's mixed top `rerank.depth`: a
    fixed cost and one that grows with the dev queries, fitted to the stage's wall time on SciFact (81 dev
    queries) and NFCorpus (324)."""
    options = w.config["fuse"]
    if not (options["enabled"] and w.dev and w.rerankers):
        return StagePlan("fuse", "skipped", 0)
    combinations = math.comb(round(1 / options["grid_step"]) + 2, 2)  # weight triples on the grid
    runs = w.rerankers * len(w.config["rerank"]["first_stages"])
    return StagePlan(
        "fuse",
        f"{combinations} weightings x {runs} reranked runs on dev",
        combinations * runs * (0.035 + 0.0002 * w.dev),
    )


def systems_fuse(ctx: RunContext) -> list[SystemRuns]:
    """Each reranked run's convex mix with BM25 and dense; a zero CE weight needs no cross-encoder, and its
    latency counts none."""
    convex_weights = (ctx.done("fuse") or {}).get("result", {}).get("convex", {})
    rerank = (ctx.done("rerank") or {}).get("result", {})
    systems = []
    for label in ctx.rerankers():
        for first in rerank.get("first_stages", []):
            name = f"{first}-{label}"
            if name not in convex_weights:
                continue
            w = convex_weights[name]["weights"]
            system_name = (
                f"{ctx.reranked_name(first, label)}, convex: CE {w['ce']:g}, BM25 {w['bm25']:g}, "
                f"{ctx.short_dense_name()} {w['dense']:g}"
            )
            latency = ctx.first_stage_latency(first)
            if w["ce"]:
                latency["rerank"] = rerank["latency"][name]
            runs = partial(run_path, ctx.stage_dir("fuse"), name=f"{name}-convex")
            systems.append(SystemRuns(system_name, runs, latency, ctx.first_stage_name(first)))
    return systems
