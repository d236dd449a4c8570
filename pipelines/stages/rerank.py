"""The rerank stage: BM25 and dense are fused (RRF), each cross-encoder reranks the configured first
stages (by default BM25 and that hybrid), and, when the run has a dev split, each reranked run is also
interpolated with its first stage at the cross-encoder weight that scored best on dev. Test runs go to
`rerank/`, dev runs to `rerank/dev/`."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from core.data.runs import Run, read_run, write_run
from core.precision import bulk_precision, pick_device
from pipelines.estimate import StagePlan, Workload
from pipelines.evaluation.fusion import choose_weight, interpolate_reranked, rrf
from pipelines.stages.context import RunContext, SystemRuns
from pipelines.warmup import rerank_pair_count
from rerank.model import CrossEncoder
from rerank.rerank import rerank_pairs, rerank_runs, top_pairs


def run_path(work: Path, split: str, name: str) -> Path:
    """Where the rerank stage keeps the `split` run of system `name` (test runs at the top)."""
    return work / f"{name}.trec" if split == "test" else work / split / f"{name}.trec"


def fuse_hybrid(ctx: RunContext, runs: list[Run]) -> Run:
    """The RRF fusion of first-stage runs with the run's `hybrid` options: how every hybrid is made."""
    return rrf(runs, ctx.config["hybrid"]["rrf_k"], ctx.config["hybrid"]["depth"])


def hybrid_run(ctx: RunContext, split: str) -> Run:
    """The `hybrid` first stage of `split`: BM25 and the dense stage fused (`fuse_hybrid`)."""
    return fuse_hybrid(ctx, [read_run(ctx.stage_run(stage, split)) for stage in ("bm25", ctx.dense_stage())])


def hybrid_runs(ctx: RunContext, work: Path, splits: list[str]) -> dict[tuple[str, str], Run]:
    """BM25's and the dense stage's runs per split, and their RRF fusions: `hybrid` (BM25 + the dense
    stage) and, when the distill stage indexed, `hybrid-distill` (BM25 + the distilled bi-encoder); the
    fusions are written to `work`."""
    dense = ctx.dense_stage()
    runs = {(first, split): read_run(ctx.stage_run(first, split)) for first in ("bm25", dense) for split in splits}
    distilled = ctx.distilled()
    for split in splits:
        runs["hybrid", split] = fuse_hybrid(ctx, [runs["bm25", split], runs[dense, split]])
        write_run(runs["hybrid", split], run_path(work, split, "hybrid"), tag="hybrid-rrf")
        if distilled:
            fused = fuse_hybrid(ctx, [runs["bm25", split], read_run(ctx.stage_run("distill", split))])
            write_run(fused, run_path(work, split, "hybrid-distill"), tag="hybrid-distill-rrf")
    return runs


def reranked_firsts(ctx: RunContext) -> tuple[str, ...]:
    """The runs the cross-encoders rerank, by file name (`rerank.first_stages`, checked by `run_all`;
    `dense` is the dense stage)."""
    return tuple(ctx.dense_stage() if first == "dense" else first for first in ctx.config["rerank"]["first_stages"])


