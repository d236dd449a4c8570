"""Dense retrieval over a built index: a TREC run for queries, or candidates (with a positive scorer)
for the mining job."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.beir import BeirDataset
from core.data.runs import Run
from retrieval.encoder import BiEncoder
from retrieval.index import DenseIndex
from retrieval.mining import Candidates, PositiveScorer


def dense_search(
    index: DenseIndex,
    queries: dict[str, str],
    k: int = 1000,
    batch_size: int = 64,
    encoder: BiEncoder | None = None,
    device: str | None = None,
) -> tuple[Run, np.ndarray]:
    """Top-`k` per query; returns the run and the query embeddings (reused by callers that score more)."""
    encoder = encoder or index.load_encoder(device)
    query_ids = list(queries)
    embeddings = encoder.encode([queries[q] for q in query_ids], "query", batch_size)
    scores, hits = index.search(embeddings, k)
    run = {
        qid: [(doc_id, float(s)) for doc_id, s in zip(row, row_scores, strict=False)]
        for qid, row, row_scores in zip(query_ids, hits, scores, strict=True)
    }
    return run, embeddings


def dense_candidates(
    index_dir: str | Path, dataset: BeirDataset, queries: dict[str, str], depth: int, batch_size: int = 64
) -> tuple[Candidates, PositiveScorer]:
    """Candidates from the dense index, and the exact dense score of any (query, passage) pair."""
    index = DenseIndex(index_dir)
    index.check(corpus_fingerprint=dataset.corpus_fingerprint)
    run, query_embeddings = dense_search(index, queries, depth, batch_size)
    row = {qid: i for i, qid in enumerate(queries)}
    passages = index.embeddings()

    def score(query_id: str, doc_id: str) -> float:
        return float(query_embeddings[row[query_id]] @ passages[index.position[doc_id]])

    return run, score
