"""What every stage function receives: the dataset, the run folder and the configuration."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from core.data.beir import BeirDataset


@dataclass
class RunContext:
    dataset: BeirDataset
    out: Path
    config: dict

    def stage_dir(self, stage: str) -> Path:
        return self.out / stage

    def done(self, stage: str) -> dict | None:
        path = self.stage_dir(stage) / "done.json"
        return json.loads(path.read_text()) if path.is_file() else None


def seconds_per_query(started: float, queries: dict) -> float:
    return (time.perf_counter() - started) / max(len(queries), 1)
