"""Which corpus shards this process encodes: all of them, the one `--shard-id` names, or under
torchrun those of its rank (rank r of W takes shards r, r + W, ...), and waiting for the others'.

Every shard is written atomically and kept once finished, so a rerun after a lost process encodes
only the shards that are missing; the merge and the FAISS build run once, in rank 0."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from core.errors import TandemError
from core.parts import torchrun_world, wait_for_files

log = logging.getLogger(__name__)


@dataclass
class ShardPlan:
    shard_ids: list[int]
    num_shards: int
    builds_index: bool
    """whether this process merges the shards and builds the index when they are all there"""


def plan_shards(num_shards: int, shard_id: int | None = None, encode_only: bool = False) -> ShardPlan:
    rank, world = torchrun_world()
    if world == 1:
        ids = [shard_id] if shard_id is not None else list(range(num_shards))
        return ShardPlan(ids, num_shards, not encode_only and shard_id is None)
    if shard_id is not None:
        raise TandemError("under torchrun each process encodes the shards of its rank: leave out --shard-id")
    num_shards = max(num_shards, world)
    return ShardPlan(list(range(rank, num_shards, world)), num_shards, rank == 0 and not encode_only)


def shard_dir(shards_dir: str | Path, shard_id: int) -> Path:
    """Where shard `shard_id` of an index's shards folder lives."""
    return Path(shards_dir) / f"shard-{shard_id}"


def encoded_marker(shard: Path) -> Path:
    """The file whose presence says a shard is finished (shard folders appear atomically, this inside)."""
    return shard / "docids.txt"


def wait_for_shards(shards_dir: Path, num_shards: int) -> None:
    """Block until every shard folder is complete."""
    wait_for_files([encoded_marker(shard_dir(shards_dir, i)) for i in range(num_shards)], "encoded shards")
