"""What every stage function receives: the dataset, the run folder, the configuration and the mode,
and where the run's models are (trained here, or transferred)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.data.beir import BeirDataset
from core.data.splits import dev_qrels_split, dev_split_ids
from pipelines.modes import TRAINED, Models

DENSE_NAMES = {
    "train": "dense fine-tuned",
    "self-supervised": "dense self-supervised",
    "transfer": "dense transferred",
}
"""The report's name for the bi-encoder a mode produces (zero-shot has only the start model)."""


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
        """The train split's queries less the dev ones: what the retriever and the cross-encoder learn from."""
        dev = set(self.dev_query_ids())
        return {
            q: text for q, text in self.dataset.split_queries(self.config["split"]["train"]).items() if q not in dev
        }

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


def seconds_per_query(started: float, queries: dict) -> float:
    return (time.perf_counter() - started) / max(len(queries), 1)


def skipped(why: str) -> dict:
    """The result of a stage that has nothing to do in this mode."""
    return {"skipped": why}
