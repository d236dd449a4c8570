"""Retrieve-then-rerank from Python:

pipeline = Pipeline(Bm25Retriever("runs/bm25-index"), CrossEncoderReranker("runs/ce", corpus), depth=100)
run = pipeline.search({"q1": "does aspirin prevent heart attacks?"}, k=100)
pipeline.timings   # seconds per query of each stage
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from pipelines.fusion import interpolate, rrf
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run
from retrieval import bm25
from retrieval.beir import Corpus
from retrieval.dense import dense_search
from retrieval.index import DenseIndex
from retrieval.runs import Run


class Retriever(Protocol):
    name: str

    def retrieve(self, queries: dict[str, str], k: int) -> Run: ...


class Bm25Retriever:
    def __init__(self, index_dir: str | Path, k1: float = 0.9, b: float = 0.4, threads: int = 2) -> None:
        self.index_dir, self.k1, self.b, self.threads = Path(index_dir), k1, b, threads
        self.name = "BM25"

    def retrieve(self, queries: dict[str, str], k: int) -> Run:
        return bm25.search(self.index_dir, queries, k=k, k1=self.k1, b=self.b, threads=self.threads)


class DenseRetriever:
    def __init__(self, index_dir: str | Path, batch_size: int = 64, device: str | None = None) -> None:
        self.index = DenseIndex(index_dir)
        self.encoder = self.index.load_encoder(device)
        self.batch_size = batch_size
        self.name = "dense"

    def retrieve(self, queries: dict[str, str], k: int) -> Run:
        return dense_search(self.index, queries, k, self.batch_size, self.encoder)[0]


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


class CrossEncoderReranker:
    def __init__(
        self, model: str | Path | CrossEncoder, corpus: Corpus, batch_size: int = 64, device: str | None = None
    ):
        self.model = model if isinstance(model, CrossEncoder) else CrossEncoder.from_pretrained(model).to_device(device)
        self.corpus, self.batch_size = corpus, batch_size

    def rerank(self, run: Run, queries: dict[str, str], depth: int) -> Run:
        return rerank_run(run, queries, self.corpus, self.model, depth, self.batch_size)


class Pipeline:
    """A first-stage retriever, optionally followed by a reranker over its top `depth`."""

    def __init__(self, retriever: Retriever, reranker: CrossEncoderReranker | None = None, depth: int = 100) -> None:
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
