"""The stages of `tandem run`, each declared once below: its name, the function that runs it
(`(RunContext, work folder) -> result dict`, in a module named after it) and the configuration sections
its output depends on (which decide what a re-run skips). The runner, `--force`, the plan and the
configuration read this list: adding a stage is a module and a line here. Each stage calls the library
functions its command calls. May import every package except the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.stages.context import RunContext
from pipelines.stages.distill import stage_distill
from pipelines.stages.fuse import stage_fuse
from pipelines.stages.rerank import stage_rerank
from pipelines.stages.results import stage_report
from pipelines.stages.retrieval import stage_bm25, stage_dense_zeroshot, stage_index
from pipelines.stages.training import stage_mining, stage_reranker, stage_retriever


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext, Path], dict]
    sections: tuple[str, ...] | None
    """the configuration sections whose options decide the stage's output, its own and its inputs' (None:
    every section)"""
    self_supervised_sections: tuple[str, ...] = ()
    """sections added in self-supervised mode (the bi-encoder trains on `mining`'s title pseudo-queries)"""
    version: int = 1
    """raised when the stage's output changes form, so run folders made before redo it (and what follows)"""


TRAINED = ("run", "split", "bm25", "dense", "retriever", "mining", "reranker")
RERANKED = (*TRAINED, "distill", "rerank", "hybrid")

STAGES: list[Stage] = [
    Stage("bm25", stage_bm25, ("split", "bm25")),
    Stage("dense-zeroshot", stage_dense_zeroshot, ("split", "dense")),
    Stage("retriever", stage_retriever, ("run", "split", "bm25", "dense", "retriever"), ("mining",)),
    Stage("index", stage_index, ("run", "split", "dense", "retriever"), ("mining",)),
    Stage("mining", stage_mining, ("run", "split", "bm25", "dense", "retriever", "mining"), version=2),
    Stage("reranker", stage_reranker, TRAINED),
    Stage("distill", stage_distill, (*TRAINED, "distill")),
    Stage("rerank", stage_rerank, RERANKED),
    Stage("fuse", stage_fuse, (*RERANKED, "fuse")),
    Stage("report", stage_report, None),
]
"""Every stage, in the order `tandem run` runs them."""

STAGE_NAMES = [stage.name for stage in STAGES]
BY_NAME = {stage.name: stage for stage in STAGES}
