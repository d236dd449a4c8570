"""The main job end to end on the tiny dataset with a tiny model: every stage, the report, and resuming
after an interruption during cross-encoder training without redoing finished stages. Plus fusion,
the Pipeline API and `tandem compare`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from core.data.beir import BeirDataset
from core.data.runs import read_run
from core.errors import TandemError
from core.training.loop import TrainLoop
from pipelines.cli import main
from pipelines.evaluation.fusion import interpolate, rrf
from pipelines.pipeline import Bm25Retriever, CrossEncoderReranker, Pipeline
from pipelines.runner import STAGES, load_config, run_all
from rerank.reranker import CascadeReranker
from retrieval import bm25


def tiny_config(tmp_path: Path, tiny_bert: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "split": {"train": "test", "test": "test"},  # the tiny train split is too sparse for BM25 negatives
                "dense": {"model": str(tiny_bert)},
                "mining": {"title_queries_per_query": 1},
                "distill": {"enabled": True},
                "reranker": {
                    "model": str(tiny_bert),
                    "losses": ["nll", "bce"],
                    "epochs": 3,
                    "save_every": 1,
                    "batch_queries": 1,
                    "group_size": 3,
                },
                "rerank": {"depth": 5},
            }
        )
    )
    return path


def test_run_resumes_after_interruption(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(tiny_config(tmp_path, tiny_bert), quick=True)
    dataset = BeirDataset(tiny_dir)
    out = tmp_path / "run"
    save = TrainLoop.save_checkpoint

    def crash_in_bce(self: TrainLoop) -> None:
        save(self)
        if self.state.step == 2 and "bce" in str(self.out_dir):
            raise KeyboardInterrupt

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(TrainLoop, "save_checkpoint", crash_in_bce)
        run_all(dataset, out, config)
    finished = [s for s in STAGES if (out / s / "done.json").is_file()]
    assert finished == ["bm25", "dense-zeroshot", "retriever", "index", "mining"]
    title_groups = (out / "mining" / "title-groups.jsonl").read_text().splitlines()
    judged_groups = (out / "mining" / "groups.jsonl").read_text().splitlines()
    assert len(title_groups) == len(judged_groups) > 0  # mining.title_queries_per_query: 1
    assert all(json.loads(g)["query_id"].startswith("title:") for g in title_groups)
    nll_model = (out / "reranker" / "nll" / "model.safetensors").stat().st_mtime_ns
    assert [p.name for p in (out / "reranker" / "bce").glob("checkpoint-*")] == ["checkpoint-2"]

    with caplog.at_level(logging.INFO, logger="core.training.loop"):
        assert run_all(dataset, out, config) == ["reranker", "distill", "rerank", "fuse", "report"]
    assert (
        out / "reranker" / "nll" / "model.safetensors"
    ).stat().st_mtime_ns == nll_model  # finished loss not retrained
    assert "resumed from" in caplog.text and "checkpoint-2 (step 2)" in caplog.text  # not restarted from scratch
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    hybrid = "hybrid (RRF BM25 + dense ft)"
    assert set(metrics["systems"]) == {
        "BM25", "dense zero-shot", "dense fine-tuned", "dense distilled", hybrid, "hybrid (RRF BM25 + dense distilled)",
        "BM25 + CE (NLL)", f"{hybrid} + CE (NLL)", "BM25 + CE (BCE)", f"{hybrid} + CE (BCE)",
    }  # fmt: skip
    assert metrics["systems"]["dense distilled"]["first_stage"] == "dense fine-tuned"
    scored = [json.loads(line) for line in (out / "distill" / "scored-groups.jsonl").read_text().splitlines()]
    assert all(p["teacher"] is not None for g in scored for p in g["positives"] + g["negatives"])
    assert max(len(g["negatives"]) for g in scored) == config["distill"]["num_negatives"]
    distilled = json.loads((out / "distill" / "done.json").read_text())["result"]
    assert distilled["teacher"] == "nll" and distilled["training"]["steps"] >= 1
    report = (out / "report" / "report.md").read_text()
    assert report.count("|") > 20 and "| dense distilled | dense fine-tuned |" in report
    assert (out / "report" / "metrics.png").is_file()
    assert len(list((out / "report").glob("per_query_*.png"))) == 5

    assert run_all(dataset, out, config) == []  # everything finished: nothing reruns
    assert run_all(dataset, out, config, force=["rerank"]) == ["rerank", "fuse", "report"]
    changed = {**config, "rerank": {**config["rerank"], "depth": 3}}
    assert run_all(dataset, out, changed) == ["rerank", "fuse", "report"]
    assert json.loads((out / "fuse" / "done.json").read_text())["result"]["skipped"].startswith("no dev split")


def test_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[reranker]\nlearning_rat = 1e-5\n")
    with pytest.raises(TandemError, match=r"bad.toml.reranker: unknown key 'learning_rat'"):
        load_config(bad, quick=False)
    assert load_config(None, quick=True)["rerank"]["depth"] == 10


def test_fusion() -> None:
    a = {"q": [("x", 10.0), ("y", 5.0), ("z", 1.0)]}
    b = {"q": [("y", 0.9), ("w", 0.8)]}
    assert [d for d, _ in rrf([a, b])["q"]] == ["y", "x", "w", "z"]
    fused = interpolate(a, b, alpha=0.5)["q"]
    assert fused[0] == ("y", pytest.approx(0.5 * 4 / 9 + 0.5 * 1.0))


class ScoreByTable:
    """A reranker scoring each passage from a fixed table, recording how many pairs it was asked to score."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores, self.scored = scores, 0

    def rerank(self, run, queries, depth):
        from rerank.rerank import reranked_at_depth

        self.scored += sum(min(depth, len(hits)) for hits in run.values())
        return reranked_at_depth(
            run, {q: [(d, self.scores[d]) for d, _ in hits[:depth]] for q, hits in run.items()}, depth
        )


