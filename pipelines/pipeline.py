"""Retrieve-then-rerank from Python:

pipeline = Pipeline(Bm25Retriever("runs/bm25-index"), CrossEncoderReranker("runs/ce", corpus), depth=100)
run = pipeline.search({"q1": "does aspirin prevent heart attacks?"}, k=100)
pipeline.timings   # seconds per query of each stage
"""

from __future__ import annotations

import time

from core.data.runs import Run
from pipelines.evaluation.fusion import interpolate, rrf
from rerank.reranker import CrossEncoderReranker, Reranker
from retrieval.retrievers import Bm25Retriever, DenseRetriever, Retriever

__all__ = [
    "Bm25Retriever",
    "CrossEncoderReranker",
    "DenseRetriever",
    "HybridRetriever",
    "Pipeline",
    "Reranker",
    "Retriever",
]


class HybridRetriever:
    """Fuses its retrievers' runs: `rrf` (reciprocal rank fusion) or `interpolation` (two retrievers,
    alpha on the first, min-max normalised scores)."""

    def __init__(
        self, retrievers: list[Retriever], method: str = "rrf", alpha: float = 0.5, rrf_k: int = 60, depth: int = 1000
    ):
        if method not in ("rrf", "interpolation"):
            raise ValueError("method must be 'rrf' or 'interpolation'")
        if method == "interpolation" and len(retrievers) != 2:
            raise ValueError("interpolation fuses exactly two retrievers")
        self.retrievers, self.method, self.alpha, self.rrf_k, self.depth = retrievers, method, alpha, rrf_k, depth
        self.name = f"hybrid-{method}"

    def retrieve(self, queries: dict[str, str], k: int) -> Run:
        runs = [r.retrieve(queries, max(k, self.depth)) for r in self.retrievers]
        if self.method == "rrf":
            return rrf(runs, self.rrf_k, self.depth, k)
        return interpolate(runs[0], runs[1], self.alpha, self.depth, k)


class Pipeline:
    """A first-stage retriever, optionally followed by a reranker over its top `depth`."""

    def __init__(self, retriever: Retriever, reranker: Reranker | None = None, depth: int = 100) -> None:
        self.retriever, self.reranker, self.depth = retriever, reranker, depth
        self.timings: dict[str, float] = {}

    def search(self, queries: dict[str, str], k: int = 1000) -> Run:
        """Rank passages for every query; `timings` then holds seconds per query of each stage."""
        started = time.perf_counter()
        run = self.retriever.retrieve(queries, max(k, self.depth))
        self.timings = {"retrieve": (time.perf_counter() - started) / max(len(queries), 1)}
        if self.reranker is not None:
            started = time.perf_counter()
            run = self.reranker.rerank(run, queries, self.depth)
            self.timings["rerank"] = (time.perf_counter() - started) / max(len(queries), 1)
        return {qid: hits[:k] for qid, hits in run.items()}
