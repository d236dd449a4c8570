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


def report_systems(ctx: RunContext) -> list[System]:
    """Every system the run's stages produced (each stage's `systems`, in stage order), evaluated on the
    test split (and on dev, if any)."""
    from pipelines.stages import STAGES

    qrels = {"test": ctx.dataset.qrels(ctx.config["split"]["test"])}
    if ctx.dev_queries():
        qrels["dev"] = ctx.dev_qrels()
    systems = []
    for stage in STAGES:
        for produced in stage.systems(ctx):
            figures = {split: evaluate(read_run(produced.run_file(split)), judged) for split, judged in qrels.items()}
            systems.append(
                System(
                    produced.name,
                    figures["test"],
                    produced.latency,
                    produced.first_stage,
                    figures.get("dev"),
                    produced.run_file("test"),
                )
            )
    return systems


def choose_result(systems: list[System], fixed: str) -> tuple[str, str]:
    """The system the report calls its result, and why: the best dev nDCG@10 when there is a dev split
    (ties to the system listed first, the cheaper one), else `fixed` (the BM25 + dense hybrid), fixed in
    advance."""
    with_dev = [s for s in systems if s.dev is not None]
    if with_dev:
        best = max(with_dev, key=lambda s: (s.dev.aggregate["nDCG@10"], -systems.index(s)))
        queries = best.dev.num_queries
        return best.name, f"the best nDCG@10 on the dev split ({queries} queries, never trained on)"
    return fixed, (
        "fixed in advance, as there is no dev split to choose on (on the collections tried so far the BM25 + "
        "dense hybrid was the one system that beat BM25 on each)"
    )


def stage_report(ctx: RunContext, work: Path) -> dict:
    systems = report_systems(ctx)
    result, why = choose_result(systems, ctx.first_stage_name("hybrid"))
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
