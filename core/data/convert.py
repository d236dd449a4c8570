"""Collections in other shapes than a BEIR folder, each written once into the cache as a BEIR folder that
every command then reads as usual (validated there like any other):

- a folder of Hugging Face `datasets` files in BEIR's shape, as the hub's `BeIR/<name>` repositories hold
  them: `corpus.*` and `queries.*` in parquet, JSON lines (optionally gzipped) or CSV, with BEIR's
  fields (`_id`, `title`, `text`), and qrels in `qrels/<split>.*` (`query-id`, `corpus-id`, `score`);
- a folder whose queries are a TREC topics file (`topics*`: `<top> <num> ... <title> ...`), with TREC
  qrels (`qid 0 docid grade`, any whitespace) in `qrels/<split>.*`, and the corpus as above;
- `irds:<id>`: a collection of the optional `ir_datasets` package.

A converted folder is reused while its sources are unchanged (a fingerprint of their bytes names it)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.atomic import atomic_dir
from core.data.beir import file_fingerprint
from core.errors import TandemError

TABLE_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv")
"""What `datasets` reads for a corpus, queries or qrels table."""


def table_file(folder: Path, stem: str) -> Path | None:
    """`folder/stem.<a table suffix>` if there is one."""
    for suffix in TABLE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def topics_file(folder: Path) -> Path | None:
    """A TREC topics file in `folder` (`topics`, `topics.txt`, `topics.robust04.txt`, ...)."""
    found = sorted(p for p in folder.glob("topics*") if p.is_file())
    return found[0] if found else None


def needs_conversion(folder: Path) -> bool:
    """Whether `folder` holds a collection tandem reads only after converting it."""
    if (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file():
        return False
    return table_file(folder, "corpus") is not None and (
        table_file(folder, "queries") is not None or topics_file(folder) is not None
    )


def _rows(path: Path) -> Iterator[dict]:
    """The rows of a table file, read with Hugging Face `datasets` (parquet, JSON lines, CSV)."""
    from datasets import load_dataset

    kind = {".parquet": "parquet", ".csv": "csv"}.get(path.suffix, "json")
    try:
        table = load_dataset(kind, data_files=str(path), split="train")
    except Exception as err:  # noqa: BLE001 (datasets and pyarrow raise many kinds for a bad file)
        raise TandemError(f"{path}: cannot read it as a {kind} table ({type(err).__name__}: {err})") from None
    yield from table


def _field(row: dict, names: tuple[str, ...], path: Path, index: int) -> str:
    for name in names:
        if name in row and row[name] is not None:
            return str(row[name])
    raise TandemError(f"{path}: row {index + 1} has none of the fields {', '.join(names)}")


def read_trec_topics(path: Path) -> dict[str, str]:
    """Query id -> title of each `<top>` in a TREC topics file (the short query TREC runs use)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    topics = {}
    for block in re.findall(r"<top>(.*?)</top>", text, re.S | re.I):
        number = re.search(r"<num>\s*(?:Number:)?\s*(\S+)", block, re.I)
        title = re.search(r"<title>\s*(?:Topic:)?\s*(.*?)\s*(?=<|\Z)", block, re.S | re.I)
        if number and title and title.group(1).strip():
            topics[number.group(1)] = " ".join(title.group(1).split())
    if not topics:
        raise TandemError(f"{path}: no <top> ... <num> ... <title> ... </top> topic found")
    return topics


def fingerprint(paths: Iterable[Path]) -> str:
    """One short hash of the files' names and contents: what names a converted folder in the cache."""
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(file_fingerprint(path).encode())
    return digest.hexdigest()


