"""BM25 with Pyserini: Lucene indexes of a BEIR corpus ("flat" or "multifield") and batched search.

The two index forms follow Pyserini's BEIR regressions: flat puts title and text in one `contents`
field; multifield keeps `title` and `contents` apart and searches both with weight 1.0.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.atomic import atomic_dir
from core.data.beir import Corpus, file_fingerprint, load_corpus
from core.data.runs import Run
from core.errors import TandemError
from core.progress import progress_bar
from retrieval.jvm import anserini_jar, die_with_parent, ensure_jvm, java_environment, java_executable

log = logging.getLogger(__name__)

META_FILE = "tandem-bm25.json"
FIELDS = ("flat", "multifield")
_COLLECTIONS = {"flat": "BeirFlatCollection", "multifield": "BeirMultifieldCollection"}


@dataclass
class Bm25IndexMeta:
    fields: str
    corpus_path: str
    corpus_fingerprint: str
    build_seconds: float
    empty_passages: int = 0
    """passages with nothing to index (Anserini skips them: BM25 never returns them; dense indexes keep them)"""


def empty_passages(corpus: Corpus, fields: str) -> list[str]:
    """The ids of passages Anserini skips as empty: no text in `contents` after trimming, which is title and
    text for the flat index and the text alone for the multifield one (its title is a field apart)."""
    if fields == "multifield":
        return [doc_id for doc_id, text in zip(corpus.ids, corpus.texts, strict=True) if not text.strip()]
    return [
        doc_id
        for doc_id, title, text in zip(corpus.ids, corpus.titles, corpus.texts, strict=True)
        if not title.strip() and not text.strip()
    ]


def build_index(corpus_path: str | Path, out_dir: str | Path, fields: str = "flat", threads: int = 2) -> Bm25IndexMeta:
    """Index a BEIR corpus.jsonl with Anserini; the index appears at `out_dir` only when complete.

    The corpus is validated first with the loader every other command uses (Anserini reports a bad
    line only in its log and carries on), and Anserini's document count must match it less the empty
    passages, which real collections have and Anserini skips: they are named in one warning."""
    if fields not in FIELDS:
        raise TandemError(f"--fields must be one of {', '.join(FIELDS)}, not '{fields}'")
    corpus = load_corpus(corpus_path)  # file:line errors for every malformed or duplicate record
    empty = empty_passages(corpus, fields)
    expected = len(corpus) - len(empty)
    if empty:
        shown = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        log.warning(
            "%d of %d passages in %s are empty (%s); BM25 cannot return them, the dense index keeps them",
            len(empty),
            len(corpus),
            corpus_path,
            shown,
        )
    corpus_path = Path(corpus_path).resolve()
    out_dir = Path(out_dir)
    started = time.perf_counter()
    with atomic_dir(out_dir, "bm25-index") as staging:
        source = staging / "_input"
        source.mkdir()
        os.symlink(corpus_path, source / "corpus.jsonl")  # Beir*Collection reads every file in its input folder
        command = [
            str(java_executable()),
            f"-Duser.home={staging}",
            "-cp",
            str(anserini_jar()),
            "io.anserini.index.IndexCollection",
            "-collection",
            _COLLECTIONS[fields],
            "-input",
            str(source),
            "-index",
            str(staging),
            "-generator",
            "DefaultLuceneDocumentGenerator",
            "-threads",
            str(threads),
            "-storePositions",
            "-storeDocvectors",
            "-storeRaw",
        ]
        if fields == "multifield":
            command += ["-fields", "title"]
        log.info("indexing %s (%s) with Anserini", corpus_path, fields)
        with open(staging / "anserini-index.log", "w") as log_file:
            result = subprocess.run(
                command, stdout=log_file, stderr=subprocess.STDOUT, env=java_environment(), preexec_fn=die_with_parent
            )
        if result.returncode != 0:
            tail = (staging / "anserini-index.log").read_text(errors="replace").splitlines()[-15:]
            raise TandemError(
                f"Anserini indexing of {corpus_path} failed (exit {result.returncode}):\n" + "\n".join(tail)
            )
        indexed = _documents_indexed((staging / "anserini-index.log").read_text(errors="replace"))
        if indexed != expected:
            tail = (staging / "anserini-index.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise TandemError(
                f"Anserini indexed {indexed} of the {expected} non-empty passages in {corpus_path}; the end of its "
                "log: " + " | ".join(line.strip() for line in tail)
            )
        (source / "corpus.jsonl").unlink()
        source.rmdir()
        meta = Bm25IndexMeta(
            fields, str(corpus_path), file_fingerprint(corpus_path), time.perf_counter() - started, len(empty)
        )
        (staging / META_FILE).write_text(json.dumps(asdict(meta), indent=2) + "\n")
    return meta


def _documents_indexed(anserini_log: str) -> int | None:
    found = re.findall(r"Total ([\d,]+) documents indexed", anserini_log)
    return int(found[-1].replace(",", "")) if found else None


def read_index_meta(index_dir: str | Path) -> Bm25IndexMeta:
    path = Path(index_dir) / META_FILE
    if not path.is_file():
        raise TandemError(f"{index_dir}: not a tandem BM25 index (no {META_FILE}); build one with `tandem bm25 index`")
    return Bm25IndexMeta(**json.loads(path.read_text()))


def search(
    index_dir: str | Path,
    queries: dict[str, str],
    k: int = 1000,
    k1: float = 0.9,
    b: float = 0.4,
    threads: int = 2,
    remove_query: bool = True,
    batch_size: int = 256,
) -> Run:
    """BM25 top-`k` for every query, multi-threaded in batches (with a progress bar).

    `remove_query` drops a hit whose id equals the query id, as Pyserini's BEIR runs do."""
    meta = read_index_meta(index_dir)
    ensure_jvm()
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index_dir))
    searcher.set_bm25(k1, b)
    field_weights = {"contents": 1.0, "title": 1.0} if meta.fields == "multifield" else None
    query_ids = list(queries)
    run: Run = {}
    depth = k + 1 if remove_query else k
    with progress_bar(total=len(query_ids), desc="BM25 search", unit=" queries", disable=None) as bar:
        for start in range(0, len(query_ids), batch_size):
            batch = query_ids[start : start + batch_size]
            texts = [queries[qid] for qid in batch]
            try:
                if field_weights:
                    results = searcher.batch_search(texts, batch, k=depth, threads=threads, fields=field_weights)
                else:
                    results = searcher.batch_search(texts, batch, k=depth, threads=threads)
            except Exception as err:  # jnius.JavaException: Lucene's own error, said in one line
                if type(err).__name__ != "JavaException":
                    raise
                message = str(err).strip().splitlines()[0][:300]
                raise TandemError(f"BM25 search in {index_dir} failed in Lucene: {message}") from None
            for query_id in batch:
                hits = [(hit.docid, float(hit.score)) for hit in results.get(query_id, [])]
                if remove_query:
                    hits = [hit for hit in hits if hit[0] != query_id]
                run[query_id] = hits[:k]
            bar.update(len(batch))
    searcher.close()
    return run


class Bm25Scorer:
    """BM25 score of given (query, passage) pairs, for passages a search did not return
    (the mining job needs the positive's score to apply its margin filter)."""

    def __init__(self, index_dir: str | Path, k1: float = 0.9, b: float = 0.4) -> None:
        read_index_meta(index_dir)
        ensure_jvm()
        import jnius
        from pyserini.index.lucene import LuceneIndexReader

        self.reader = LuceneIndexReader(str(index_dir))
        self.similarity = jnius.autoclass("org.apache.lucene.search.similarities.BM25Similarity")(k1, b)

    def score(self, query: str, doc_id: str) -> float:
        return float(self.reader.compute_query_document_score(doc_id, query, similarity=self.similarity))
