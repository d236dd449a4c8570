"""experiments/fusion.py: the cross-validation that chose how the fuse stage picks its weights."""

from __future__ import annotations

import argparse

from experiments.fusion import cross_validate
from pipelines.evaluation.fusion import simplex_grid


def test_cross_validation_scores_each_way_on_queries_it_did_not_choose_on() -> None:
    queries = [f"q{i}" for i in range(6)]
    # the cross-encoder puts each query's relevant passage first; BM25 and dense put it last
    reranked = {q: [(f"{q}-rel", 3.0), (f"{q}-a", 2.0), (f"{q}-b", 1.0)] for q in queries}
    bm25 = {q: [(f"{q}-a", 9.0), (f"{q}-b", 8.0), (f"{q}-rel", 1.0)] for q in queries}
    dense = {q: [(f"{q}-b", 0.9), (f"{q}-a", 0.8), (f"{q}-rel", 0.1)] for q in queries}
    qrels = {q: {f"{q}-rel": 1} for q in queries}
    args = argparse.Namespace(folds=3, repeats=2, resamples=20, seed=0)
    measured = cross_validate(reranked, [bm25, dense], qrels, simplex_grid(3, 0.5), 3, args)
    assert measured["dev_queries"] == 6
    assert measured["weights_on_all_dev"]["argmax"] == (1.0, 0.0, 0.0)
    assert measured["weights_on_all_dev"]["bagged"] == (1.0, 0.0, 0.0)  # every sample agrees
    assert measured["held_out_nDCG@10"] == {"argmax": 1.0, "bagged": 1.0}


def test_the_union_holds_every_runs_top_hits_once_best_first() -> None:
    from experiments.fusion import union_of_tops

    bm25_reranked = {"q": [("a", 3.0), ("b", 1.0), ("below", 0.5)]}
    hybrid_reranked = {"q": [("c", 2.0), ("a", 3.0), ("under", 9.0)]}
    union = union_of_tops([bm25_reranked, hybrid_reranked], depth=2)
    assert union == {"q": [("a", 3.0), ("c", 2.0), ("b", 1.0)]}  # nothing from below either top 2