def convert_folder(folder: Path, cache: Path) -> Path:
    """The BEIR folder for a collection in another shape (see the module), converted once into `cache`."""
    corpus = table_file(folder, "corpus")
    queries, topics = table_file(folder, "queries"), topics_file(folder)
    qrels = sorted(p for p in (folder / "qrels").glob("*") if p.is_file()) if (folder / "qrels").is_dir() else []
    if corpus is None or (queries is None and topics is None):
        raise TandemError(f"{folder}: no corpus.jsonl and queries.jsonl, nor tables or topics tandem can convert")
    sources = [p for p in (corpus, queries or topics, *qrels)]
    target = cache / "converted" / f"{folder.name}-{fingerprint(sources)}"
    if (target / "corpus.jsonl").is_file():
        return target
    with atomic_dir(target, "dataset-cache") as staging:
        with open(staging / "corpus.jsonl", "w", encoding="utf-8") as out:
            for i, row in enumerate(_rows(corpus)):
                doc = {"_id": _field(row, ("_id", "id", "docid", "doc_id"), corpus, i),
                       "title": str(row.get("title") or ""), "text": _field(row, ("text", "contents", "body"), corpus, i)}  # fmt: skip
                out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        if queries is not None:
            table = {
                _field(row, ("_id", "id", "qid", "query_id"), queries, i): _field(row, ("text", "query", "title"), queries, i)
                for i, row in enumerate(_rows(queries))
            }  # fmt: skip
        else:
            table = read_trec_topics(topics)
        with open(staging / "queries.jsonl", "w", encoding="utf-8") as out:
            for query_id, text in table.items():
                out.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
        (staging / "qrels").mkdir()
        for path in qrels:
            split = path.name.split(".")[0]
            with open(staging / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as out:
                out.write("query-id\tcorpus-id\tscore\n")
                for row in _qrels_rows(path):
                    out.write("\t".join(row) + "\n")
    return target


def _qrels_rows(path: Path) -> Iterator[tuple[str, str, str]]:
    """(query id, passage id, grade) of a qrels file: a table with BEIR's columns, or TREC/BEIR text."""
    if path.suffix in (".parquet", ".csv") or path.name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        for i, row in enumerate(_rows(path)):
            yield (_field(row, ("query-id", "query_id", "qid"), path, i), _field(row, ("corpus-id", "corpus_id", "docid"), path, i),
                   _field(row, ("score", "relevance", "rel"), path, i))  # fmt: skip
        return
    from core.data.beir import load_qrels  # validates TREC and BEIR text qrels, with file:line errors

    for query_id, judged in load_qrels(path).items():
        for doc_id, grade in judged.items():
            yield query_id, doc_id, str(grade)


def from_ir_datasets(dataset_id: str, cache: Path) -> Path:
    """The BEIR folder of an `ir_datasets` collection (`irds:<id>`), converted once into `cache`."""
    try:
        import ir_datasets
    except ImportError:
        raise TandemError(
            f"irds:{dataset_id} needs the optional package ir_datasets (pip install ir_datasets), "
            "which downloads the collection on first use"
        ) from None
    target = cache / "converted" / ("irds-" + re.sub(r"[^A-Za-z0-9_.-]", "_", dataset_id))
    if (target / "corpus.jsonl").is_file():
        return target
    collection = ir_datasets.load(dataset_id)
    with atomic_dir(target, "dataset-cache") as staging:
        with open(staging / "corpus.jsonl", "w", encoding="utf-8") as out:
            for doc in collection.docs_iter():
                text = getattr(doc, "text", None) or getattr(doc, "body", "") or ""
                out.write(
                    json.dumps({"_id": doc.doc_id, "title": getattr(doc, "title", "") or "", "text": text}) + "\n"
                )
        with open(staging / "queries.jsonl", "w", encoding="utf-8") as out:
            for query in collection.queries_iter():
                text = getattr(query, "text", None) or getattr(query, "title", "") or ""
                out.write(json.dumps({"_id": query.query_id, "text": text}) + "\n")
        (staging / "qrels").mkdir()
        with open(staging / "qrels" / "test.tsv", "w", encoding="utf-8") as out:
            out.write("query-id\tcorpus-id\tscore\n")
            for qrel in collection.qrels_iter():
                out.write(f"{qrel.query_id}\t{qrel.doc_id}\t{qrel.relevance}\n")
    return target
