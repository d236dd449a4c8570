"""The stages of `tandem run`, one function each: `(RunContext, work folder) -> result dict`. Each calls
the library functions its command calls; `pipelines/runner.py` decides which stages run. May import every
package except the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.stages.context import RunContext
from pipelines.stages.distill import stage_distill
from pipelines.stages.fuse import stage_fuse
from pipelines.stages.rerank import stage_rerank
from pipelines.stages.results import stage_report
from pipelines.stages.retrieval import stage_bm25, stage_dense_zeroshot, stage_index
from pipelines.stages.training import stage_mining, stage_reranker, stage_retriever

STAGE_FUNCTIONS: dict[str, Callable[[RunContext, Path], dict]] = {
    "bm25": stage_bm25,
    "dense-zeroshot": stage_dense_zeroshot,
    "retriever": stage_retriever,
    "index": stage_index,
    "mining": stage_mining,
    "reranker": stage_reranker,
    "distill": stage_distill,
    "rerank": stage_rerank,
    "fuse": stage_fuse,
    "report": stage_report,
}
