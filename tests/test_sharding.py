"""Corpus encoding under torchrun: each process encodes the shards of its rank, rank 0 merges and
builds the index once, and the result is identical to a single-process build; a rerun after a lost
process encodes only the missing shards."""

from __future__ import annotations

import json
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
    assert sorted(p.name for p in shards.iterdir() if not p.name.startswith(".")) == ["shard-0", "shard-1", "shard-2"]
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


def test_torchrun_mining_equals_a_single_process_run_and_reuses_a_finished_part(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["index", "build", "--dataset", str(tiny_dir), "--encoder", str(tiny_bert),
                 "--out", str(tmp_path / "idx")]) == 0  # fmt: skip
    mine = ["mine", "--dataset", str(tiny_dir), "--split", "test", "--index", str(tmp_path / "idx"),
            "--num-negatives", "3", "--depth", "8"]  # fmt: skip
    assert main([*mine, "--out", str(tmp_path / "single.jsonl")]) == 0
    torchrun([*mine, "--out", str(tmp_path / "multi.jsonl")])
    single = (tmp_path / "single.jsonl").read_bytes()
    assert single.count(b"\n") == 3 and (tmp_path / "multi.jsonl").read_bytes() == single
    single_stats = json.loads((tmp_path / "single.jsonl.stats.json").read_text())
    assert json.loads((tmp_path / "multi.jsonl.stats.json").read_text()) == json.loads(json.dumps(single_stats))
    assert not list(tmp_path.glob("multi.jsonl.part-*"))

    with monkeypatch.context() as rank_one:  # rank 1 of 2 finished its part, then the job was lost
        rank_one.setenv("WORLD_SIZE", "2")
        rank_one.setenv("RANK", "1")
        assert main([*mine, "--out", str(tmp_path / "lost.jsonl")]) == 0
    assert (tmp_path / "lost.jsonl.part-1-of-2").is_file() and not (tmp_path / "lost.jsonl").exists()
    log = torchrun([*mine, "--out", str(tmp_path / "lost.jsonl")])
    assert "lost.jsonl.part-1-of-2 already done" in log and "part-0-of-2 already done" not in log
    assert (tmp_path / "lost.jsonl").read_bytes() == single


def test_torchrun_rerank_merges_the_shares_of_every_process(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    from core.data.runs import read_run, write_run
    from rerank.model import CrossEncoder

    CrossEncoder.from_pretrained(tiny_bert).save_pretrained(tmp_path / "ce")  # one head for every process
    run = {q: [(f"d{i}", 10.0 - i) for i in range(1, 9)] for q in ("q1", "q2", "q3", "q4", "q5")}
    write_run(run, tmp_path / "first.trec")
    rerank = ["rerank", "--first-stage", str(tmp_path / "first.trec"), "--dataset", str(tiny_dir), "--model", str(tmp_path / "ce"),
              "--depth", "5"]  # fmt: skip
    assert main([*rerank, "--out", str(tmp_path / "single.trec")]) == 0
    torchrun([*rerank, "--out", str(tmp_path / "multi.trec")])
    single, multi = read_run(tmp_path / "single.trec"), read_run(tmp_path / "multi.trec")
    assert list(multi) == list(single) == list(run)
    for query_id, hits in single.items():  # same scores (batches differ, so up to float rounding)
        expected, got = dict(hits), dict(multi[query_id])
        assert set(got) == set(expected)
        np.testing.assert_allclose([got[d] for d in expected], list(expected.values()), rtol=1e-4, atol=1e-5)
    assert not list(tmp_path.glob("multi.trec.part-*"))