def stage_rerank(ctx: RunContext, work: Path) -> dict:
    """Fuse BM25 and dense (RRF); rerank each of `rerank.first_stages` with each cross-encoder; on a dev
    split, choose each cross-encoder's interpolation weight."""
    options = ctx.config["rerank"]
    splits = ["test", "dev"] if ctx.dev_queries() else ["test"]
    all_runs = hybrid_runs(ctx, work, splits)
    firsts = reranked_firsts(ctx)
    first_runs = {(first, split): all_runs[first, split] for first in firsts for split in splits}
    latency = {}
    pairs = sum(min(len(hits), options["depth"]) for run in first_runs.values() for hits in run.values())
    scored_pairs = len(top_pairs(first_runs.values(), options["depth"]))  # what `rerank_runs` scores
    rerankers = ctx.rerankers()
    # one precision for every cross-encoder and all their pairs, dev and test alike
    precision = bulk_precision(options["precision"], pick_device(), pairs) if rerankers else options["precision"]
    for label, path in rerankers.items():
        model = CrossEncoder.from_pretrained(path, last_window=options["last_window"]).to_device()
        if precision in ("int8", "bf16-compiled"):  # quantised or compiled before the timing, on the first pairs
            queries, passages = rerank_pairs(
                first_runs[firsts[0], "test"], ctx.dataset.queries, ctx.dataset.corpus, options["depth"]
            )
            if precision == "int8":
                model.prepare_int8(queries, passages)
            else:
                model.score(queries[:2], passages[:2], precision=precision, show_progress=False)
        started = time.perf_counter()
        results = rerank_runs(
            {f"{first}|{split}": run for (first, split), run in first_runs.items()}, ctx.dataset.queries,
            ctx.dataset.corpus, model, options["depth"], options["batch_size"], precision=precision,
        )  # fmt: skip
        seconds_per_pair = (time.perf_counter() - started) / max(1, scored_pairs)
        for (first, split), run in first_runs.items():
            if split == "test":  # what reranking this first stage alone costs, at the pairs/s measured
                pairs = sum(min(len(hits), options["depth"]) for hits in run.values())
                latency[f"{first}-{label}"] = seconds_per_pair * pairs / max(len(run), 1)
            result = results[f"{first}|{split}"]
            write_run(result, run_path(work, split, f"{first}-{label}"), tag=f"{first}-ce-{label}")
    weights = fuse_on_dev(ctx, work, firsts, first_runs) if "dev" in splits else {}
    return {"latency": latency, "fuse_weights": weights, "first_stages": list(firsts), "precision": precision}


def fuse_on_dev(ctx: RunContext, work: Path, firsts: tuple[str, ...], first_runs: dict) -> dict[str, dict[str, float]]:
    """For each reranked run (as written, so the fusion mixes the scores the report evaluates) and its
    first stage (`first_runs[first, split]`): the weight `w` of `w * CE + (1 - w) * first stage` that
    scores best on dev (from `rerank.fuse_weights`), applied to the test run as `<first>-<label>-fused`."""
    depth, weights = ctx.config["rerank"]["depth"], ctx.config["rerank"]["fuse_weights"]
    dev_qrels = ctx.dev_qrels()
    chosen = {}
    for label in ctx.rerankers():
        for first in firsts:
            name = f"{first}-{label}"
            runs = {
                split: (read_run(run_path(work, split, name)), first_runs[first, split]) for split in ("dev", "test")
            }
            weight, dev_figure = choose_weight(*runs["dev"], dev_qrels, weights, depth)
            for split, (reranked, first_run) in runs.items():
                fused = interpolate_reranked(reranked, first_run, weight, depth)
                write_run(fused, run_path(work, split, f"{name}-fused"), tag=f"{name}-fused")
            chosen[name] = {"weight": weight, "dev_nDCG@10": dev_figure}
    return chosen


def estimate_rerank(w: Workload) -> StagePlan:
    pairs = rerank_pair_count(w.evaluated, w.config) * w.rerankers
    last_window = w.config["rerank"]["last_window"]
    seconds = w.rates.score_seconds(pairs, last_window) + w.rerankers * w.rates.score_quantise_s + 2
    return StagePlan("rerank", f"{pairs:,} pairs to score", seconds)


def systems_rerank(ctx: RunContext) -> list[SystemRuns]:
    """The hybrids, each cross-encoder's reranking of each first stage, and its dev-weighted fusion with
    that first stage."""
    work, result = ctx.stage_dir("rerank"), (ctx.done("rerank") or {}).get("result", {})
    systems = [
        SystemRuns(ctx.first_stage_name(hybrid), partial(run_path, work, name=hybrid), ctx.first_stage_latency(hybrid))
        for hybrid in (("hybrid", "hybrid-distill") if ctx.distilled() else ("hybrid",))
    ]
    weights = result.get("fuse_weights", {})
    for label in ctx.rerankers():
        for first in result.get("first_stages", ["bm25", ctx.dense_stage()]):
            name, system_name = f"{first}-{label}", ctx.reranked_name(first, label)
            latency = {**ctx.first_stage_latency(first), "rerank": result["latency"][name]}
            first_name = ctx.first_stage_name(first)
            systems.append(SystemRuns(system_name, partial(run_path, work, name=name), latency, first_name))
            if name in weights:
                fused_name = f"{system_name} fused with {first_name} (w {weights[name]['weight']:g})"
                fused_runs = partial(run_path, work, name=f"{name}-fused")
                systems.append(SystemRuns(fused_name, fused_runs, latency, first_name))
    return systems
