"""tandem replaces or deletes only what it wrote: every command that writes refuses a dataset folder, a
folder holding someone else's files and a file that is not its own kind of output, before any work, with
one line, and leaves all of them byte for byte as they were (core/outputs.py)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import TandemError
from core.outputs import MARKER, check_folder_output, read_marker, write_marker
from pipelines.cli import main


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under `root`, with a hash of each file's bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        found[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return found


@pytest.fixture
def world(tiny_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """A user's dataset, a folder of their own files, one of their files, and inputs the commands read."""
    dataset = tmp_path / "mydata"
    shutil.copytree(tiny_dir, dataset)
    home = tmp_path / "home"
    (home / "thesis").mkdir(parents=True)
    (home / "thesis" / "ch1.tex").write_text("\\chapter{One}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("call Ada on Monday\n")
    run = tmp_path / "inputs" / "bm25.trec"
    run.parent.mkdir()
    run.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\nq2 Q0 d2 1 3.0 t\n")
    other = run.with_name("dense.trec")
    other.write_text("q1 Q0 d2 1 2.0 t\nq2 Q0 d1 1 1.0 t\n")
    groups = run.with_name("groups.jsonl")
    groups.write_text(
        '{"query_id": "q1", "query": "aspirin", "positives": [{"id": "d1"}], "negatives": [{"id": "d2"}]}\n'
    )
    return {"dataset": dataset, "home": home, "notes": notes, "run": run, "other": other, "groups": groups}


COMMANDS: dict[str, Callable[[dict[str, Path], Path, str], list[str]]] = {
    "run": lambda w, out, bert: ["run", "--dataset", str(w["dataset"]), "--out", str(out), "--quick"],
    "bm25 index": lambda w, out, bert: ["bm25", "index", "--dataset", str(w["dataset"]), "--out", str(out)],
    "bm25 index --force": lambda w, out, bert: [
        "bm25", "index", "--dataset", str(w["dataset"]), "--out", str(out), "--force",
    ],
    "bm25 search": lambda w, out, bert: [
        "bm25", "search", "--dataset", str(w["dataset"]), "--index", str(w["home"].parent / "none"), "--out", str(out),
    ],
    "retriever train --overwrite": lambda w, out, bert: [
        "retriever", "train", "--dataset", str(w["dataset"]), "--model", bert, "--out", str(out), "--overwrite",
    ],
    "index build": lambda w, out, bert: [
        "index", "build", "--dataset", str(w["dataset"]), "--encoder", bert, "--out", str(out),
    ],
    "dense search": lambda w, out, bert: [
        "dense", "search", "--dataset", str(w["dataset"]), "--index", str(w["home"].parent / "none"), "--out", str(out),
    ],
    "evaluate --per-query": lambda w, out, bert: [
        "evaluate", "--dataset", str(w["dataset"]), "--run", str(w["run"]), "--per-query", str(out),
    ],
    "mine": lambda w, out, bert: [
        "mine", "--dataset", str(w["dataset"]), "--bm25-index", str(w["home"].parent / "none"), "--out", str(out),
    ],
    "reranker train --overwrite": lambda w, out, bert: [
        "reranker", "train", "--dataset", str(w["dataset"]), "--groups", str(w["groups"]), "--model", bert,
        "--out", str(out), "--overwrite",
    ],
    "reranker score-groups": lambda w, out, bert: [
        "reranker", "score-groups", "--dataset", str(w["dataset"]), "--groups", str(w["groups"]), "--model", bert,
        "--out", str(out),
    ],
    "rerank": lambda w, out, bert: [
        "rerank", "--dataset", str(w["dataset"]), "--run", str(w["run"]), "--model", bert, "--allow-untrained-head",
        "--out", str(out),
    ],
    "fuse": lambda w, out, bert: ["fuse", str(w["run"]), str(w["other"]), "--out", str(out)],
    "compare": lambda w, out, bert: ["compare", str(w["run"]), "--dataset", str(w["dataset"]), "--out", str(out)],
}  # fmt: skip
"""Every sub-command that writes, as it is called with `out` as its output path."""


@pytest.mark.parametrize("target", ["dataset", "home", "notes"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_touches_a_dataset_a_users_folder_or_a_users_file(
    command: str, target: str, world: dict[str, Path], tiny_bert: Path, capsys: pytest.CaptureFixture
) -> None:
    root = world["dataset"].parent
    before = snapshot(root)
    capsys.readouterr()
    code = main(COMMANDS[command](world, world[target], str(tiny_bert)))
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert snapshot(root) == before  # nothing written, nothing deleted, nothing changed
    assert len(err.splitlines()) == 1 and str(world[target]) in err, err


def test_index_build_into_the_dataset_keeps_corpus_queries_and_qrels(
    world: dict[str, Path], tiny_bert: Path, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(world["dataset"])
    argv = ["index", "build", "--dataset", str(world["dataset"]), "--encoder", str(tiny_bert)]
    assert main([*argv, "--out", str(world["dataset"])]) == 2
    assert "inside the dataset folder" in capsys.readouterr().err
    assert main([*argv, "--out", str(world["dataset"] / "qrels")]) == 2
    assert snapshot(world["dataset"]) == before
    assert not list(world["dataset"].parent.glob("*.shards"))  # refused before encoding


def test_index_build_replaces_its_own_index_only(world: dict[str, Path], tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    argv = ["index", "build", "--dataset", str(world["dataset"]), "--encoder", str(tiny_bert), "--out", str(out)]
    assert main(argv) == 0
    assert read_marker(out)["kind"] == "dense-index" and not (tmp_path / "idx.shards").exists()
    assert main(argv) == 0  # its own index: rebuilt
    (tmp_path / "idx.shards").mkdir()
    (tmp_path / "idx.shards" / "mine.txt").write_text("not a shard")
    assert main(argv) == 2  # a user's folder where the shards would go is left alone
    assert (tmp_path / "idx.shards" / "mine.txt").read_text() == "not a shard"


def test_bm25_force_replaces_an_index_never_a_users_folder(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bm25"
    argv = ["bm25", "index", "--dataset", str(world["dataset"]), "--out", str(out)]
    assert main(argv) == 0
    assert main([*argv, "--force"]) == 0  # its own index
    before = snapshot(world["home"])
    assert main([*argv[:-1], str(world["home"]), "--force"]) == 2
    assert "holds files tandem did not write" in capsys.readouterr().err
    assert snapshot(world["home"]) == before
    assert main([*argv[:-1], str(world["dataset"]), "--force"]) == 2


def test_run_refuses_a_folder_with_a_users_stage_named_files(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "book"
    (home / "index").mkdir(parents=True)
    (home / "index" / "book.txt").write_text("chapter one")
    (home / "report").mkdir()
    (home / "report" / "final.md").write_text("# final")
    before = snapshot(home)
    assert main(["run", "--dataset", str(world["dataset"]), "--out", str(home), "--quick"]) == 2
    assert "holds files tandem did not write" in capsys.readouterr().err
    assert snapshot(home) == before


def test_a_stage_folder_tandem_did_not_write_is_never_deleted(tmp_path: Path) -> None:
    from core.outputs import remove_owned

    stage = tmp_path / "run" / "index"
    stage.mkdir(parents=True)
    (stage / "book.txt").write_text("mine")
    with pytest.raises(TandemError, match="holds files tandem did not write"):
        remove_owned(stage, "stage")
    assert (stage / "book.txt").read_text() == "mine"
    write_marker(stage, "stage", stage="index")
    remove_owned(stage, "stage")
    assert not stage.exists()


def test_another_datasets_run_folder_is_refused_unless_every_stage_is_forced(
    world: dict[str, Path], tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from core.data.beir import BeirDataset
    from pipelines.runner import check_run_folder

    out = tmp_path / "run-a"
    out.mkdir()
    write_marker(out, "run", dataset="scifact", corpus="0123456789abcdef")
    (out / "report").mkdir()
    (out / "report" / "report.md").write_text("A's results")
    before = snapshot(out)
    assert main(["run", "--dataset", str(world["dataset"]), "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "holds the results of a run on scifact, not on mydata" in err and "--force" in err
    assert snapshot(out) == before
    check_run_folder(out, BeirDataset(world["dataset"]), replace_other=True)  # --force alone: allowed
    write_marker(out, "run", dataset="mydata", corpus="edited")
    check_run_folder(out, BeirDataset(world["dataset"]))  # the same dataset, edited: its stages re-run


def test_a_folder_of_another_kind_is_refused_with_its_kind(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    write_marker(index, "dense-index")
    (index / "index.faiss").write_bytes(b"x")
    with pytest.raises(TandemError, match="is a dense index, not a training output"):
        check_folder_output(index, "training")
    assert (index / MARKER).is_file()


def test_folders_written_before_markers_are_still_recognised(tmp_path: Path) -> None:
    legacy = tmp_path / "bm25"
    legacy.mkdir()
    (legacy / "tandem-bm25.json").write_text("{}")
    (legacy / "_0.cfs").write_bytes(b"lucene")
    assert check_folder_output(legacy, "bm25-index") == {"kind": "bm25-index", "legacy": True}
    trained = tmp_path / "model"
    (trained / "checkpoint-10").mkdir(parents=True)
    (trained / "checkpoint-10" / "training_state.pt").write_bytes(b"x")
    assert read_marker(trained)["kind"] == "training"


def test_file_outputs_replace_their_own_kind_but_not_an_input(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fused.trec"
    argv = ["fuse", str(world["run"]), str(world["other"]), "--out", str(out)]
    assert main(argv) == 0 and main(argv) == 0  # an earlier run file of its own is replaced
    before = world["run"].read_bytes()
    assert main([*argv[:-1], str(world["run"])]) == 2  # the fused run would overwrite one of its inputs
    assert world["run"].read_bytes() == before
    evaluate = ["evaluate", "--dataset", str(world["dataset"]), "--run", str(world["run"])]
    assert main([*evaluate, "--per-query", str(world["run"])]) == 2
    assert world["run"].read_bytes() == before
    table = tmp_path / "per-query.tsv"
    assert main([*evaluate, "--per-query", str(table)]) == 0 and main([*evaluate, "--per-query", str(table)]) == 0
