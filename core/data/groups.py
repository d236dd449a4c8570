"""Training groups: one JSONL line per (query, positive) with ranked hard negatives.

    {"query_id", "query", "positives": [{"id", "text"}], "negatives": [{"id", "text", "score", "rank", "source"}]}

Written by the mining job, read by both trainers."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import iter_jsonl_records
from core.errors import DataFormatError


@dataclass
class Passage:
    id: str
    text: str
    score: float | None = None
    rank: int | None = None
    source: str | None = None


@dataclass
class TrainingGroup:
    query_id: str
    query: str
    positives: list[Passage]
    negatives: list[Passage] = field(default_factory=list)

    def to_json(self) -> str:
        def clean(p: Passage) -> dict:
            return {k: v for k, v in asdict(p).items() if v is not None}

        return json.dumps(
            {
                "query_id": self.query_id,
                "query": self.query,
                "positives": [clean(p) for p in self.positives],
                "negatives": [clean(p) for p in self.negatives],
            },
            ensure_ascii=False,
        )


def _passages(path: Path, line: int, record: dict, key: str) -> list[Passage]:
    items = record.get(key)
    if not isinstance(items, list):
        raise DataFormatError(path, line, f"'{key}' must be a list")
    passages = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("text"), str):
            raise DataFormatError(path, line, f"{key}[{i}] must be an object with string 'id' and 'text'")
        passages.append(Passage(**{k: item[k] for k in ("id", "text", "score", "rank", "source") if k in item}))
    return passages


def read_groups(path: str | Path, min_negatives: int = 0) -> list[TrainingGroup]:
    """Read and check a groups file; a group needs a positive and at least `min_negatives` negatives."""
    path = Path(path)
    groups = []
    for line, record in iter_jsonl_records(path, required=("query_id", "query", "positives", "negatives")):
        positives = _passages(path, line, record, "positives")
        negatives = _passages(path, line, record, "negatives")
        if not positives:
            raise DataFormatError(path, line, "group has no positive passage")
        if len(negatives) < min_negatives:
            raise DataFormatError(path, line, f"group has {len(negatives)} negatives, at least {min_negatives} needed")
        groups.append(TrainingGroup(str(record["query_id"]), record["query"], positives, negatives))
    return groups


def write_groups(groups: Iterable[TrainingGroup], path: str | Path) -> int:
    """Write groups atomically (streaming); returns how many were written."""
    count = 0
    with atomic_file(path) as out:
        for group in groups:
            out.write(group.to_json() + "\n")
            count += 1
    return count


GroupBatch = list[tuple[str, list[str]]]
"""One training batch: (query, [positive, negative_1 .. negative_N]) per group, positive first."""


def sample_group(group: TrainingGroup, group_size: int, rng: random.Random) -> list[str]:
    """[positive, N negatives] texts. Negatives are drawn without replacement when the group has
    enough, else with replacement (so every group has the same shape)."""
    positive = rng.choice(group.positives).text
    wanted = group_size - 1
    pool = group.negatives
    negatives = rng.sample(pool, wanted) if len(pool) >= wanted else rng.choices(pool, k=wanted)
    return [positive, *(n.text for n in negatives)]


def epoch_batches(
    groups: list[TrainingGroup],
    group_size: int,
    batch_queries: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[GroupBatch]:
    """The batches of one epoch for this process: groups shuffled by (seed, epoch), then dealt to
    processes so each sees a disjoint, equal share."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(groups)))
    rng.shuffle(order)
    per_step = batch_queries * world_size
    usable = len(order) - len(order) % per_step
    for start in range(0, usable, per_step):
        mine = order[start + rank * batch_queries : start + (rank + 1) * batch_queries]
        yield [(groups[i].query, sample_group(groups[i], group_size, rng)) for i in mine]