def test_cascade_rescores_only_the_first_pass_top_keep() -> None:
    first_stage = {"q": [(doc, 1.0 / rank) for rank, doc in enumerate("abcdefg", start=1)]}
    cheap = ScoreByTable({"a": 1, "b": 6, "c": 5, "d": 4, "e": 3, "f": 2, "g": 0})
    full = ScoreByTable({"a": 0, "b": 1, "c": 9, "d": 8, "e": 0, "f": 0, "g": 9})
    reranked = CascadeReranker(cheap, full, keep=3).rerank(first_stage, {"q": "text"}, depth=6)
    # cheap orders the top 6 b c d e f a (g stays below); full reorders b c d only
    assert [d for d, _ in reranked["q"]] == ["c", "d", "b", "e", "f", "a", "g"]
    assert (cheap.scored, full.scored) == (6, 3)
    with pytest.raises(ValueError, match="keep"):
        CascadeReranker(cheap, full, keep=0)


def test_pipeline_api_and_compare(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dataset = BeirDataset(tiny_dir)
    bm25.build_index(dataset.corpus_path, tmp_path / "idx")
    first = Pipeline(Bm25Retriever(tmp_path / "idx"))
    both = Pipeline(Bm25Retriever(tmp_path / "idx"), CrossEncoderReranker(tiny_bert, dataset.corpus), depth=3)
    queries = dataset.split_queries("test")
    a, b = first.search(queries, k=5), both.search(queries, k=5)
    assert set(both.timings) == {"retrieve", "rerank"}
    for qid in queries:
        assert {d for d, _ in a[qid][:3]} == {d for d, _ in b[qid][:3]}  # the reranked top: same passages
        assert [d for d, _ in b[qid][3:]] == [d for d, _ in a[qid][3:]]  # below the depth: first-stage order
    from core.data.runs import write_run

    write_run(a, tmp_path / "a.trec")
    write_run(b, tmp_path / "b.trec")
    args = [
        "compare",
        str(tmp_path / "a.trec"),
        str(tmp_path / "b.trec"),
        "--names",
        "BM25",
        "BM25+CE",
        "--dataset",
        str(tiny_dir),
    ]
    assert main([*args, "--rerank-of", "BM25+CE=BM25", "--out", str(tmp_path / "report")]) == 0
    assert "| BM25+CE |" in capsys.readouterr().out
    assert (tmp_path / "report" / "per_query_BM25_CE.png").is_file()
    assert main([*args[:-2], "--names", "x", "--dataset", str(tiny_dir)]) == 2


def test_fuse_cli(tmp_path: Path) -> None:
    from core.data.runs import read_run, write_run

    write_run({"q": [("x", 10.0), ("y", 5.0)]}, tmp_path / "a")
    write_run({"q": [("y", 0.9), ("w", 0.8)]}, tmp_path / "b")
    assert main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "f")]) == 0
    assert [d for d, _ in read_run(tmp_path / "f")["q"]] == ["y", "x", "w"]
    assert (
        main(
            [
                "fuse",
                str(tmp_path / "a"),
                str(tmp_path / "b"),
                "--method",
                "interpolation",
                "--alpha",
                "1",
                "--out",
                str(tmp_path / "g"),
            ]
        )
        == 0
    )
    assert read_run(tmp_path / "g")["q"][0][0] == "x"
    assert main(["fuse", str(tmp_path / "a"), "--out", str(tmp_path / "h")]) == 2


