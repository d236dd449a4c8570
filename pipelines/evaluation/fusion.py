"""Hybrid retrieval by fusing runs, with Pyserini's fusion module (Cormack et al. 2009 for RRF)."""

from __future__ import annotations

import numpy as np
from pyserini.fusion import interpolation, reciprocal_rank_fusion
from pyserini.trectools import RescoreMethod, TrecRun

from core.data.beir import Qrels
from core.data.runs import Run, ranked, truncate


def to_trec_run(run: Run) -> TrecRun:
    rows = [
        (qid, "Q0", doc_id, rank, score, "tandem")
        for qid, hits in run.items()
        for rank, (doc_id, score) in enumerate(ranked(hits), start=1)
    ]
    return TrecRun.from_list(rows)


def from_trec_run(trec_run: TrecRun) -> Run:
    run: Run = {}
    for topic, _, doc_id, _, score, _ in trec_run.run_data.itertuples(index=False):
        run.setdefault(str(topic), []).append((str(doc_id), float(score)))
    return {qid: ranked(hits) for qid, hits in run.items()}


def rrf(runs: list[Run], rrf_k: int = 60, depth: int | None = 1000, k: int | None = 1000) -> Run:
    """Reciprocal rank fusion: score = sum over runs of 1 / (rrf_k + rank). Runs without a hit add nothing
    (Pyserini's fusion cannot read an empty run)."""
    runs = [run for run in runs if any(run.values())]
    if len(runs) < 2:  # one run (or none): its RRF scores keep its order
        kept = min(k or 10**9, depth or 10**9)
        only = runs[0] if runs else {}
        return {q: [(d, 1.0 / (rrf_k + r)) for r, (d, _) in enumerate(hits[:kept], 1)] for q, hits in only.items()}
    return from_trec_run(reciprocal_rank_fusion([to_trec_run(r) for r in runs], rrf_k=rrf_k, depth=depth, k=k))


def interpolate(first: Run, second: Run, alpha: float = 0.5, depth: int | None = 1000, k: int | None = 1000) -> Run:
    """alpha * first + (1 - alpha) * second, each min-max normalised per query first (BM25 and cosine
    scores live on different scales); a passage missing from one run gets 0 from it."""
    normalised = [to_trec_run(run).rescore(RescoreMethod.NORMALIZE) for run in (first, second)]
    return from_trec_run(interpolation(normalised, alpha=alpha, depth=depth, k=k))


def interpolate_reranked(reranked: Run, first: Run, alpha: float, depth: int) -> Run:
    """alpha * reranker + (1 - alpha) * first stage over each query's top `depth` (both min-max
    normalised over those hits); hits below the depth keep their order beneath: `convex` of two runs."""
    return convex(reranked, [truncate(first, depth)], [alpha, 1 - alpha], depth)


def _keep_below(top: list[tuple[str, float]], hits: list[tuple[str, float]], depth: int) -> list[tuple[str, float]]:
    """`top` (a query's mixed top `depth`, best first), then the rest of `hits` in their order, scored beneath."""
    floor = min((score for _, score in top), default=0.0)
    return top + [(doc_id, floor - 1.0 - i) for i, (doc_id, _) in enumerate(hits[depth:])]


def choose_weight(
    reranked: Run, first: Run, qrels: Qrels, weights: list[float], depth: int, measure: str = "nDCG@10"
) -> tuple[float, float]:
    """The cross-encoder weight of `interpolate_reranked` that scores best on these (dev) qrels, and
    its figure; ties go to the earlier weight in `weights`: `choose_convex_weights` over two runs."""
    grid = [(w, round(1 - w, 10)) for w in weights]
    chosen, figure = choose_convex_weights(reranked, [truncate(first, depth)], qrels, grid, depth, measure)
    return chosen[0], figure


def min_max(hits: list[tuple[str, float]]) -> dict[str, float]:
    """One query's scores mapped to [0, 1] (all equal: 1)."""
    if not hits:
        return {}
    low, high = min(score for _, score in hits), max(score for _, score in hits)
    return {doc_id: (score - low) / (high - low) if high > low else 1.0 for doc_id, score in hits}


def convex(reranked: Run, others: list[Run], weights: list[float], depth: int) -> Run:
    """A weighted sum of per-query min-max normalised scores over the reranked run's top `depth` hits:
    `weights[0]` * reranked + `weights[i]` * others[i - 1] (each of `others` normalised over its own run
    as written; a hit it does not hold gets 0 from it). With tuned weights this convex combination beats
    RRF (Bruch et al. 2023, "An analysis of fusion functions for hybrid retrieval"); hits below `depth`
    keep their order beneath. No library fuses three runs with weights; Pyserini's interpolation takes two."""
    return _weighted(reranked, _normalised(reranked, others, depth), weights, depth)


