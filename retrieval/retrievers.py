"""First-stage retrievers behind one protocol, so a `Pipeline` (or any caller) can swap them."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from core.data.runs import Run
from retrieval import bm25
from retrieval.dense import dense_search
from retrieval.index import DenseIndex


class Retriever(Protocol):
    """Anything that ranks passages for queries: `retrieve(queries, k)` -> {query id: [(doc id, score)]}."""

    name: str

    def retrieve(self, queries: dict[str, str], k: int) -> Run: ...


class Bm25Retriever:
    """BM25 over a Lucene index built by `tandem bm25 index`."""

    def __init__(self, index_dir: str | Path, k1: float = 0.9, b: float = 0.4, threads: int = 2) -> None:
        self.index_dir, self.k1, self.b, self.threads = Path(index_dir), k1, b, threads
        self.name = "BM25"

    def retrieve(self, queries: dict[str, str], k: int) -> Run:
        return bm25.search(self.index_dir, queries, k=k, k1=self.k1, b=self.b, threads=self.threads)


class DenseRetriever:
    """The bi-encoder over a FAISS index built by `tandem index build` (its encoder is loaded from meta.json)."""

    def __init__(self, index_dir: str | Path, batch_size: int = 64, device: str | None = None) -> None:
        self.index = DenseIndex(index_dir)
        self.encoder = self.index.load_encoder(device)
        self.batch_size = batch_size
        self.name = "dense"

    def retrieve(self, queries: dict[str, str], k: int) -> Run:
        return dense_search(self.index, queries, k, self.batch_size, self.encoder)[0]