def test_dev_split_is_held_out_of_training_and_chooses_the_result(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    from core.data.splits import carve_dev

    config = load_config(tiny_config(tmp_path, tiny_bert), quick=True)
    config["split"].update(dev_fraction=0.34, dev_min=1)  # 1 of the 3 training queries
    config["reranker"]["losses"] = ["nll"]
    out = tmp_path / "run"
    run_all(BeirDataset(tiny_dir), out, config)
    dev = carve_dev(BeirDataset(tiny_dir).split_queries("test"), 0.34, 300, 1, 42)
    assert len(dev) == 1 and set(read_run(out / "bm25" / "dev.trec")) == set(dev)
    for groups in (out / "retriever" / "bm25-negatives.jsonl", out / "mining" / "groups.jsonl"):
        trained_on = {json.loads(line)["query_id"] for line in groups.read_text().splitlines()}
        assert trained_on and not trained_on & set(dev)
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    dev_figures = {name: row["dev_nDCG@10"] for name, row in metrics["systems"].items()}
    assert None not in dev_figures.values()
    assert metrics["result"] == max(dev_figures, key=lambda name: dev_figures[name])  # first of the best
    fused = [name for name in metrics["systems"] if " fused with " in name]
    assert len(fused) == 2 and (out / "rerank" / "dev" / "bm25-nll-fused.trec").is_file()
    convex = [name for name in metrics["systems"] if ", convex: CE " in name]
    assert len(convex) == 2 and (out / "fuse" / "dev" / "hybrid-nll-convex.trec").is_file()
    assert all(metrics["systems"][name]["first_stage"] for name in convex)
    text = (out / "report" / "report.md").read_text()
    assert "dev nDCG@10" in text and "best nDCG@10 on the dev split (1 queries" in text
    assert "Holm p" in text and "Only 3 queries" in text
    assert (out / "report" / "tradeoff.png").is_file()
    bm25 = metrics["systems"]["BM25"]
    assert set(bm25["per_query_nDCG@10"]) == set(BeirDataset(tiny_dir).split_queries("test"))
    assert metrics["machine"]["cores"] and metrics["versions"]["tandem"]
    record = json.loads((out / "report" / "record.json").read_text())
    assert record["result"] == metrics["result"] and record["dataset"] == "tiny" and record["machine"]["cpu"]
    assert record["systems"]["BM25"]["test"]["nDCG@10"] == round(bm25["nDCG@10"], 4)
    assert record["systems"]["BM25"]["dev"] is not None and set(record["stage_seconds"]) >= {"bm25", "rerank"}


def test_a_datasets_own_dev_split_is_the_dev_split(tiny_dir: Path, tmp_path: Path) -> None:
    """qrels/dev.tsv, where a dataset has it, is its dev split: those queries choose, none is trained on."""
    import shutil

    from core.data.splits import dev_qrels_split, dev_split_ids
    from pipelines.estimate import train_query_count
    from pipelines.stages.context import RunContext

    data = tmp_path / "with-dev"
    shutil.copytree(tiny_dir, data)
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq5\td5\t1\nq6\td6\t2\n")
    dataset, config = BeirDataset(data), load_config(None, quick=True)
    assert (
        dev_split_ids(dataset, config["split"]) == ["q5", "q6"] and dev_qrels_split(dataset, config["split"]) == "dev"
    )
    context = RunContext(dataset, tmp_path / "run", config)
    assert context.dev_qrels() == {"q5": {"d5": 1}, "q6": {"d6": 2}}
    assert not {"q5", "q6"} & set(context.train_queries())
    assert train_query_count(dataset, config, "train") == len(context.train_queries())  # what the plan counts
    config["split"]["dev"] = None  # carve from train instead
    assert dev_qrels_split(dataset, config["split"]) == "train"


def test_a_train_query_without_a_positive_is_neither_trained_on_nor_counted(tiny_dir: Path, tmp_path: Path) -> None:
    """A train query judged only below `split.min_relevance` makes no training group: the stages leave it
    out, and the plan (which sizes the steps and the title pseudo-queries from the same count) agrees."""
    import shutil

    from pipelines.estimate import train_query_count
    from pipelines.stages.context import RunContext

    data = tmp_path / "zero-judged"
    shutil.copytree(tiny_dir, data)
    with open(data / "qrels" / "train.tsv", "a") as qrels:
        qrels.write("q2\td3\t0\n")
    dataset, config = BeirDataset(data), load_config(None, quick=True)
    context = RunContext(dataset, tmp_path / "run", config)
    assert "q2" in dataset.split_queries("train")
    assert list(context.train_queries()) == ["q1", "q3", "q4"]
    assert train_query_count(dataset, config, "train") == 3


def test_carve_dev_is_seeded_bounded_and_empty_when_too_small() -> None:
    from core.data.splits import carve_dev

    ids = [f"q{i}" for i in range(1000)]
    dev = carve_dev(ids, 0.1, 300, 20, 42)
    assert len(dev) == 100 and dev == carve_dev(reversed(ids), 0.1, 300, 20, 42) != carve_dev(ids, 0.1, 300, 20, 7)
    assert len(carve_dev(ids * 1, 0.5, 300, 20, 42)) == 300
    assert carve_dev(ids[:150], 0.1, 300, 20, 42) == []  # 15 < dev_min


def test_choose_weight_takes_the_best_dev_figure_ties_to_the_first() -> None:
    from pipelines.evaluation.fusion import choose_weight

    reranked = {"q1": [("d2", 5.0), ("d1", 4.0), ("d3", 0.0)]}  # the cross-encoder alone is wrong
    first = {"q1": [("d1", 10.0), ("d2", 1.0), ("d3", 0.5)]}
    weight, figure = choose_weight(reranked, first, {"q1": {"d1": 1}}, [0.1, 0.5, 0.9], depth=3)
    assert weight == 0.1 and figure == 1.0
    weight, _ = choose_weight(reranked, first, {"q1": {"d2": 1}}, [0.1, 0.5, 0.9], depth=3)
    assert weight == 0.9


def test_convex_fusion_weights_each_run_and_is_chosen_on_dev() -> None:
    from pipelines.evaluation.fusion import choose_convex_weights, convex, simplex_grid

    grid = simplex_grid(3, 0.5)
    assert grid == [
        (1.0, 0.0, 0.0),
        (0.5, 0.5, 0.0),
        (0.5, 0.0, 0.5),
        (0.0, 1.0, 0.0),
        (0.0, 0.5, 0.5),
        (0.0, 0.0, 1.0),
    ]
    assert len(simplex_grid(3, 0.1)) == 66 and all(abs(sum(w) - 1) < 1e-9 for w in simplex_grid(3, 0.1))
    reranked = {"q1": [("d1", 9.0), ("d2", 5.0), ("d3", 1.0), ("d4", 0.0)]}  # d4: below the depth
    bm25 = {"q1": [("d2", 30.0), ("d3", 20.0), ("d1", 10.0)]}
    dense = {"q1": [("d3", 0.9), ("d1", 0.5), ("d4", 0.0)]}  # d2 missing: 0 from dense
    fused = convex(reranked, [bm25, dense], [0.5, 0.5, 0.0], depth=3)["q1"]
    assert [d for d, _ in fused] == ["d2", "d1", "d3", "d4"]  # d2: 0.5 * 0.5 + 0.5 * 1; d1: 0.5 * 1 + 0
    assert fused[0][1] == pytest.approx(0.75) and fused[3][1] < fused[2][1]
    assert [d for d, _ in convex(reranked, [bm25, dense], [0.0, 0.0, 1.0], depth=3)["q1"]][:1] == ["d3"]
    weights, figure = choose_convex_weights(reranked, [bm25, dense], {"q1": {"d3": 1}}, grid, depth=3)
    assert weights == (0.0, 0.5, 0.5) and figure == 1.0  # d3 first needs dense; ties go to the earlier weights
    weights, _ = choose_convex_weights(reranked, [bm25, dense], {"q1": {"d1": 1}}, grid, depth=3)
    assert weights == (1.0, 0.0, 0.0)
    # scored on the mixed top `depth` alone when the measure's cutoff lies within it, on every hit otherwise
    from pipelines.evaluation.fusion import convex_figures
    from pipelines.evaluation.metrics import evaluate

    qrels = {"q1": {"d4": 1, "d2": 1}}
    for measure, depth in (("nDCG@2", 3), ("nDCG@4", 3), ("MAP", 2)):
        _, rows = convex_figures(reranked, [bm25, dense], qrels, grid, depth, measure)
        full = [
            evaluate(convex(reranked, [bm25, dense], list(w), depth), qrels, [measure]).aggregate[measure] for w in grid
        ]
        assert [row[0] for row in rows] == pytest.approx(full)


def test_bagged_weights_average_what_bootstrap_samples_of_dev_choose() -> None:
    from pipelines.evaluation.fusion import bagged_weights, best_on, choose_convex_weights, simplex_grid

    grid = [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
    figures = [[1.0, 0.0], [0.0, 1.0]]  # q1 wants the cross-encoder alone, q2 dense alone; ties go to the first
    assert best_on(figures) == 0 and best_on(figures, [1]) == 1
    weights = bagged_weights(figures, grid, resamples=400, seed=3)
    # a sample of {q1, q1} or {q1, q2} (a tie) picks the first weighting, {q2, q2} the second: about 3 : 1
    assert 0.65 < weights[0] < 0.85 and weights[1] == 0.0 and abs(sum(weights) - 1) < 1e-2
    assert bagged_weights(figures, grid, resamples=400, seed=3) == weights  # seeded
    assert bagged_weights([[], []], grid, resamples=10) == grid[0]  # no judged query: the grid's first
    reranked = {"q1": [("d1", 9.0), ("d2", 5.0)], "q2": [("d1", 9.0), ("d2", 5.0)]}
    dense = {"q1": [("d2", 0.9), ("d1", 0.1)], "q2": [("d2", 0.9), ("d1", 0.1)]}
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    chosen, figure = choose_convex_weights(reranked, [{}, dense], qrels, simplex_grid(3, 0.5), depth=2, resamples=50)
    assert abs(sum(chosen) - 1) < 1e-2 and 0 < figure <= 1


def test_search_answers_from_a_finished_run(tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys) -> None:
    from pipelines.pipeline import Pipeline
    from rerank.model import CrossEncoder

    config = load_config(tiny_config(tmp_path, tiny_bert), quick=True)
    config["reranker"]["losses"] = ["nll"]
    out = tmp_path / "run"
    run_all(BeirDataset(tiny_dir), out, config)
    hits = Pipeline.from_run(out, "hybrid").search_one("aspirin heart attack", k=3)
    assert len(hits) == 3 and hits[0][0] in BeirDataset(tiny_dir).corpus
    assert main(["search", "--run-dir", str(out), "--k", "2", "aspirin heart attack"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert printed[0].startswith("# aspirin heart attack") and len(printed) == 3
    cascade = Pipeline.from_run(out, "ce", depth=4, cascade_keep=2)
    assert isinstance(cascade.reranker, CascadeReranker) and cascade.reranker.first.model.max_length == 64
    assert cascade.reranker.second.model.last_window and not cascade.reranker.first.model.last_window
    config_file = out / "rerank" / "config.json"  # a run from before rerank.last_window read first windows only
    recorded = json.loads(config_file.read_text())
    del recorded["rerank"]["last_window"]
    config_file.write_text(json.dumps(recorded))
    assert not Pipeline.from_run(out, "ce").reranker.model.last_window
    assert len(cascade.search_one("aspirin heart attack", k=3)) == 3
    assert main(["search", "--run-dir", str(out), "--cascade", "2", "aspirin heart attack"]) == 0
    model = CrossEncoder.from_pretrained(out / "reranker" / "nll")
    ranked = model.rank("aspirin", ["aspirin reduces heart attacks", "salt", "coffee"])
    assert sorted(i for i, _ in ranked) == [0, 1, 2] and ranked[0][1] >= ranked[-1][1]
