"""Work split across torchrun processes by contiguous shares of its keys (queries): rank r of W does
the r-th share into a part file, and rank 0 concatenates the parts in rank order once all are written,
so the output is byte for byte what one process writes. A finished part (its record is written after
it) is kept, so a rerun after a lost process redoes only the missing parts. Used by `tandem mine` and
`tandem rerank`; `tandem index build` shards the corpus the same way (`retrieval/index/shards.py`)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from core.atomic import atomic_file
from core.errors import TandemError

log = logging.getLogger(__name__)


def torchrun_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run alone. The one place tandem reads
    torchrun's variables (with `torchrun_local_rank`)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def torchrun_local_rank() -> int:
    """This process's rank on its machine (the GPU it takes); 0 when run alone."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def torchrun_device(device: str | None) -> str | None:
    """Under torchrun on GPUs, each process takes the GPU of its local rank unless --device says otherwise."""
    import torch

    if device is None and torchrun_world()[1] > 1 and torch.cuda.is_available():
        return f"cuda:{torchrun_local_rank()}"
    return device


def shard_range(total: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """The contiguous `shard_id`-th of `num_shards` shares of `total` items, as [start, stop)."""
    if not 0 <= shard_id < num_shards:
        raise TandemError(f"--shard-id must be in 0..{num_shards - 1}")
    return total * shard_id // num_shards, total * (shard_id + 1) // num_shards


def wait_for_files(paths: list[Path], what: str, poll_seconds: float = 1.0) -> None:
    """Block until every path exists (each is written atomically by another process). torchrun stops the
    waiting process if another one fails, so this never waits for a file nobody is writing."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        log.info("waiting for %d %s from the other processes", len(missing), what)
    while missing:
        time.sleep(poll_seconds)
        missing = [path for path in missing if not path.exists()]


def part_paths(out: Path, rank: int, world: int) -> tuple[Path, Path]:
    part = out.with_name(f"{out.name}.part-{rank}-of-{world}")
    return part, part.with_name(part.name + ".done.json")


def work_in_parts(
    work: Callable[[list[str], Path], dict], keys: list[str], out: Path, made_with: dict
) -> list[dict] | None:
    """Run `work(keys_of_this_rank, part_path) -> result` for this rank's share of `keys`; in rank 0, wait
    for every part and merge them into `out`. Returns every part's result (rank order) in rank 0, else None."""
    rank, world = torchrun_world()
    start, stop = shard_range(len(keys), rank, world)
    part, record_path = part_paths(out, rank, world)
    record = {"made_with": made_with, "share": [start, stop, keys[start] if start < stop else None]}
    done = json.loads(record_path.read_text()) if record_path.is_file() and part.is_file() else None
    if done is not None and done["record"] == record:
        log.info("%s already done", part)
    else:
        result = work(keys[start:stop], part)
        with atomic_file(record_path) as handle:
            handle.write(json.dumps({"record": record, "result": result}, indent=2) + "\n")
    if rank != 0:
        return None
    parts = [part_paths(out, r, world) for r in range(world)]
    wait_for_files([record_file for _, record_file in parts], "parts")
    results = []
    with atomic_file(out) as handle:
        for part_file, record_file in parts:
            saved = json.loads(record_file.read_text())
            if saved["record"]["made_with"] != made_with:
                raise TandemError(f"{record_file} was made with other settings; delete the parts and rerun")
            results.append(saved["result"])
            with open(part_file, encoding="utf-8") as source:
                for line in source:
                    handle.write(line)
    for part_file, record_file in parts:
        part_file.unlink()
        record_file.unlink()
    return results


def add_up(results: list[dict]) -> dict:
    """Sum statistics dicts (numbers, and dicts of numbers, key by key)."""
    total: dict = {}
    for result in results:
        for key, value in result.items():
            total[key] = add_up([total.get(key, {}), value]) if isinstance(value, dict) else total.get(key, 0) + value
    return total
