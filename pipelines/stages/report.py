"""The report stage: every system the run produced, evaluated on test (and on dev when the run has a
dev split), the result chosen on dev, and the comparison report."""

from __future__ import annotations

import json
from pathlib import Path

from core.atomic import atomic_file
from core.data.runs import read_run
from pipelines.estimate import StagePlan, Workload
from pipelines.evaluation.explorer import explorer_data, write_explorer
from pipelines.evaluation.metrics import evaluate
from pipelines.evaluation.record import run_record
from pipelines.evaluation.report import System, write_report
from pipelines.stages.context import RunContext
from pipelines.stages.rerank import first_stage_run, run_path

STAGE_RUNS = ("bm25", "dense-zeroshot", "index", "distill")
"""The stages that write a first-stage test run."""


def report_systems(ctx: RunContext) -> list[System]:
    """Every system this mode produced, evaluated on the test split (and on dev, if any)."""
    qrels = {"test": ctx.dataset.qrels(ctx.config["split"]["test"])}
    if ctx.dev_queries():
        qrels["dev"] = ctx.dev_qrels()

    def scored(path_of_split) -> dict:
        figures = {split: evaluate(read_run(path_of_split(split)), judged) for split, judged in qrels.items()}
        return {**figures, "run_file": path_of_split("test")}

    latency = {s: (ctx.done(s) or {}).get("result", {}).get("latency", {}) for s in STAGE_RUNS + ("rerank",)}
    rerank_result = (ctx.done("rerank") or {}).get("result", {})
    weights = rerank_result.get("fuse_weights", {})
    convex = (ctx.done("fuse") or {}).get("result", {}).get("convex", {})
    dense_stage, dense_name = ctx.dense_stage(), ctx.dense_name()
    short = {"dense fine-tuned": "dense ft"}.get(dense_name, dense_name)
    names = {
        "bm25": "BM25",
        "dense-zeroshot": "dense zero-shot",
        "index": dense_name,
        "distill": "dense distilled",
        "hybrid": f"hybrid (RRF BM25 + {short})",
        "hybrid-distill": "hybrid (RRF BM25 + dense distilled)",
    }
    latency["hybrid"] = {"retrieve": latency["bm25"].get("retrieve", 0) + latency[dense_stage].get("retrieve", 0)}
    latency["hybrid-distill"] = {"retrieve": latency["bm25"].get("retrieve", 0) + latency["distill"].get("retrieve", 0)}
    rerank = ctx.stage_dir("rerank")
    systems = []
    for stage in STAGE_RUNS:
        if (stage != "index" or dense_stage == "index") and (stage != "distill" or ctx.distilled()):
            figures = scored(lambda split, stage=stage: first_stage_run(ctx, stage, split))
            trained_from = dense_name if stage == "distill" else None
            systems.append(
                System(
                    names[stage],
                    figures["test"],
                    dict(latency[stage]),
                    trained_from,
                    figures.get("dev"),
                    figures["run_file"],
                )
            )
    for hybrid in ("hybrid", "hybrid-distill") if ctx.distilled() else ("hybrid",):
        figures = scored(lambda split, hybrid=hybrid: run_path(rerank, split, hybrid))
        systems.append(
            System(
                names[hybrid], figures["test"], latency[hybrid], dev=figures.get("dev"), run_file=figures["run_file"]
            )
        )
    firsts = rerank_result.get("first_stages", ["bm25", dense_stage])
    for label in ctx.rerankers():
        for first in firsts:
            name = f"{first}-{label}"
            stage_latency = {**latency[first], "rerank": latency["rerank"][name]}
            system_name = f"{names[first]} + CE ({label.upper() if label in ('nll', 'bce') else label})"
            figures = scored(lambda split, name=name: run_path(rerank, split, name))
            systems.append(
                System(
                    system_name, figures["test"], stage_latency, names[first], figures.get("dev"), figures["run_file"]
                )
            )
            if name in weights:
                fused_name = f"{system_name} fused with {names[first]} (w {weights[name]['weight']:g})"
                figures = scored(lambda split, name=name: run_path(rerank, split, f"{name}-fused"))
                systems.append(
                    System(
                        fused_name,
                        figures["test"],
                        stage_latency,
                        names[first],
                        figures.get("dev"),
                        figures["run_file"],
                    )
                )
            if name in convex:
                w = convex[name]["weights"]
                convex_name = f"{system_name}, convex: CE {w['ce']:g}, BM25 {w['bm25']:g}, {short} {w['dense']:g}"
                figures = scored(lambda split, name=name: run_path(ctx.stage_dir("fuse"), split, f"{name}-convex"))
                cost = stage_latency if w["ce"] else dict(latency[first])  # a zero CE weight needs no CE
                systems.append(
                    System(convex_name, figures["test"], cost, names[first], figures.get("dev"), figures["run_file"])
                )
    return systems


