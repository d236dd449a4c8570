"""Retrieve-then-rerank from Python:

pipeline = Pipeline(Bm25Retriever("runs/bm25-index"), CrossEncoderReranker("runs/ce", corpus), depth=100)
run = pipeline.search({"q1": "does aspirin prevent heart attacks?"}, k=100)
pipeline.timings   # seconds per query of each stage
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from core.data.beir import Corpus, load_corpus
from core.data.runs import Run
from core.errors import TandemError
from pipelines.evaluation.fusion import interpolate, rrf
from rerank.reranker import CascadeReranker, CrossEncoderReranker, Reranker
from retrieval import bm25
from retrieval.retrievers import Bm25Retriever, DenseRetriever, Retriever

__all__ = [
    "Bm25Retriever",
    "CascadeReranker",
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

    def search_one(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """The top `k` (passage id, score) for one query text."""
        return self.search({"query": query}, k).get("query", [])

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        system: str = "ce",
        depth: int | None = None,
        corpus: Corpus | None = None,
        cascade_keep: int | None = None,
    ) -> Pipeline:
        """The pipeline of a finished `tandem run` folder, its indexes and models loaded once: `bm25`, `dense`
        (the fine-tuned bi-encoder where the run trained one), `hybrid` (their RRF) or `ce` (the hybrid's
        top `depth` reranked by the run's first cross-encoder, scoring passages of `corpus` as the run's
        rerank stage scored them, `run_rerank_options`: None reads the corpus the run's BM25 index was built
        from). `depth` None: the run's own `rerank.depth`. `cascade_keep` K: the cross-encoder reads
        `CASCADE_MAX_LENGTH` tokens of each pair's first window over the top `depth` first, then scores that
        pass's top K only as the rerank stage does (`CascadeReranker`)."""
        run_dir = Path(run_dir)
        if system not in SYSTEMS:
            raise TandemError(f"system must be one of {', '.join(SYSTEMS)}, not '{system}'")
        dense_index = next(
            (run_dir / stage / "index" for stage in ("index", "dense-zeroshot") if (run_dir / stage / "index" / "meta.json").is_file()),
            None,
        )  # fmt: skip
        bm25_index = run_dir / "bm25" / "index"
        if not (bm25_index / bm25.META_FILE).is_file() or dense_index is None:
            raise TandemError(f"{run_dir}: not a finished `tandem run` folder (no bm25/index or dense index in it)")
        if system == "bm25":
            return cls(Bm25Retriever(bm25_index))
        if system == "dense":
            return cls(DenseRetriever(dense_index))
        hybrid = HybridRetriever([Bm25Retriever(bm25_index), DenseRetriever(dense_index)])
        if system == "hybrid":
            return cls(hybrid)
        rerankers = sorted(p for p in (run_dir / "reranker").glob("*") if (p / "training_config.json").is_file())
        if not rerankers:
            raise TandemError(f"{run_dir}: the run trained no cross-encoder; use --system hybrid")
        if corpus is None:
            corpus = run_corpus(run_dir)
        options = run_rerank_options(run_dir)
        if depth is None:
            depth = options["depth"]
        reranker: Reranker = CrossEncoderReranker(rerankers[0], corpus, last_window=options["last_window"])
        if cascade_keep:
            cheap = CrossEncoderReranker(rerankers[0], corpus, max_length=CASCADE_MAX_LENGTH, last_window=False)
            reranker = CascadeReranker(cheap, reranker, cascade_keep)
        return cls(hybrid, reranker, depth)


def run_rerank_options(run_dir: Path) -> dict:
    """How a finished run's rerank stage scored, so a search ranks as its report did: its `rerank.depth`
    and `rerank.last_window` (False for a run from before that option, which read first windows only).
    A run without its rerank stage's configuration gets today's defaults."""
    config = run_dir / "rerank" / "config.json"
    if config.is_file():
        options = json.loads(config.read_text())["rerank"]
        return {"depth": int(options["depth"]), "last_window": bool(options.get("last_window", False))}
    from pipelines.defaults import RerankDefaults

    defaults = RerankDefaults()
    return {"depth": defaults.depth, "last_window": defaults.last_window}


def run_corpus(run_dir: str | Path) -> Corpus:
    """The corpus a finished `tandem run` folder's BM25 index was built from."""
    return load_corpus(bm25.read_index_meta(Path(run_dir) / "bm25" / "index").corpus_path)


CASCADE_MAX_LENGTH = 64
"""Tokens per pair the cascade's cheap pass reads (`bench.rerank_frontier --cascade-length`)."""

SYSTEMS = ("bm25", "dense", "hybrid", "ce")
"""What `Pipeline.from_run` builds from a run folder."""
