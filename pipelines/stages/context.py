"""What every stage function receives: the dataset, the run folder, the configuration and the mode,
and where the run's models are (trained here, or transferred); and `SystemRuns`, how a stage declares
the systems it produced for the report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from core.data.beir import BeirDataset
from core.data.splits import dev_qrels_split, dev_split_ids, train_query_ids
from pipelines.modes import TRAINED, Models

DENSE_NAMES = {
    "train": "dense fine-tuned",
    "self-supervised": "dense self-supervised",
    "transfer": "dense transferred",
}
"""The report's name for the bi-encoder a mode produces (zero-shot has only the start model)."""


@dataclass
class SystemRuns:
    """A system a stage produced, as the report reads it: its name, its run of a split, what it costs
    per query and the system it builds on (which the report tests it against)."""

    name: str
    run_file: Callable[[str], Path]
    """split -> the system's TREC run of that split"""
    latency: dict[str, float] = field(default_factory=dict)
    first_stage: str | None = None


@dataclass
class RunContext:
    dataset: BeirDataset
    out: Path
    config: dict
    mode: str = "train"
    mode_reason: str = ""
    transferred: Models = field(default_factory=Models)

    def dev_query_ids(self) -> list[str]:
        """The dev queries (train mode only): the dataset's own dev split, else carved from the train
        queries (empty when too few)."""
        if "_dev" not in self.__dict__:
            train_mode = self.mode == "train"
            self.__dict__["_dev"] = dev_split_ids(self.dataset, self.config["split"]) if train_mode else []
        return self.__dict__["_dev"]

    def dev_queries(self) -> dict[str, str]:
        return {query_id: self.dataset.queries[query_id] for query_id in self.dev_query_ids()}

    def dev_qrels(self) -> dict[str, dict[str, int]]:
        """The dev queries' judgments: the official dev split's, or the train qrels of the carved queries
        (only those: others would count as misses)."""
        judged = self.dataset.qrels(dev_qrels_split(self.dataset, self.config["split"]))
        return {query_id: judged[query_id] for query_id in self.dev_query_ids()}

    def train_queries(self) -> dict[str, str]:
        """What the retriever and the cross-encoder learn from: the train split's queries with a positive,
        less the dev ones (`train_query_ids`)."""
        ids = train_query_ids(self.dataset, self.config["split"], self.mode)
        return {query_id: self.dataset.queries[query_id] for query_id in ids}

    def stage_dir(self, stage: str) -> Path:
        return self.out / stage

    def done(self, stage: str) -> dict | None:
        path = self.stage_dir(stage) / "done.json"
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def trains(self) -> bool:
        return self.mode in TRAINED

    def bi_encoder(self) -> str | None:
        """The bi-encoder beyond the zero-shot start: trained in this run, transferred, or none."""
        if self.trains:
            return str(self.stage_dir("retriever") / "model")
        return self.transferred.bi_encoder if self.mode == "transfer" else None

    def rerankers(self) -> dict[str, str]:
        """label -> cross-encoder folder: one per trained loss, or the transferred ones."""
        if self.trains:
            if not self.config["reranker"]["enabled"]:
                return {}
            return {loss: str(self.stage_dir("reranker") / loss) for loss in self.config["reranker"]["losses"]}
        return dict(self.transferred.rerankers) if self.mode == "transfer" else {}

    def dense_stage(self) -> str:
        """The stage whose run is the dense first stage: the index of the trained or transferred
        bi-encoder, else the zero-shot one."""
        return "index" if self.bi_encoder() else "dense-zeroshot"

    def distilled(self) -> bool:
        """Whether the distill stage indexed the corpus with a distilled bi-encoder."""
        return (self.stage_dir("distill") / "test.trec").is_file()

    def dense_name(self) -> str:
        return DENSE_NAMES[self.mode] if self.bi_encoder() else "dense zero-shot"

    def short_dense_name(self) -> str:
        return {"dense fine-tuned": "dense ft"}.get(self.dense_name(), self.dense_name())

    def first_stage_name(self, first: str) -> str:
        """The report's name of a first stage, by its stage (bm25, dense-zeroshot, index, distill) or
        hybrid (hybrid, hybrid-distill)."""
        return {
            "bm25": "BM25",
            "dense-zeroshot": "dense zero-shot",
            "index": self.dense_name(),
            "distill": "dense distilled",
            "hybrid": f"hybrid (RRF BM25 + {self.short_dense_name()})",
            "hybrid-distill": "hybrid (RRF BM25 + dense distilled)",
        }[first]

    def reranked_name(self, first: str, label: str) -> str:
        """The report's name of cross-encoder `label` reranking first stage `first`."""
        return f"{self.first_stage_name(first)} + CE ({label.upper() if label in ('nll', 'bce') else label})"

    def first_stage_latency(self, first: str) -> dict[str, float]:
        """Seconds per query of a first stage (as its stage recorded them); a hybrid costs its two parts."""
        if first.startswith("hybrid"):
            dense = "distill" if first == "hybrid-distill" else self.dense_stage()
            return {"retrieve": sum(self.first_stage_latency(s).get("retrieve", 0) for s in ("bm25", dense))}
        return dict((self.done(first) or {}).get("result", {}).get("latency", {}))

    def stage_run(self, stage: str, split: str) -> Path:
        """Where a first stage keeps its run of `split`."""
        return self.stage_dir(stage) / f"{split}.trec"


def first_stage_system(ctx: RunContext, stage: str, first_stage: str | None = None) -> SystemRuns:
    """A first stage's system: its `<split>.trec` runs and its recorded latency."""
    return SystemRuns(
        ctx.first_stage_name(stage), partial(ctx.stage_run, stage), ctx.first_stage_latency(stage), first_stage
    )


def seconds_per_query(started: float, queries: dict) -> float:
    return (time.perf_counter() - started) / max(len(queries), 1)


def skipped(why: str) -> dict:
    """The result of a stage that has nothing to do in this mode."""
    return {"skipped": why}
