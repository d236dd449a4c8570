"""Load and validate BEIR-layout datasets: corpus.jsonl, queries.jsonl and qrels/<split>.tsv.

Every malformed line is reported with its file and line number. Qrels rows that name unknown
query or passage ids are counted and skipped with a warning, or are an error with `strict=True`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from core.errors import DataFormatError, TandemError
from core.progress import progress_bar

log = logging.getLogger(__name__)

HEADER_SCORE_NAMES = {"score", "relevance", "rel", "label", "grade"}
"""A first qrels line is a header only when its third column names the score, e.g. BEIR's `score`."""

Qrels = dict[str, dict[str, int]]
"""query id -> passage id -> graded relevance."""


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, decoded line without its line ending); blank lines are skipped, and a UTF-8
    byte-order mark at the start of the file is dropped (it would otherwise become part of the first id).

    Raises DataFormatError for a missing or empty file and for bytes that are not UTF-8."""
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    if path.stat().st_size == 0:
        raise DataFormatError(path, None, "file is empty")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    path, number, f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
                ) from None
            line = line.rstrip("\r\n")
            if number == 1:
                line = line.removeprefix("\ufeff")
            if line.strip():
                yield number, line


def iter_jsonl_records(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) from a JSONL file, checking that each line is an object with
    the `required` keys and a string or integer `_id`."""
    seen_any = False
    for number, line in iter_text_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, number, f"malformed JSON: {err.msg} (column {err.colno})") from None
        if not isinstance(record, dict):
            raise DataFormatError(path, number, f"expected a JSON object, got {type(record).__name__}")
        for key in required:
            if key not in record:
                raise DataFormatError(path, number, f"missing required field '{key}'")
        if "_id" in record:
            if not isinstance(record["_id"], (str, int)) or isinstance(record["_id"], bool):
                raise DataFormatError(path, number, "'_id' must be a string")
            record["_id"] = str(record["_id"])
            if not record["_id"]:
                raise DataFormatError(path, number, "'_id' is empty")
            if any(c.isspace() for c in record["_id"]):
                raise DataFormatError(
                    path, number, f"'_id' {record['_id']!r} contains whitespace (TREC runs cannot hold it)"
                )
        for key in ("text", "title"):
            if key in record and record[key] is not None and not isinstance(record[key], str):
                raise DataFormatError(path, number, f"'{key}' must be a string")
        seen_any = True
        yield number, record
    if not seen_any:
        raise DataFormatError(path, None, "file has no records (only blank lines)")


