"""What every stage function receives: the dataset, the run folder, the configuration and the mode,
and where the run's models are (trained here, or transferred)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.data.beir import BeirDataset
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
            return {loss: str(self.stage_dir("reranker") / loss) for loss in self.config["reranker"]["losses"]}
        return dict(self.transferred.rerankers) if self.mode == "transfer" else {}

    def dense_stage(self) -> str:
        """The stage whose run is the dense first stage: the index of the trained or transferred
        bi-encoder, else the zero-shot one."""
        return "index" if self.bi_encoder() else "dense-zeroshot"

    def dense_name(self) -> str:
        return DENSE_NAMES[self.mode] if self.bi_encoder() else "dense zero-shot"


def seconds_per_query(started: float, queries: dict) -> float:
    return (time.perf_counter() - started) / max(len(queries), 1)


def skipped(why: str) -> dict:
    """The result of a stage that has nothing to do in this mode."""
    return {"skipped": why}
