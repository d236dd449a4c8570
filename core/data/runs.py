"""TREC run files (`qid Q0 docid rank score tag`): the exchange format between every stage."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import iter_text_lines
from core.errors import DataFormatError

log = logging.getLogger(__name__)

Run = dict[str, list[tuple[str, float]]]
"""query id -> [(passage id, score)], best first."""


def ranked(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Order hits as trec_eval does: score descending, ties broken by passage id descending."""
    return sorted(hits, key=lambda hit: (hit[1], hit[0]), reverse=True)


def write_run(run: Run, path: str | Path, tag: str = "tandem") -> None:
    """Write `run` atomically; hits are re-ranked with trec_eval's tie-breaking so ranks agree with scores."""
    with atomic_file(path) as out:
        for query_id, hits in run.items():
            for rank, (doc_id, score) in enumerate(ranked(hits), start=1):
                out.write(f"{query_id} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def read_run(path: str | Path) -> Run:
    """Read a TREC run; each query's hits come back best first (by score, as trec_eval orders them).
    NaN/infinite scores and a passage listed twice for one query are errors (trec_eval would score either
    silently); ranks that contradict the scores are counted in one warning, since the file's writer meant
    another order than the one evaluated."""
    path = Path(path)
    run: Run = {}
    ranks: dict[str, list[tuple[float, int]]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, line in iter_text_lines(path):
        columns = line.split()
        if len(columns) != 6:
            raise DataFormatError(path, number, f"expected 6 columns 'qid Q0 docid rank score tag', got {len(columns)}")
        query_id, _, doc_id, rank, score, _ = columns
        try:
            value = float(score)
        except ValueError:
            raise DataFormatError(path, number, f"score '{score}' is not a number") from None
        if not math.isfinite(value):
            raise DataFormatError(path, number, f"score '{score}' is not a finite number")
        if (query_id, doc_id) in first_line:
            raise DataFormatError(
                path,
                number,
                f"passage '{doc_id}' appears twice for query '{query_id}' (first on line {first_line[query_id, doc_id]})",
            )
        first_line[query_id, doc_id] = number
        run.setdefault(query_id, []).append((doc_id, value))
        if rank.lstrip("-").isdigit():
            ranks.setdefault(query_id, []).append((value, int(rank)))
    contradicted = [query_id for query_id, pairs in ranks.items() if _ranks_contradict_scores(pairs)]
    if contradicted:
        log.warning(
            "%s: in %d of %d queries (e.g. '%s') a better rank has a lower score; runs are evaluated by score",
            path,
            len(contradicted),
            len(run),
            contradicted[0],
        )
    return {query_id: ranked(hits) for query_id, hits in run.items()}


def _ranks_contradict_scores(pairs: list[tuple[float, int]]) -> bool:
    """Whether, ordered by rank, some hit scores strictly higher than a hit ranked before it."""
    by_rank = [score for score, _ in sorted(pairs, key=lambda pair: pair[1])]
    return any(later > earlier for earlier, later in zip(by_rank, by_rank[1:], strict=False))


def truncate(run: Run, depth: int) -> Run:
    return {query_id: hits[:depth] for query_id, hits in run.items()}
