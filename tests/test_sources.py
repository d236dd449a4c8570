"""`--dataset` resolves to a path, $TANDEM_DATA_DIR/NAME or the cache; offline, a missing name is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.sources import resolve_dataset
from core.errors import TandemError


def test_path_and_data_dir(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_dataset(str(tiny_dir)) == tiny_dir
    monkeypatch.setenv("TANDEM_DATA_DIR", str(tiny_dir.parent))
    assert resolve_dataset("tiny") == tiny_dir


def test_offline_missing_dataset_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TANDEM_DATA_DIR", str(tmp_path))
    with pytest.raises(TandemError, match=r"dataset 'nfcorpus' is not available locally.*TANDEM_DATA_DIR"):
        resolve_dataset("nfcorpus")
    assert not (tmp_path / "nfcorpus").exists()


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(TandemError, match="does not exist"):
        resolve_dataset(str(tmp_path / "nope" / "deeper"))


def test_scifact_ships_with_the_checkout_and_is_found_without_a_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.data.sources import SHIPPED, resolve_dataset

    monkeypatch.delenv("TANDEM_DATA_DIR", raising=False)
    assert resolve_dataset("scifact") == SHIPPED / "scifact"
    assert (SHIPPED / "scifact" / "qrels" / "test.tsv").is_file()


def _tiny_tables(tiny_dir: Path, out: Path, qrels_as: str) -> None:
    """data/tiny as Hugging Face `datasets` tables (corpus parquet, queries gzipped JSON lines)."""
    import gzip
    import json

    import pandas as pd

    out.mkdir(parents=True)
    corpus = [json.loads(line) for line in (tiny_dir / "corpus.jsonl").read_text().splitlines()]
    pd.DataFrame(corpus).to_parquet(out / "corpus.parquet")
    with gzip.open(out / "queries.jsonl.gz", "wt") as handle:
        handle.write((tiny_dir / "queries.jsonl").read_text())
    (out / "qrels").mkdir()
    for split in ("train", "test"):
        rows = [line.split("\t") for line in (tiny_dir / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]]
        if qrels_as == "parquet":
            frame = pd.DataFrame([(q, d, int(s)) for q, d, s in rows], columns=["query-id", "corpus-id", "score"])
            frame.to_parquet(out / "qrels" / f"{split}.parquet")
        else:  # TREC qrels, space-separated
            (out / "qrels" / f"{split}.txt").write_text("".join(f"{q} 0 {d} {s.strip()}\n" for q, d, s in rows))


@pytest.mark.parametrize("shape", ["datasets-tables", "trec-topics"])
def test_other_collection_shapes_run_end_to_end(
    shape: str, tiny_dir: Path, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection of Hugging Face `datasets` tables, and one with TREC topics and TREC qrels, run through
    `tandem run --quick` to a report (converted once into the cache as BEIR folders)."""
    import json

    import yaml

    from core.data.sources import open_dataset
    from pipelines.cli import main

    source = tmp_path / "collection"
    _tiny_tables(tiny_dir, source, "parquet" if shape == "datasets-tables" else "trec")
    if shape == "trec-topics":
        (source / "queries.jsonl.gz").unlink()
        queries = [json.loads(line) for line in (tiny_dir / "queries.jsonl").read_text().splitlines()]
        topics = "".join(f"<top>\n<num> Number: {q['_id']}\n<title> {q['text']}\n<desc> Description:\nx\n</top>\n\n"
                         for q in queries)  # fmt: skip
        (source / "topics.txt").write_text(topics)
    dataset = open_dataset(source)
    assert dataset.root != source and dataset.source == source
    expected = [json.loads(line) for line in (tiny_dir / "queries.jsonl").read_text().splitlines()]
    assert dataset.queries == {query["_id"]: query["text"] for query in expected}
    assert dataset.qrels("test") == open_dataset(tiny_dir).qrels("test")
    assert open_dataset(source).root == dataset.root  # converted once
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"split": {"train": "test", "test": "test"}, "dense": {"model": str(tiny_bert)},
                                      "mining": {"title_queries_per_query": 1}, "reranker": {"model": str(tiny_bert)}}))  # fmt: skip
    out = tmp_path / "run"
    assert main(["run", "--dataset", str(source), "--out", str(out), "--config", str(config), "--quick"]) == 0
    assert (out / "report" / "report.md").is_file()
    assert (
        main(["index", "build", "--dataset", str(source), "--out", str(source / "idx")]) == 2
    )  # the source is protected
