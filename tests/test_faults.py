"""Fault injection: each long command is killed with SIGKILL at a random point of its work, then run
again. After the kill, an output at its final name must already be complete (identical to an
uninterrupted run's); after the rerun, no `.tmp` and no orphan process may remain and the outputs
must be bit-identical to the uninterrupted run's.

The kill point is drawn from `TANDEM_FAULT_SEED` (default 0; failures print it with the delay) within
the 30-95 % window of the uninterrupted run's duration, so it lands in the work, not in start-up."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY, real_dataset

SEED = int(os.environ.get("TANDEM_FAULT_SEED", "0"))
TANDEM = [sys.executable, "-m", "pipelines.cli"]


@dataclass
class Job:
    name: str
    argv: Callable[[Path], list[str]]
    """the command line, given the folder the job writes into"""
    outputs: Callable[[Path], dict[str, bytes]]
    """what must be bit-identical, by name (absent names are not written yet)"""
    rerun: list[str] = field(default_factory=list)
    """extra arguments for the run after the kill (e.g. --resume)"""


def files(*names: str) -> Callable[[Path], dict[str, bytes]]:
    def read(folder: Path) -> dict[str, bytes]:
        return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}

    return read


def run_artifacts(folder: Path) -> dict[str, bytes]:
    """A `tandem run` folder's results: run files, training groups and final models (not the report and
    logs, which hold timings)."""
    patterns = ("*/*.trec", "*/*.jsonl", "*/*/*.trec", "*/model/model.safetensors", "reranker/*/model.safetensors")
    found = {p for pattern in patterns for p in folder.glob(pattern) if ".tmp" not in str(p.relative_to(folder))}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(found)}


def bm25_results(folder: Path) -> dict[str, bytes]:
    """A Lucene index is not byte-stable (segment ids are random), so the index is compared by what
    it returns: the top 20 for SciFact's test queries."""
    index = folder / "bm25"
    if not (index / "tandem-bm25.json").is_file():
        return {}
    from core.data.beir import BeirDataset
    from core.data.runs import write_run
    from retrieval import bm25

    scifact = BeirDataset(real_dataset("scifact"))
    write_run(bm25.search(index, scifact.split_queries("test"), k=20), folder / "check.trec")
    return {"bm25 top 20": (folder / "check.trec").read_bytes()}


def orphans(folder: Path) -> list[str]:
    """Processes (other than ours) whose command line mentions `folder`, e.g. a Java indexer."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr[-3000:]}"
    return time.perf_counter() - started


def run_and_kill(argv: list[str], env: dict[str, str], after: float) -> bool:
    """Start `argv`, SIGKILL it (the process alone, as `kill -9 PID` would) after `after` seconds;
    returns whether it was still running then."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        **os.environ,
        "TANDEM_CACHE": str(tmp_path_factory.mktemp("cache")),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> dict[str, Path]:
    """A tiny encoder, a dense SciFact index and mined groups the later jobs start from."""
    from tests.tiny_models import build_tiny_bert, tiny_texts

    root = tmp_path_factory.mktemp("fault-inputs")
    bert = build_tiny_bert(root / "bert", tiny_texts(TINY))
    scifact = str(real_dataset("scifact"))
    run([*TANDEM, "index", "build", "--dataset", scifact, "--encoder", str(bert), "--out", str(root / "idx")], env)
    run([*TANDEM, "mine", "--dataset", scifact, "--index", str(root / "idx"), "--out", str(root / "g.jsonl")], env)
    config = {
        "split": {"train": "test", "test": "test"},
        "dense": {"model": str(bert)},
        "mining": {"title_queries_per_query": 1},
        "reranker": {"model": str(bert), "batch_queries": 1, "group_size": 3, "save_every": 1, "epochs": 3},
        "rerank": {"depth": 5},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    return {"bert": bert, "index": root / "idx", "groups": root / "g.jsonl", "config": root / "tiny.yaml"}


def jobs(shared: dict[str, Path]) -> dict[str, Job]:
    scifact = str(real_dataset("scifact"))
    return {
        "bm25 index": Job(
            "bm25 index",
            lambda out: [*TANDEM, "bm25", "index", "--dataset", scifact, "--out", str(out / "bm25")],
            bm25_results,
        ),
        "index build": Job(
            "index build",
            lambda out: [
                *TANDEM,
                "index",
                "build",
                "--dataset",
                scifact,
                "--encoder",
                str(shared["bert"]),
                "--out",
                str(out / "idx"),
            ],  # fmt: skip
            lambda out: files("index.faiss", "docids.txt", "embeddings.npy")(out / "idx"),
        ),
        "mine": Job(
            "mine",
            lambda out: [
                *TANDEM,
                "mine",
                "--dataset",
                scifact,
                "--index",
                str(shared["index"]),
                "--out",
                str(out / "groups.jsonl"),
            ],  # fmt: skip
            files("groups.jsonl"),
        ),
        "reranker train": Job(
            "reranker train",
            lambda out: [
                *TANDEM,
                "reranker",
                "train",
                "--groups",
                str(shared["groups"]),
                "--dataset",
                scifact,
                "--model",
                str(shared["bert"]),
                "--batch-queries",
                "4",
                "--group-size",
                "4",
                "--epochs",
                "0.2",
                "--min-steps",
                "0",
                "--save-every",
                "10",
                "--out",
                str(out / "ce"),
            ],  # fmt: skip
            lambda out: files("model.safetensors", "training_config.json")(out / "ce"),
            rerun=["--resume"],
        ),
        "tandem run": Job(
            "tandem run",
            lambda out: [
                *TANDEM,
                "run",
                "--dataset",
                str(TINY),
                "--config",
                str(shared["config"]),
                "--quick",
                "--out",
                str(out / "run"),
            ],  # fmt: skip
            lambda out: run_artifacts(out / "run"),
        ),
    }


@pytest.mark.parametrize("name", ["bm25 index", "index build", "mine", "reranker train", "tandem run"])
def test_a_killed_command_leaves_nothing_half_written_and_reruns_identically(
    name: str, shared: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    job = jobs(shared)[name]
    reference, faulty = tmp_path / "reference", tmp_path / "faulty"
    reference.mkdir(), faulty.mkdir()
    duration = run(job.argv(reference), env)
    expected = job.outputs(reference)
    assert expected, f"{name}: the uninterrupted run wrote none of its outputs"

    delay = random.Random(f"{SEED}:{name}").uniform(0.3, 0.95) * duration
    context = f"{name}: killed after {delay:.2f} s of a {duration:.1f} s run (TANDEM_FAULT_SEED={SEED})"
    run_and_kill(job.argv(faulty), env, delay)
    for output, content in job.outputs(faulty).items():
        assert content == expected[output], f"{context}: {output} is at its final name but incomplete"
    deadline = time.monotonic() + 0.5
    while orphans(faulty) and time.monotonic() < deadline:  # the kernel reaps a dying child asynchronously
        time.sleep(0.2)
    assert not orphans(faulty), f"{context}: processes outlived it: {orphans(faulty)}"

    run(job.argv(faulty) + job.rerun, env)  # --resume also accepts a finished or never-started folder
    assert not leftovers(faulty), f"{context}: the rerun left {leftovers(faulty)}"
    assert not orphans(faulty)
    assert job.outputs(faulty) == expected, f"{context}: the rerun's outputs differ from an uninterrupted run's"
