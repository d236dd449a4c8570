"""Rerank the top of a first-stage run with a cross-encoder.

Pairs from all queries are scored together (length-sorted batches); hits below `depth` keep their
first-stage order beneath the reranked ones. (Mixing the reranker's scores with the first stage's is
fusion: `pipelines.evaluation.fusion.interpolate_reranked`.)"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.data.beir import Corpus
from core.data.runs import Run
from core.errors import TandemError
from core.precision import bulk_precision
from rerank.model import CrossEncoder


def rerank_pairs(run: Run, queries: dict[str, str], corpus: Corpus, depth: int) -> tuple[list[str], list[str]]:
    """(query texts, passage texts) of each query's top `depth` hits, in run order."""
    check_run(run, queries, corpus, depth)
    pairs = [(query_id, doc_id) for query_id, hits in run.items() for doc_id, _ in hits[:depth]]
    return [queries[q] for q, _ in pairs], [corpus.passage(d) for _, d in pairs]


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
    return rerank_runs({"run": run}, queries, corpus, model, depth, batch_size, show_progress, precision)["run"]


def rerank_runs(
    runs: dict[str, Run],
    queries: dict[str, str],
    corpus: Corpus,
    model: CrossEncoder,
    depth: int = 100,
    batch_size: int = 64,
    show_progress: bool = True,
    precision: str = "auto",
) -> dict[str, Run]:
    """`rerank_run` of several runs at once, each (query, passage) pair scored once however many runs
    hold it in their top `depth` (a BM25 run and a hybrid that contains it share most of their pairs)."""
    for run in runs.values():
        check_run(run, queries, corpus, depth)
    wanted = top_pairs(runs.values(), depth)
    precision = bulk_precision(precision, model.device, len(wanted))
    scores = model.score(
        [queries[q] for q, _ in wanted], [corpus.passage(d) for _, d in wanted], batch_size=batch_size,
        precision=precision, show_progress=show_progress,
    ).astype(np.float64)  # fmt: skip
    return {name: _reordered(run, depth, lambda q, d: float(scores[wanted[q, d]])) for name, run in runs.items()}


def top_pairs(runs: Iterable[Run], depth: int) -> dict[tuple[str, str], int]:
    """Each distinct (query id, passage id) in the runs' top `depth`, numbered in first-seen order: the
    pairs `rerank_runs` scores, once each."""
    pairs: dict[tuple[str, str], int] = {}
    for run in runs:
        for query_id, hits in run.items():
            for doc_id, _ in hits[:depth]:
                pairs.setdefault((query_id, doc_id), len(pairs))
    return pairs


def reranked_at_depth(first: Run, scored: Run, depth: int) -> Run:
    """`first` reranked at `depth` with the scores of `scored`, a reranking of `first` at least that deep:
    what `rerank_run` at `depth` would return for the same scores, without scoring again."""
    scores = {query_id: dict(hits) for query_id, hits in scored.items()}
    return _reordered(first, depth, lambda query_id, doc_id: scores[query_id][doc_id])


def _reordered(run: Run, depth: int, score) -> Run:
    """Each query's top `depth` by `score(query, passage)`; the hits below keep their order beneath."""
    reranked: Run = {}
    for query_id, hits in run.items():
        top = [(doc_id, score(query_id, doc_id)) for doc_id, _ in hits[:depth]]
        floor = min((s for _, s in top), default=0.0)
        below = [(doc_id, floor - 1.0 - i) for i, (doc_id, _) in enumerate(hits[depth:])]
        reranked[query_id] = sorted(top + below, key=lambda hit: -hit[1])
    return reranked


def check_run(run: Run, queries: dict[str, str], corpus: Corpus, depth: int) -> None:
    """Every query of `run` is known and every hit in its top `depth` is in the corpus."""
    missing = [qid for qid in run if qid not in queries]
    if missing:
        raise TandemError(f"{len(missing)} run queries are not in the dataset's queries (e.g. '{missing[0]}')")
    for query_id, hits in run.items():
        for doc_id, _ in hits[:depth]:
            if doc_id not in corpus:
                raise TandemError(f"run hit '{doc_id}' for query '{query_id}' is not in the corpus")
