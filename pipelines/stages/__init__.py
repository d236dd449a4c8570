"""The stages of `tandem run`, each declared once below: its name, the function that runs it
(`(RunContext, work folder) -> result dict`), the one that estimates its cost (`Workload ->
StagePlan`) and the one that lists the systems it produced for the report, all in a module named after
it, and the configuration sections its output depends on (which decide what a re-run skips). The
runner, `--force`, the plan, the report and the configuration read this list: adding a stage is a module
and a line here. Each stage calls the library functions its command calls. May import every package
except the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.estimate import StagePlan, Workload
from pipelines.stages.bm25 import estimate_bm25, stage_bm25, systems_bm25
from pipelines.stages.context import RunContext, SystemRuns
from pipelines.stages.dense_zeroshot import estimate_dense_zeroshot, stage_dense_zeroshot, systems_dense_zeroshot
from pipelines.stages.distill import estimate_distill, stage_distill, systems_distill
from pipelines.stages.fuse import estimate_fuse, stage_fuse, systems_fuse
from pipelines.stages.index import estimate_index, stage_index, systems_index
from pipelines.stages.mining import estimate_mining, stage_mining
from pipelines.stages.report import estimate_report, stage_report
from pipelines.stages.rerank import estimate_rerank, stage_rerank, systems_rerank
from pipelines.stages.reranker import estimate_reranker, stage_reranker
from pipelines.stages.retriever import estimate_retriever, stage_retriever


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext, Path], dict]
    estimate: Callable[[Workload], StagePlan]
    """the stage's work and seconds for `tandem run --plan` and `--budget`"""
    sections: tuple[str, ...] | None
    """the configuration sections whose options decide the stage's output, its own and its inputs' (None:
    every section)"""
    self_supervised_sections: tuple[str, ...] = ()
    """sections added in self-supervised mode (the bi-encoder trains on `mining`'s title pseudo-queries)"""
    version: int = 1
    """raised when the stage's output changes form, so run folders made before redo it (and what follows)"""
    systems: Callable[[RunContext], list[SystemRuns]] = lambda ctx: []
    """the systems the stage produced, for the report (which lists them in stage order)"""


TRAINED = ("run", "split", "bm25", "dense", "retriever", "mining", "reranker")
RERANKED = (*TRAINED, "distill", "rerank", "hybrid")

STAGES: list[Stage] = [
    Stage("bm25", stage_bm25, estimate_bm25, ("split", "bm25"), systems=systems_bm25),
    Stage(
        "dense-zeroshot",
        stage_dense_zeroshot,
        estimate_dense_zeroshot,
        ("split", "dense"),
        systems=systems_dense_zeroshot,
    ),
    Stage(
        "retriever",
        stage_retriever,
        estimate_retriever,
        ("run", "split", "bm25", "dense", "retriever"),
        ("mining",),
    ),
    Stage(
        "index",
        stage_index,
        estimate_index,
        ("run", "split", "dense", "retriever"),
        ("mining",),
        systems=systems_index,
    ),
    Stage(
        "mining",
        stage_mining,
        estimate_mining,
        ("run", "split", "bm25", "dense", "retriever", "mining"),
        version=2,
    ),
    Stage("reranker", stage_reranker, estimate_reranker, TRAINED),
    Stage("distill", stage_distill, estimate_distill, (*TRAINED, "distill"), systems=systems_distill),
    Stage("rerank", stage_rerank, estimate_rerank, RERANKED, systems=systems_rerank),
    Stage("fuse", stage_fuse, estimate_fuse, (*RERANKED, "fuse"), systems=systems_fuse),
    Stage("report", stage_report, estimate_report, None),
]
"""Every stage, in the order `tandem run` runs them."""

STAGE_NAMES = [stage.name for stage in STAGES]
BY_NAME = {stage.name: stage for stage in STAGES}