@dataclass
class Corpus:
    """Passages in file order, held as parallel lists (compact for corpora of a few million)."""

    ids: list[str]
    titles: list[str]
    texts: list[str]
    position: dict[str, int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self.position

    def passage(self, doc_id: str, title_separator: str = " ") -> str:
        """Title and text joined, the form both encoders and rerankers read."""
        i = self.position[doc_id]
        return join_title(self.titles[i], self.texts[i], title_separator)


def join_title(title: str, text: str, separator: str = " ") -> str:
    return f"{title}{separator}{text}" if title else text


def load_corpus(path: str | Path) -> Corpus:
    """Read corpus.jsonl (`_id`, `text`, optional `title`); duplicate ids are an error."""
    path = Path(path)
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    position: dict[str, int] = {}
    first_line: dict[str, int] = {}
    size = path.stat().st_size if path.is_file() else 0
    records = iter_jsonl_records(path, required=("_id", "text"))
    for number, record in progress_bar(
        records, desc=f"reading {path.name}", unit=" docs", disable=None if size > 50e6 else True
    ):
        doc_id = record["_id"]
        if doc_id in position:
            raise DataFormatError(path, number, f"duplicate _id '{doc_id}' (first seen on line {first_line[doc_id]})")
        position[doc_id] = len(ids)
        first_line[doc_id] = number
        ids.append(doc_id)
        titles.append(record.get("title") or "")
        texts.append(record["text"] or "")
    return Corpus(ids=ids, titles=titles, texts=texts, position=position)


def load_queries(path: str | Path) -> dict[str, str]:
    """Read queries.jsonl (`_id`, `text`) into an ordered id -> text mapping."""
    path = Path(path)
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, record in iter_jsonl_records(path, required=("_id", "text")):
        query_id = record["_id"]
        if query_id in queries:
            raise DataFormatError(
                path, number, f"duplicate _id '{query_id}' (first seen on line {first_line[query_id]})"
            )
        if not (record["text"] or "").strip():
            raise DataFormatError(path, number, f"query '{query_id}' has empty text")
        queries[query_id] = record["text"]
        first_line[query_id] = number
    return queries


@dataclass
class QrelsProblems:
    """Counts of qrels rows skipped because they name ids that are not in the dataset."""

    unknown_queries: int = 0
    unknown_docs: int = 0
    first_examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.unknown_queries + self.unknown_docs


def load_qrels(
    path: str | Path,
    query_ids: set[str] | dict | None = None,
    doc_ids: set[str] | dict | None = None,
    strict: bool = False,
) -> Qrels:
    """Read a BEIR qrels TSV (`query-id corpus-id score`, header optional, CRLF tolerated) or TREC qrels
    (`query-id iteration corpus-id score`, tab- or space-separated).

    Rows naming a query or passage that is not in `query_ids` / `doc_ids` are skipped and counted
    (one warning for the file), or raise DataFormatError when `strict`. A (query, passage) pair judged
    twice with different grades is an error naming both lines (which grade is meant cannot be guessed)."""
    path = Path(path)
    qrels: Qrels = {}
    judged_on: dict[tuple[str, str], int] = {}
    problems = QrelsProblems()
    rows = 0
    for index, (number, line) in enumerate(iter_text_lines(path)):
        columns = line.split("\t") if "\t" in line else line.split()
        if len(columns) == 4:  # TREC qrels: qid iter docid rel
            columns = [columns[0], columns[2], columns[3]]
        if len(columns) != 3:
            raise DataFormatError(
                path, number, f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(columns)}"
            )
        query_id, doc_id, score = (c.strip() for c in columns)
        if index == 0 and score.lower() in HEADER_SCORE_NAMES:  # BEIR's header line
            continue
        relevance = _grade(score)
        if relevance is None:
            raise DataFormatError(
                path, number, f"score '{score}' is not a whole number (qrels grades are 0, 1, 2, ...)"
            )
        rows += 1
        unknown = None
        if query_ids is not None and query_id not in query_ids:
            problems.unknown_queries += 1
            unknown = f"line {number}: unknown query id '{query_id}'"
        elif doc_ids is not None and doc_id not in doc_ids:
            problems.unknown_docs += 1
            unknown = f"line {number}: unknown corpus id '{doc_id}'"
        if unknown:
            if strict:
                raise DataFormatError(path, number, unknown.split(": ", 1)[1])
            if len(problems.first_examples) < 3:
                problems.first_examples.append(unknown)
            continue
        earlier = qrels.get(query_id, {}).get(doc_id)
        if earlier is not None and earlier != relevance:
            first = judged_on[(query_id, doc_id)]
            raise DataFormatError(
                path, number, f"'{query_id}' / '{doc_id}' is judged {relevance} here and {earlier} on line {first}"
            )
        judged_on.setdefault((query_id, doc_id), number)
        qrels.setdefault(query_id, {})[doc_id] = relevance
    if rows == 0:
        raise DataFormatError(path, None, "qrels file has a header but no rows")
    if problems.total:
        log.warning(
            "%s: skipped %d of %d qrels rows (%d unknown query ids, %d unknown corpus ids), e.g. %s; "
            "use --strict to make this an error",
            path,
            problems.total,
            rows,
            problems.unknown_queries,
            problems.unknown_docs,
            "; ".join(problems.first_examples),
        )
    return qrels


def _grade(score: str) -> int | None:
    """'2' or '2.0' -> 2; '1.7', 'x' -> None (a fractional grade is not silently rounded)."""
    try:
        value = float(score)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def file_fingerprint(path: str | Path) -> str:
    """A content hash (BLAKE2b, streamed) that ties indexes and embeddings to the exact corpus file."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class BeirDataset:
    """A BEIR-layout folder; the corpus, queries and qrels are read (and validated) on first use."""

    def __init__(self, root: str | Path, strict: bool = False, source: str | Path | None = None) -> None:
        self.root = Path(root)
        self.strict = strict
        # the folder the user named (where a converted collection came from): outputs never go there
        self.source = Path(source) if source is not None else self.root
        if not self.root.is_dir():
            raise TandemError(f"{self.root}: dataset folder not found")
        for required in ("corpus.jsonl", "queries.jsonl"):
            if not (self.root / required).is_file():
                raise TandemError(f"{self.root}: not a BEIR dataset folder (no {required})")

    @property
    def protected(self) -> list[Path]:
        """The folders no output may be written into or around: the dataset and, if converted, its source."""
        return sorted({self.root, self.source})

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    @cached_property
    def corpus(self) -> Corpus:
        return load_corpus(self.corpus_path)

    @cached_property
    def queries(self) -> dict[str, str]:
        return load_queries(self.root / "queries.jsonl")

    @cached_property
    def corpus_fingerprint(self) -> str:
        return file_fingerprint(self.corpus_path)

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "qrels").glob("*.tsv"))

    def qrels(self, split: str) -> Qrels:
        path = self.root / "qrels" / f"{split}.tsv"
        if not path.is_file():
            raise TandemError(f"{path}: no qrels for split '{split}' (available: {', '.join(self.splits()) or 'none'})")
        return self._qrels_cache(split, path)

    def split_queries(self, split: str) -> dict[str, str]:
        """The queries judged in `split`, in queries.jsonl order."""
        judged = self.qrels(split)
        return {qid: text for qid, text in self.queries.items() if qid in judged}

    def _qrels_cache(self, split: str, path: Path) -> Qrels:
        cache = self.__dict__.setdefault("_qrels", {})
        if split not in cache:
            cache[split] = load_qrels(path, self.queries, self.corpus.position, strict=self.strict)
        return cache[split]