def choose_result(systems: list[System]) -> tuple[str, str]:
    """The system the report calls its result, and why: the best dev nDCG@10 when there is a dev split
    (ties to the system listed first, the cheaper one), else the BM25 + dense hybrid, fixed in advance."""
    with_dev = [s for s in systems if s.dev is not None]
    if with_dev:
        best = max(with_dev, key=lambda s: (s.dev.aggregate["nDCG@10"], -systems.index(s)))
        queries = best.dev.num_queries
        return best.name, f"the best nDCG@10 on the dev split ({queries} queries, never trained on)"
    hybrid = next(s.name for s in systems if s.name.startswith("hybrid"))
    return hybrid, (
        "fixed in advance, as there is no dev split to choose on (on the collections tried so far the BM25 + "
        "dense hybrid was the one system that beat BM25 on each)"
    )


def stage_report(ctx: RunContext, work: Path) -> dict:
    systems = report_systems(ctx)
    result, why = choose_result(systems)
    skipped_stages = [
        f"{stage} ({done['result']['skipped']})"
        for stage in ("retriever", "index", "mining", "reranker", "distill", "fuse")
        if (done := ctx.done(stage)) and "skipped" in done.get("result", {})
    ]
    depth = ctx.config["rerank"]["depth"]
    preamble = [
        f"**Mode: {ctx.mode}** ({ctx.mode_reason}).",
        f"**Result: {result}**, chosen as {why}; it is never picked by reading the test figures.",
    ]
    if skipped_stages:
        preamble.append("Skipped stages: " + "; ".join(skipped_stages) + ".")
    plan = ctx.out / "plan.json"
    cuts = json.loads(plan.read_text()).get("cuts", []) if plan.is_file() else []
    if cuts:
        preamble.append("Cut to fit --budget: " + "; ".join(cuts) + ".")
    notes = (
        f"Dataset {ctx.dataset.name}, split {ctx.config['split']['test']}; cross-encoders rerank the top {depth}. "
        "Latency: wall-clock ms per query of each stage on this machine."
    )
    if ctx.dev_queries():
        notes += (
            " Fused systems mix the cross-encoder's and the first stage's scores (each min-max normalised) "
            "with the cross-encoder weight w that scored best on dev; convex systems mix the cross-encoder's, "
            "BM25's and the dense retriever's scores (each min-max normalised) over the reranked top "
            f"{depth} with the weights that scored best on dev (a CE weight of 0 needs no "
            "cross-encoder, and its latency counts none)."
        )
    preamble.append("Per query, two systems side by side: [index.html](index.html) (opens from disk).")
    title = f"tandem run: {ctx.dataset.name}"
    write_report(work, title, systems, "BM25", notes, preamble=preamble, result=result)
    test_qrels = ctx.dataset.qrels(ctx.config["split"]["test"])
    data = explorer_data(title, systems, "BM25", result, test_qrels, ctx.dataset.queries, ctx.dataset.corpus)
    write_explorer(work / "index.html", data)
    stage_seconds = {path.parent.name: json.loads(path.read_text())["seconds"] for path in ctx.out.glob("*/done.json")}
    record = run_record(ctx.dataset.name, ctx.mode, systems, result, stage_seconds)
    with atomic_file(work / "record.json") as out:
        json.dump(record, out, indent=2)
        out.write("\n")
    return {"systems": [s.name for s in systems], "mode": ctx.mode, "result": result}


def estimate_report(w: Workload) -> StagePlan:
    return StagePlan("report", "evaluate and plot", 5.0)
