"""Corpus encoding under torchrun: each process encodes the shards of its rank, rank 0 merges and
builds the index once, and the result is identical to a single-process build; a rerun after a lost
process encodes only the missing shards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.cli import main
from retrieval.index.shards import plan_shards

REPO = Path(__file__).resolve().parent.parent


def torchrun(args: list[str], processes: int = 2) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "pipelines.cli", *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def index_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("index.faiss", "docids.txt", "embeddings.npy")}


def test_ranks_take_every_world_size_th_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plan_shards(3).shard_ids == [0, 1, 2] and plan_shards(3).builds_index
    assert plan_shards(3, shard_id=1).shard_ids == [1] and not plan_shards(3, shard_id=1).builds_index
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert plan_shards(5).shard_ids == [1, 3] and not plan_shards(5).builds_index
    assert plan_shards(1).shard_ids == [1] and plan_shards(1).num_shards == 2  # at least one shard per process
    monkeypatch.setenv("RANK", "0")
    assert plan_shards(5).shard_ids == [0, 2, 4] and plan_shards(5).builds_index


def test_torchrun_build_equals_a_single_process_build_and_redoes_only_a_lost_shard(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    build = ["index", "build", "--dataset", str(tiny_dir), "--encoder", str(tiny_bert), "--num-shards", "3"]
    assert main([*build, "--out", str(tmp_path / "single")]) == 0
    torchrun([*build, "--out", str(tmp_path / "multi")])
    assert index_files(tmp_path / "multi") == index_files(tmp_path / "single")
    assert not (tmp_path / "multi.shards").exists()  # merged, then removed

    assert main(["index", "build", "--dataset", str(tiny_dir), "--encoder", str(tiny_bert), "--out",
                 str(tmp_path / "one-shard")]) == 0  # fmt: skip
    np.testing.assert_allclose(
        np.load(tmp_path / "one-shard" / "embeddings.npy"), np.load(tmp_path / "single" / "embeddings.npy"), atol=1e-5
    )

    torchrun([*build, "--out", str(tmp_path / "lost"), "--encode-only"])
    shards = tmp_path / "lost.shards"
    assert sorted(p.name for p in shards.iterdir()) == ["shard-0", "shard-1", "shard-2"]
    for leftover in (shards / "shard-1").iterdir():  # a process died before its shard was complete
        leftover.unlink()
    (shards / "shard-1").rmdir()
    log = torchrun([*build, "--out", str(tmp_path / "lost")])
    assert "shard-0 already encoded" in log and "shard-2 already encoded" in log
    assert "shard-1 already encoded" not in log
    assert index_files(tmp_path / "lost") == index_files(tmp_path / "single")
    assert not shards.exists()


def test_shard_id_under_torchrun_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import TandemError

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(TandemError, match="leave out --shard-id"):
        plan_shards(3, shard_id=0)
