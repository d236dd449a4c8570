"""`tandem run --plan`: every stage with its size and an estimated time, from a short measured warm-up on
this machine, and `--budget` cuts that make the whole run fit.

The warm-up (`pipelines.warmup`) times what dominates each stage with the run's own models and settings;
each stage's estimate (`pipelines.estimate`) is declared beside it in `pipelines.stages`."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from core.data.beir import BeirDataset
from core.errors import TandemError
from pipelines.estimate import StagePlan, workload
from pipelines.stages import STAGES
from pipelines.warmup import Rates


def parse_budget(text: str) -> float:
    """'45m', '2h', '1h30m', '900s' or plain seconds -> seconds."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not parts or not any(parts.groups()):
        raise TandemError(f"--budget takes a duration such as 45m, 2h or 1h30m, not '{text}'")
    hours, minutes, seconds = (float(g or 0) for g in parts.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise TandemError("--budget must be positive")
    return total


def plan_run(
    dataset: BeirDataset, config: dict, mode: str, rates: Rates, has_bi_encoder: bool, rerankers: int
) -> list[StagePlan]:
    """Each stage's work and estimated seconds for this dataset, configuration and mode, as the stage
    declares them (`pipelines.stages.STAGES`)."""
    load = workload(dataset, config, mode, rates, has_bi_encoder, rerankers)
    return [stage.estimate(load) for stage in STAGES]


CROSS_ENCODER_FLOOR = 0.5
"""`--budget` scales the cross-encoder's steps down to this share before touching the retriever's steps."""
CROSS_ENCODER_MIN_STEPS = 400
"""The fewest steps a budget leaves the cross-encoder: before them its new head is still on the ln(N+1)
plateau and it reranks below its own first stage on dev (docs/experiments.md, "How long the cross-encoder
trains"). A budget that cannot give it these skips it instead of training a reranker that makes rankings
worse."""
MIN_RERANK_DEPTH = 30
"""The shallowest rerank a budget leaves: the fusion weights are chosen over the reranked top `depth`."""


def fit_budget(config: dict, plans: list[StagePlan], budget: float) -> list[str]:
    """Cut (in `config`) what the rest of the run leans on least until the estimate fits `budget` seconds;
    returns what was cut. First the distill stage is skipped: it only adds a system that dev picks when it
    beats the fine-tuned bi-encoder. Then the cross-encoder's steps and rerank depth are scaled down, to
    `CROSS_ENCODER_FLOOR` of them at most, never below `CROSS_ENCODER_MIN_STEPS` steps or `MIN_RERANK_DEPTH`
    hits; a cross-encoder that cannot have those is skipped, with its reranking. Last, the retriever's steps
    are scaled, by what is still over: the mining, the dense and hybrid first stages and the
    cross-encoder's groups build on it.
    BM25, encoding and mining cannot be cut."""
    by_stage = {p.stage: p for p in plans}
    cuttable = sum(by_stage[s].seconds for s in ("retriever", "reranker", "distill", "rerank"))
    total = sum(p.seconds for p in plans)
    if total <= budget:
        return []
    if total - cuttable >= budget:
        raise TandemError(f"--budget {budget:.0f} s is below the stages that cannot be cut (~{total - cuttable:.0f} s)")
    over, cuts = total - budget, []
    distill = by_stage["distill"]
    if distill.seconds > 0:
        config["distill"]["enabled"] = False
        over -= distill.seconds
        distill.seconds, distill.cut = 0.0, "skipped"
        cuts.append("distill skipped")
    retriever, reranker, rerank = by_stage["retriever"], by_stage["reranker"], by_stage["rerank"]
    cross = reranker.seconds + rerank.seconds
    if over > 1.0 and cross:
        factor = max(1 - over / cross, CROSS_ENCODER_FLOOR)
        if reranker.steps and reranker.steps * factor < CROSS_ENCODER_MIN_STEPS:
            config["reranker"]["enabled"] = False
            over -= cross
            reranker.seconds = rerank.seconds = 0.0
            reranker.cut = rerank.cut = "skipped"
            cuts.append(
                f"cross-encoder skipped ({int(reranker.steps * factor):,} of its steps would fit; it needs "
                f"{CROSS_ENCODER_MIN_STEPS:,} to leave its plateau)"
            )
        elif factor < 1:
            _scale_steps(config, reranker, factor, cuts)
            depth = config["rerank"]["depth"]
            shallower = max(min(MIN_RERANK_DEPTH, depth), int(depth * factor))
            if shallower < depth:
                config["rerank"]["depth"] = shallower
                rerank.seconds *= shallower / depth
                rerank.cut = f"depth {depth} -> {shallower}"
                cuts.append(f"rerank {rerank.cut}")
            over -= cross - (reranker.seconds + rerank.seconds)  # what the cuts saved
    if over > 1.0 and retriever.seconds:  # a second of rounding is no reason to cut
        _scale_steps(config, retriever, max(0.0, 1 - over / retriever.seconds), cuts)
    return cuts


def _scale_steps(config: dict, plan: StagePlan, factor: float, cuts: list[str]) -> None:
    """Cap a training stage's steps at `factor` of its plan (at least one step)."""
    if plan.steps and factor < 1:
        config[plan.stage]["max_steps"] = max(1, int(plan.steps * factor))
        plan.cut = f"steps {plan.steps:,} -> {config[plan.stage]['max_steps']:,}"
        cuts.append(f"{plan.stage} {plan.cut}")
    plan.seconds *= factor


def format_plan(plans: list[StagePlan], rates: Rates, budget: float | None = None) -> str:
    width = max(len(p.work) for p in plans)
    lines = [f"{'stage':<15} {'work':<{width}} {'estimate':>9}  cut"]
    for p in plans:
        lines.append(f"{p.stage:<15} {p.work:<{width}} {_clock(p.seconds):>9}  {p.cut}")
    total = sum(p.seconds for p in plans)
    lines.append(f"{'total':<15} {'':<{width}} {_clock(total):>9}" + (f"  (budget {_clock(budget)})" if budget else ""))
    measured = [f"encoding {1 / rates.encode_seconds(1, 256):.0f} passages/s"]
    if rates.retriever_step_s:
        measured.append(f"bi-encoder {rates.retriever_step_s:.2f} s/step")
    if rates.reranker_step_s:
        measured.append(f"cross-encoder {rates.reranker_step_s:.2f} s/step")
    if rates.score_s_per_token:
        measured.append(f"scoring {1 / rates.score_seconds(1):.0f} pairs/s")
    source = (
        f"measured in an earlier {rates.warmup_seconds:.0f} s warm-up of this job on this machine "
        "(--fresh-warmup times it again)"
        if rates.cached
        else f"measured in a {rates.warmup_seconds:.0f} s warm-up (what this run does)"
    )
    lines.append(f"{source}: " + ", ".join(measured))
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def save_plan(path: Path, plans: list[StagePlan], rates: Rates, cuts: list[str]) -> None:
    path.write_text(json.dumps({"rates": asdict(rates), "stages": [asdict(p) for p in plans], "cuts": cuts}, indent=2))
