"""A model's dev figure while it trains: what early stopping reads (`TrainingConfig.eval_every`)."""

from __future__ import annotations

from collections.abc import Callable

from core.data.beir import Corpus, Qrels
from core.data.runs import Run, truncate
from core.precision import resolved_precision
from pipelines.evaluation.metrics import evaluate
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run


def rerank_dev_score(
    first_stage: Run, queries: dict[str, str], corpus: Corpus, qrels: Qrels, depth: int, batch_size: int = 64
) -> Callable[[CrossEncoder], float]:
    """nDCG@10 of a cross-encoder reranking each judged dev query's top `depth` hits of `first_stage`.
    Scored in the training device's fast float precision (bf16 where it is fast, else fp32), never int8:
    quantising anew at every evaluation would cost more than the evaluation."""
    judged = {query_id: hits for query_id, hits in truncate(first_stage, depth).items() if query_id in qrels}

    def score(model: CrossEncoder) -> float:
        precision = resolved_precision("auto", model.device)
        reranked = rerank_run(judged, queries, corpus, model, depth, batch_size, False, precision)
        return evaluate(reranked, qrels, ["nDCG@10"]).aggregate["nDCG@10"]

    return score
