"""A cross-encoder as teacher: score every passage of every training group, for distilling the
cross-encoder into the bi-encoder (`tandem retriever train --loss kl|margin-mse`)."""

from __future__ import annotations

from core.data.groups import TrainingGroup
from core.precision import bulk_precision
from rerank.model import CrossEncoder


def score_groups(
    groups: list[TrainingGroup], model: CrossEncoder, batch_size: int = 64, precision: str = "auto"
) -> list[TrainingGroup]:
    """Store the cross-encoder's logit for (query, passage) as `teacher` on each positive and negative
    (all pairs of all groups scored together, in length-sorted batches); returns the same groups."""
    queries, texts, passages = [], [], []
    for group in groups:
        for passage in [*group.positives, *group.negatives]:
            queries.append(group.query)
            texts.append(group.text(passage))
            passages.append(passage)
    precision = bulk_precision(precision, model.device, len(queries))
    scores = model.score(queries, texts, batch_size=batch_size, precision=precision)
    for passage, score in zip(passages, scores, strict=True):
        passage.teacher = round(float(score), 6)
    return groups