def _normalised(reranked: Run, others: list[Run], depth: int) -> dict[str, list[dict[str, float]]]:
    """Per query, the min-max normalised scores of the reranked top `depth` and of each of `others`."""
    return {
        query_id: [min_max(hits[:depth])] + [min_max(other.get(query_id, [])) for other in others]
        for query_id, hits in reranked.items()
    }


def _weighted(
    reranked: Run, parts: dict[str, list[dict[str, float]]], weights: list[float], depth: int, below: bool = True
) -> Run:
    """The mix over each query's top `depth`, then (with `below`) its other hits beneath in their order."""
    out: Run = {}
    for query_id, hits in reranked.items():
        top = [
            (doc_id, sum(w * part.get(doc_id, 0.0) for w, part in zip(weights, parts[query_id], strict=True)))
            for doc_id, _ in hits[:depth]
        ]
        out[query_id] = _keep_below(ranked(top), hits, depth) if below else ranked(top)
    return out


def simplex_grid(parts: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of `parts` non-negative multiples of `step` summing to 1, the first part's
    weight descending (so ties go to the larger first weight)."""
    units = round(1 / step)

    def split(total: int, n: int) -> list[tuple[int, ...]]:
        if n == 1:
            return [(total,)]
        return [(first, *rest) for first in range(total, -1, -1) for rest in split(total - first, n - 1)]

    return [tuple(round(u * step, 10) for u in combo) for combo in split(units, parts)]


def convex_figures(
    reranked: Run, others: list[Run], qrels: Qrels, grid: list[tuple[float, ...]], depth: int, measure: str = "nDCG@10"
) -> tuple[list[str], list[list[float]]]:
    """Each weighting of `grid` scored per query by `convex`: the query ids (sorted) and one row of their
    figures per weighting, in grid order. The runs are normalised once, not once per weighting, and a
    measure whose cutoff lies within `depth` (nDCG@10 over a top 30) is scored on the mixed top `depth`
    alone: the hits beneath never reach its cutoff, and leaving them out spares most of the evaluation."""
    from pipelines.evaluation.metrics import evaluate, measure_of

    cutoff = measure_of(measure).params.get("cutoff")
    below = cutoff is None or cutoff > depth
    parts = _normalised(reranked, others, depth)
    per_query = [evaluate(_weighted(reranked, parts, list(w), depth, below), qrels, [measure]).per_query for w in grid]
    queries = sorted(set().union(*per_query))
    return queries, [[figures.get(q, {}).get(measure, 0.0) for q in queries] for figures in per_query]


def mean_figure(row: list[float], positions: list[int] | None = None) -> float:
    """The mean of one weighting's per-query figures, over `positions` (default: every query; none: 0)."""
    values = row if positions is None else [row[i] for i in positions]
    return sum(values) / max(len(values), 1)


def best_on(figures: list[list[float]], positions: list[int] | None = None) -> int:
    """The grid index whose mean figure over the queries at `positions` (default: all) is highest; ties go
    to the earlier index."""
    means = [mean_figure(row, positions) for row in figures]
    return max(range(len(figures)), key=lambda i: (means[i], -i))


def bagged_weights(
    figures: list[list[float]], grid: list[tuple[float, ...]], resamples: int, seed: int = 0
) -> tuple[float, ...]:
    """The mean of the best weighting over `resamples` bootstrap samples of the queries (Breiman's bagging):
    on a small dev split the single best grid point follows a few queries' ties and jumps between distant
    weights; the bagged weights are the centre of the weightings that dev keeps choosing."""
    matrix = np.asarray(figures)  # weightings x queries
    if matrix.size == 0:  # no judged query: nothing to resample
        return grid[best_on(figures)]
    rng = np.random.default_rng(seed)
    chosen = [
        int(np.argmax(matrix[:, rng.integers(0, matrix.shape[1], matrix.shape[1])].mean(axis=1)))
        for _ in range(resamples)
    ]
    mean = np.asarray([grid[i] for i in chosen]).mean(axis=0)
    return tuple(round(float(w), 3) for w in mean)


def choose_convex_weights(
    reranked: Run,
    others: list[Run],
    qrels: Qrels,
    grid: list[tuple[float, ...]],
    depth: int,
    measure: str = "nDCG@10",
    resamples: int = 0,
) -> tuple[tuple[float, ...], float]:
    """The weights of `convex` chosen on these (dev) qrels, and their figure there: the grid's best
    weighting (ties to the earlier one), or with `resamples` the bagged weights (`bagged_weights`)."""
    _, figures = convex_figures(reranked, others, qrels, grid, depth, measure)
    if not resamples:
        best = best_on(figures)
        return grid[best], mean_figure(figures[best])
    weights = bagged_weights(figures, grid, resamples)
    _, (bagged,) = convex_figures(reranked, others, qrels, [weights], depth, measure)
    return weights, mean_figure(bagged)
