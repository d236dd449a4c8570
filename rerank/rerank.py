"""Rerank the top of a first-stage run with a cross-encoder.

Pairs from all queries are scored together (length-sorted batches); hits below `depth` keep their
first-stage order beneath the reranked ones. Optional score interpolation mixes the min-max normalised
cross-encoder and first-stage scores per query; it is reported as its own system, never as the plain
reranker."""

from __future__ import annotations

import numpy as np

from rerank.model import CrossEncoder
from retrieval.beir import Corpus
from retrieval.errors import TandemError
from retrieval.runs import Run


def _minmax(values: np.ndarray) -> np.ndarray:
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def rerank_run(
    run: Run,
    queries: dict[str, str],
    corpus: Corpus,
    model: CrossEncoder,
    depth: int = 100,
    batch_size: int = 64,
    interpolation: float | None = None,
    show_progress: bool = True,
) -> Run:
    """Rescore each query's top `depth` hits. `interpolation=a` gives a*CE + (1-a)*first stage
    (both min-max normalised per query)."""
    missing = [qid for qid in run if qid not in queries]
    if missing:
        raise TandemError(f"{len(missing)} run queries are not in the dataset's queries (e.g. '{missing[0]}')")
    pair_queries, pair_passages, owners = [], [], []
    for query_id, hits in run.items():
        for doc_id, _ in hits[:depth]:
            if doc_id not in corpus:
                raise TandemError(f"run hit '{doc_id}' for query '{query_id}' is not in the corpus")
            pair_queries.append(queries[query_id])
            pair_passages.append(corpus.passage(doc_id))
            owners.append(query_id)
    scores = model.score(pair_queries, pair_passages, batch_size=batch_size, show_progress=show_progress)
    reranked: Run = {}
    offset = 0
    for query_id, hits in run.items():
        top = hits[:depth]
        ce = scores[offset : offset + len(top)].astype(np.float64)
        offset += len(top)
        if interpolation is not None:
            first = np.array([score for _, score in top], dtype=np.float64)
            ce = interpolation * _minmax(ce) + (1 - interpolation) * _minmax(first)
        new_hits = [(doc_id, float(s)) for (doc_id, _), s in zip(top, ce, strict=True)]
        floor = float(ce.min()) if len(ce) else 0.0
        new_hits += [(doc_id, floor - 1.0 - i) for i, (doc_id, _) in enumerate(hits[depth:])]
        reranked[query_id] = sorted(new_hits, key=lambda hit: -hit[1])
    return reranked
