"""Metrics follow trec_eval/MS MARCO conventions, including the cutoff of MRR@10 and tie-breaking."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipelines.evaluation.metrics import evaluate


def test_perfect_and_empty_runs() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    perfect = evaluate({"q1": [("a", 1.0)], "q2": [("b", 1.0)]}, qrels)
    assert perfect.aggregate["nDCG@10"] == pytest.approx(1.0)
    assert perfect.aggregate["MRR@10"] == pytest.approx(1.0)
    # q2 missing from the run counts as zero, not as absent
    half = evaluate({"q1": [("a", 1.0)]}, qrels)
    assert half.aggregate["nDCG@10"] == pytest.approx(0.5)
    assert half.per_query["q2"]["Recall@100"] == 0.0


def test_mrr_at_10_ignores_rank_11() -> None:
    run = {"q": [(f"d{i:02d}", 100.0 - i) for i in range(1, 30)]}
    result = evaluate(run, {"q": {"d11": 1}})
    assert result.aggregate["MRR@10"] == 0.0
    assert result.aggregate["Recall@100"] == 1.0
    assert result.aggregate["MAP"] == pytest.approx(1 / 11)


def test_ties_follow_trec_eval() -> None:
    # equal scores: trec_eval ranks doc ids descending, so 'b' comes before 'a'
    result = evaluate({"q": [("a", 1.0), ("b", 1.0)]}, {"q": {"a": 1}})
    assert result.aggregate["MRR@10"] == pytest.approx(0.5)


def test_graded_ndcg_uses_trec_eval_linear_gains() -> None:
    qrels = {"q": {"a": 2, "b": 1}}
    result = evaluate({"q": [("b", 2.0), ("a", 1.0)]}, qrels, ["nDCG@10"])
    import math

    ideal = 2 / math.log2(2) + 1 / math.log2(3)  # gain = relevance grade, as trec_eval and BEIR use
    actual = 1 / math.log2(2) + 2 / math.log2(3)
    assert result.aggregate["nDCG@10"] == pytest.approx(actual / ideal)


def test_evaluate_scores_against_a_qrels_file_with_any_ir_measures_name(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from pipelines.cli import main

    run = tmp_path / "r.trec"
    run.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\n")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 d2 1\n")  # TREC qrels, space-separated; no corpus needed
    assert main(["evaluate", "--run", str(run), "--qrels", str(qrels), "--measures", "nDCG@20", "P@1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["P@1"] == 0.0 and figures["nDCG@20"] == pytest.approx(1 / math.log2(3))
    assert main(["evaluate", "--run", str(run), "--qrels", str(qrels), "--measures", "bogus@3"]) == 2
    assert "unknown measure 'bogus@3'" in capsys.readouterr().err


def test_a_run_of_another_collection_is_a_warning(tiny_dir: Path, tmp_path: Path, caplog) -> None:
    import logging

    from pipelines.cli import main

    run = tmp_path / "other.trec"
    run.write_text("q1 Q0 MED-1 1 2.0 t\nq1 Q0 MED-2 2 1.0 t\n")
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--run", str(run), "--dataset", str(tiny_dir)]) == 0
    assert "2 of its 2 passages are not in tiny's corpus" in caplog.text
