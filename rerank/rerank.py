"""Rerank the top of a first-stage run with a cross-encoder.

Pairs from all queries are scored together (length-sorted batches); hits below `depth` keep their
first-stage order beneath the reranked ones. (Mixing the reranker's scores with the first stage's is
fusion: `pipelines.evaluation.fusion.interpolate_reranked`.)"""

from __future__ import annotations

import numpy as np

from core.data.beir import Corpus
from core.data.runs import Run
from core.errors import TandemError
from core.precision import bulk_precision
from rerank.model import CrossEncoder


def rerank_pairs(run: Run, queries: dict[str, str], corpus: Corpus, depth: int) -> tuple[list[str], list[str]]:
    """(query texts, passage texts) of each query's top `depth` hits, in run order."""
    missing = [qid for qid in run if qid not in queries]
    if missing:
        raise TandemError(f"{len(missing)} run queries are not in the dataset's queries (e.g. '{missing[0]}')")
    pair_queries, pair_passages = [], []
    for query_id, hits in run.items():
        for doc_id, _ in hits[:depth]:
            if doc_id not in corpus:
                raise TandemError(f"run hit '{doc_id}' for query '{query_id}' is not in the corpus")
            pair_queries.append(queries[query_id])
            pair_passages.append(corpus.passage(doc_id))
    return pair_queries, pair_passages


def rerank_run(
    run: Run,
    queries: dict[str, str],
    corpus: Corpus,
    model: CrossEncoder,
    depth: int = 100,
    batch_size: int = 64,
    show_progress: bool = True,
    precision: str = "auto",
) -> Run:
    """Rescore each query's top `depth` hits with the model's raw logits (`auto` precision: int8 for a
    large job on a CPU with the int8 extra, `core.precision.bulk_precision`)."""
    pair_queries, pair_passages = rerank_pairs(run, queries, corpus, depth)
    precision = bulk_precision(precision, model.device, len(pair_queries))
    scores = model.score(
        pair_queries, pair_passages, batch_size=batch_size, precision=precision, show_progress=show_progress
    )
    reranked: Run = {}
    offset = 0
    for query_id, hits in run.items():
        top = hits[:depth]
        ce = scores[offset : offset + len(top)].astype(np.float64)
        offset += len(top)
        new_hits = [(doc_id, float(s)) for (doc_id, _), s in zip(top, ce, strict=True)]
        floor = float(ce.min()) if len(ce) else 0.0
        new_hits += [(doc_id, floor - 1.0 - i) for i, (doc_id, _) in enumerate(hits[depth:])]
        reranked[query_id] = sorted(new_hits, key=lambda hit: -hit[1])
    return reranked
