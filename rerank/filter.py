"""False-negative filter for mining: drop candidates a cross-encoder scores above the query's positive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.data.beir import Corpus
from core.errors import TandemError
from rerank.model import CrossEncoder, is_cross_encoder
from retrieval.mining import Candidate


def cross_encoder_filter(
    model_dir: str | Path, corpus: Corpus, batch_size: int = 64
) -> Callable[[str, list[str], list[Candidate]], list[Candidate]]:
    """A filter for `mine_groups`: keeps candidates scored no higher than the lowest-scored positive.
    A model without a trained one-logit head is refused: its random scores would filter at random."""
    if not is_cross_encoder(model_dir):
        raise TandemError(
            f"{model_dir} is not a trained cross-encoder (no one-logit sequence-classification head): its scores "
            "would filter candidates at random; give one trained with `tandem reranker train`"
        )
    model = CrossEncoder.from_pretrained(model_dir).to_device()

    def keep(query: str, positive_ids: list[str], candidates: list[Candidate]) -> list[Candidate]:
        ids = positive_ids + [c.doc_id for c in candidates]
        scores = model.score([query] * len(ids), [corpus.passage(i) for i in ids], batch_size, show_progress=False)
        bar = scores[: len(positive_ids)].min()
        return [c for c, s in zip(candidates, scores[len(positive_ids) :], strict=True) if s <= bar]

    return keep
