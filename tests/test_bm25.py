"""BM25 through Pyserini: the tiny set end to end through the CLI, and SciFact against the published figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.beir import BeirDataset
from core.data.runs import read_run
from pipelines.cli import main
from pipelines.evaluation.metrics import evaluate
from retrieval import bm25
from tests.conftest import real_dataset


def test_cli_index_search_evaluate_tiny(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    index, run = tmp_path / "idx", tmp_path / "run.trec"
    assert main(["bm25", "index", "--dataset", str(tiny_dir), "--out", str(index)]) == 0
    assert (index / "config.json").is_file() and not list(tmp_path.glob(".idx*"))
    assert main(["bm25", "index", "--dataset", str(tiny_dir), "--out", str(index)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (
        main(["bm25", "search", "--index", str(index), "--dataset", str(tiny_dir), "--out", str(run), "--k", "5"]) == 0
    )
    hits = read_run(run)
    assert set(hits) == {"q2", "q5", "q6"} and all(1 <= len(h) <= 5 for h in hits.values())
    assert hits["q5"][0][0] == "d8" and hits["q6"][0][0] == "d4"
    assert main(["evaluate", "--run", str(run), "--dataset", str(tiny_dir), "--json"]) == 0
    assert '"nDCG@10"' in capsys.readouterr().out


def test_cli_reports_bad_input_without_traceback(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.trec"
    bad.write_text("q2 Q0 d2 1 1.0\n")
    assert main(["evaluate", "--run", str(bad), "--dataset", str(tiny_dir)]) == 2
    assert "bad.trec:1: expected 6 columns" in capsys.readouterr().err


def test_search_refuses_index_of_another_corpus(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    index = tmp_path / "idx"
    bm25.build_index(tiny_dir / "corpus.jsonl", index)
    scifact = real_dataset("scifact")
    assert main(["bm25", "search", "--index", str(index), "--dataset", str(scifact), "--out", str(tmp_path / "r")]) == 2
    assert "corpus fingerprints differ" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.parametrize("fields, expected", [("flat", 0.679), ("multifield", 0.665)])
def test_scifact_matches_pyserini_regressions(fields: str, expected: float, tmp_path: Path) -> None:
    dataset = BeirDataset(real_dataset("scifact"))
    bm25.build_index(dataset.corpus_path, tmp_path / "idx", fields=fields)
    run = bm25.search(tmp_path / "idx", dataset.split_queries("test"), k=1000)
    result = evaluate(run, dataset.qrels("test"))
    assert result.num_queries == 300
    assert result.aggregate["nDCG@10"] == pytest.approx(expected, abs=0.005)
    assert result.aggregate["Recall@100"] > 0.89


def test_a_query_of_thousands_of_words_is_searched(tiny_dir: Path, tmp_path: Path) -> None:
    """Lucene refuses more than 1,024 clauses by default; a whole document as the query must still work."""
    index = tmp_path / "idx"
    bm25.build_index(tiny_dir / "corpus.jsonl", index)
    words = " ".join(f"aspirin{i} heart{i}" for i in range(1500)) + " aspirin heart attack"
    run = bm25.search(index, {"q": words}, k=3)
    assert run["q"] and run["q"][0][0] == "d1"
