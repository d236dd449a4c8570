"""Rerankers behind one protocol, so a `Pipeline` takes any of them (a cross-encoder, an LLM, a fusion)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from core.data.beir import Corpus
from core.data.runs import Run
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run


class Reranker(Protocol):
    """Anything that reorders the top `depth` hits of a run: `rerank(run, queries, depth)` -> run."""

    def rerank(self, run: Run, queries: dict[str, str], depth: int) -> Run: ...


class CrossEncoderReranker:
    """A tandem/Hugging Face cross-encoder scoring (query, passage) pairs from `corpus`."""

    def __init__(
        self,
        model: str | Path | CrossEncoder,
        corpus: Corpus,
        batch_size: int = 64,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        self.model = model if isinstance(model, CrossEncoder) else CrossEncoder.from_pretrained(model).to_device(device)
        self.corpus, self.batch_size, self.precision = corpus, batch_size, precision

    def rerank(self, run: Run, queries: dict[str, str], depth: int) -> Run:
        return rerank_run(run, queries, self.corpus, self.model, depth, self.batch_size, precision=self.precision)
