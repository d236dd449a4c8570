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
        max_length: int | None = None,
        last_window: bool = True,
    ) -> None:
        """`max_length`: tokens per pair (None: the model's own); a short one makes a cheap first pass
        for `CascadeReranker`. `last_window`: also score a long passage's last window and keep the higher
        score (`CrossEncoder.last_window`), as `tandem run`'s rerank stage does by default; a
        `CrossEncoder` passed in keeps its own setting."""
        if isinstance(model, CrossEncoder):
            self.model = model
        else:
            self.model = CrossEncoder.from_pretrained(model, max_length=max_length, last_window=last_window)
            self.model = self.model.to_device(device)
        self.corpus, self.batch_size, self.precision = corpus, batch_size, precision

    def rerank(self, run: Run, queries: dict[str, str], depth: int) -> Run:
        return rerank_run(run, queries, self.corpus, self.model, depth, self.batch_size, precision=self.precision)


class CascadeReranker:
    """Two passes: `first` reranks the top `depth`, then `second` rescores only the `keep` best of that
    ranking; the rest keep the first pass's order beneath. With the same cross-encoder at a short max
    length as `first`, the cheap pass drops the clear non-candidates before the full model reads them
    (`bench.rerank_frontier` measures what that trades against reranking fewer hits)."""

    def __init__(self, first: Reranker, second: Reranker, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.first, self.second, self.keep = first, second, keep

    def rerank(self, run: Run, queries: dict[str, str], depth: int) -> Run:
        return self.second.rerank(self.first.rerank(run, queries, depth), queries, min(self.keep, depth))
