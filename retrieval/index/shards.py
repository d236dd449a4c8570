"""Which corpus shards this process encodes: all of them, the one `--shard-id` names, or under
torchrun those of its rank (rank r of W takes shards r, r + W, ...), and waiting for the others'.

Every shard is written atomically and kept once finished, so a rerun after a lost process encodes
only the shards that are missing; the merge and the FAISS build run once, in rank 0."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import TandemError

log = logging.getLogger(__name__)


@dataclass
class ShardPlan:
    shard_ids: list[int]
    num_shards: int
    builds_index: bool
    """whether this process merges the shards and builds the index when they are all there"""


def plan_shards(num_shards: int, shard_id: int | None = None, encode_only: bool = False) -> ShardPlan:
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world == 1:
        ids = [shard_id] if shard_id is not None else list(range(num_shards))
        return ShardPlan(ids, num_shards, not encode_only and shard_id is None)
    if shard_id is not None:
        raise TandemError("under torchrun each process encodes the shards of its rank: leave out --shard-id")
    num_shards = max(num_shards, world)
    return ShardPlan(list(range(rank, num_shards, world)), num_shards, rank == 0 and not encode_only)


def torchrun_device(device: str | None) -> str | None:
    """Under torchrun on GPUs, each process takes the GPU of its local rank unless --device says otherwise."""
    import torch

    if device is None and int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def wait_for_shards(shards_dir: Path, num_shards: int, poll_seconds: float = 2.0) -> None:
    """Block until every shard folder is complete (they appear atomically). torchrun stops the
    waiting process if another one fails, so this never waits for a shard nobody is writing."""
    missing = [i for i in range(num_shards) if not (shards_dir / f"shard-{i}" / "docids.txt").is_file()]
    if missing:
        log.info("waiting for shard(s) %s from the other processes", missing)
    while missing:
        time.sleep(poll_seconds)
        missing = [i for i in missing if not (shards_dir / f"shard-{i}" / "docids.txt").is_file()]
    if not shards_dir.is_dir():
        raise TandemError(f"{shards_dir}: no encoded shards")
