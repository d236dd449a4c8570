"""The data layer reads BEIR folders and names the file, line and problem for every bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from core.data.beir import BeirDataset, load_corpus, load_qrels, load_queries
from core.errors import DataFormatError


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_tiny_dataset_loads(tiny_dir: Path) -> None:
    dataset = BeirDataset(tiny_dir)
    assert len(dataset.corpus) == 12
    assert (
        dataset.corpus.passage("d1")
        == "Aspirin and heart attacks Daily low-dose aspirin reduces the risk of a first heart attack in adults over fifty."
    )
    assert dataset.corpus.passage("d11").startswith("Calcium")  # empty title: no leading space
    assert dataset.qrels("test") == {
        "q2": {"d2": 1, "d11": 2},
        "q5": {"d8": 1},
        "q6": {"d4": 1},
    }  # CRLF + header handled
    assert list(dataset.split_queries("test")) == ["q2", "q5", "q6"]
    assert dataset.splits() == ["test", "train"]


def test_malformed_json_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.jsonl", '{"_id": "a", "text": "x"}\n{"_id": "b", "text": "y"\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:2: malformed JSON"):
        load_corpus(path)


@pytest.mark.parametrize("record, field", [({"text": "x"}, "_id"), ({"_id": "a", "title": "t"}, "text")])
def test_missing_required_field(tmp_path: Path, record: dict, field: str) -> None:
    path = write(tmp_path / "corpus.jsonl", '{"_id": "ok", "text": "fine"}\n' + json.dumps(record) + "\n")
    with pytest.raises(DataFormatError, match=rf"corpus.jsonl:2: missing required field '{field}'"):
        load_corpus(path)


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path / "queries.jsonl", '{"_id": "q", "text": "a"}\n{"_id": "r", "text": "b"}\n{"_id": "q", "text": "c"}\n'
    )
    with pytest.raises(DataFormatError, match=r"queries.jsonl:3: duplicate _id 'q' \(first seen on line 1\)"):
        load_queries(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"corpus.jsonl: file is empty"):
        load_corpus(write(tmp_path / "corpus.jsonl", b""))
    with pytest.raises(DataFormatError, match=r"no records"):
        load_corpus(write(tmp_path / "corpus.jsonl", "\n\n"))


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.jsonl", b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 26\)"):
        load_corpus(path)


def test_wrong_types(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r":1: expected a JSON object, got list"):
        load_corpus(write(tmp_path / "corpus.jsonl", '["a"]\n'))
    with pytest.raises(DataFormatError, match=r":1: 'text' must be a string"):
        load_corpus(write(tmp_path / "corpus.jsonl", '{"_id": "a", "text": 3}\n'))


def test_integer_ids_become_strings(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path / "corpus.jsonl", '{"_id": 7, "text": "x"}\n'))
    assert corpus.ids == ["7"]


def test_qrels_unknown_ids_warn_and_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\nq1\td9\t1\nq1\td2\t0\n")
    with caplog.at_level(logging.WARNING):
        qrels = load_qrels(path, {"q1"}, {"d1", "d2"})
    assert qrels == {"q1": {"d1": 1, "d2": 0}}
    assert "skipped 2 of 4 qrels rows (1 unknown query ids, 1 unknown corpus ids)" in caplog.text
    assert "line 3: unknown query id 'q9'" in caplog.text


def test_qrels_unknown_ids_strict(tmp_path: Path) -> None:
    path = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:3: unknown corpus id 'd9'"):
        load_qrels(path, {"q1"}, {"d1"}, strict=True)


def test_qrels_bad_rows(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"test.tsv:2: expected 3 tab-separated columns"):
        load_qrels(write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1 d1\n"))
    assert load_qrels(write(tmp_path / "test.tsv", "q1 d1 1\n")) == {"q1": {"d1": 1}}  # whitespace-separated
    with pytest.raises(DataFormatError, match=r"test.tsv:3: score 'high' is not a whole number"):
        load_qrels(write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\thigh\n"))
    with pytest.raises(DataFormatError, match=r"header but no rows"):
        load_qrels(write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\r\n"))


def test_qrels_without_header(tmp_path: Path) -> None:
    assert load_qrels(write(tmp_path / "t.tsv", "q1\td1\t1\r\n")) == {"q1": {"d1": 1}}


def test_dataset_validates_qrels_against_corpus(tmp_path: Path, tiny_dir: Path) -> None:
    root = tmp_path / "broken"
    shutil.copytree(tiny_dir, root)
    with open(root / "qrels" / "test.tsv", "a") as out:
        out.write("q2\tnot-a-doc\t1\r\n")
    assert "not-a-doc" not in BeirDataset(root).qrels("test")["q2"]
    with pytest.raises(DataFormatError, match=r"test.tsv:\d+: unknown corpus id 'not-a-doc'"):
        BeirDataset(root, strict=True).qrels("test")


def test_dataset_folder_errors(tmp_path: Path, tiny_dir: Path) -> None:
    from core.errors import TandemError

    with pytest.raises(TandemError, match="not a BEIR dataset folder"):
        BeirDataset(tmp_path)
    with pytest.raises(TandemError, match=r"no qrels for split 'dev' \(available: test, train\)"):
        BeirDataset(tiny_dir).qrels("dev")
