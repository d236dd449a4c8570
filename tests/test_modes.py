"""Any dataset, any shape: a collection without a train split still gets a full report (transfer,
self-supervised or zero-shot, said at the top), several datasets make one table, a finished stage is
never reused for other data, and the stress shape (tens of judged passages per query) runs with one
groups line per query."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from core.data.beir import BeirDataset
from core.data.runs import read_run
from core.errors import TandemError
from pipelines.cli import main
from pipelines.runner import load_config, run_all


def tiny_options(tiny_bert: Path, **extra: dict) -> dict:
    options = {
        "dense": {"model": str(tiny_bert)},
        "mining": {"title_queries": 4, "title_queries_per_query": 1},
        "reranker": {"model": str(tiny_bert), "batch_queries": 1, "group_size": 3, "save_every": 0},
        "rerank": {"depth": 5},
    }
    for section, values in extra.items():
        options[section] = {**options.get(section, {}), **values}
    return options


def write_config(path: Path, options: dict) -> Path:
    path.write_text(yaml.safe_dump(options))
    return path


@pytest.fixture
def no_train(tiny_dir: Path, tmp_path: Path) -> Path:
    """data/tiny without qrels/train.tsv, as most BEIR sets and classic test collections are."""
    copy = tmp_path / "tiny-notrain"
    shutil.copytree(tiny_dir, copy)
    (copy / "qrels" / "train.tsv").unlink()
    return copy


def report_of(out: Path) -> tuple[str, dict]:
    return (out / "report" / "report.md").read_text(), json.loads((out / "report" / "metrics.json").read_text())


def test_zero_shot_when_nothing_to_train_or_transfer(no_train: Path, tiny_bert: Path, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "c.yaml", tiny_options(tiny_bert)), quick=True)
    out = tmp_path / "run"
    run_all(BeirDataset(no_train), out, config)
    text, metrics = report_of(out)
    assert "**Mode: zero-shot**" in text
    assert set(metrics["systems"]) == {"BM25", "dense zero-shot", "hybrid (RRF BM25 + dense zero-shot)"}
    assert metrics["result"] == "hybrid (RRF BM25 + dense zero-shot)" and "★ hybrid" in text
    for stage in ("retriever", "index", "mining", "reranker"):
        assert "skipped" in json.loads((out / stage / "done.json").read_text())["result"]
    assert "Skipped stages: retriever" in text
    assert "mode zero-shot" in (out / "run.log").read_text()


def test_transfer_and_self_supervised_modes(
    tiny_dir: Path, no_train: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    trained = tmp_path / "trained"
    options = tiny_options(tiny_bert, split={"train": "test"})  # the tiny train split is too small to train on
    run_all(BeirDataset(tiny_dir), trained, load_config(write_config(tmp_path / "t.yaml", options), quick=True))

    base = write_config(tmp_path / "c.yaml", tiny_options(tiny_bert))
    int8 = write_config(
        tmp_path / "i.yaml", tiny_options(tiny_bert, dense={"precision": "int8"}, rerank={"precision": "int8"})
    )
    transfer = tmp_path / "transfer"
    args = ["run", "--dataset", str(no_train), "--out", str(transfer), "--config", str(base), "--quick"]
    assert main([*args[:6], str(int8), "--quick", "--models-from", str(trained)]) == 0
    text, metrics = report_of(transfer)
    assert "**Mode: transfer**" in text
    assert {"dense transferred", "BM25 + CE (NLL)", "hybrid (RRF BM25 + dense transferred) + CE (NLL)"} <= set(
        metrics["systems"]
    )
    assert not (transfer / "reranker" / "nll").exists()  # nothing trained: the transferred model was used
    meta = json.loads((transfer / "index" / "index" / "meta.json").read_text())
    assert meta["precision"] == "int8"  # the int8 options reached the stages

    selfsup = tmp_path / "self"
    assert main([*args[:4], str(selfsup), *args[5:], "--mode", "self-supervised"]) == 0
    text, metrics = report_of(selfsup)
    assert "**Mode: self-supervised**" in text
    assert {"dense self-supervised", "BM25 + CE (NLL)"} <= set(metrics["systems"])
    groups = [json.loads(line) for line in (selfsup / "mining" / "groups.jsonl").read_text().splitlines()]
    assert len(groups) == 4 and all(g["query_id"].startswith("title:") and g["passage_form"] == "text" for g in groups)

    with pytest.raises(TandemError, match="mode train needs qrels/train.tsv"):
        config = load_config(base, quick=True)
        config["run"]["mode"] = "train"
        run_all(BeirDataset(no_train), tmp_path / "x", config)


def test_many_datasets_one_table(tiny_dir: Path, no_train: Path, tiny_bert: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_options(tiny_bert, run={"mode": "zero-shot"}))
    out = tmp_path / "many"
    assert main(["run", "--dataset", str(tiny_dir), str(no_train), "--out", str(out), "--config", str(config),
                 "--quick"]) == 0  # fmt: skip
    table = json.loads((out / "metrics.json").read_text())
    assert set(table["datasets"]) == {"tiny", "tiny-notrain"}
    assert (out / "tiny" / "report" / "report.md").is_file() and (out / "ndcg.png").is_file()
    assert "| **average** |" in (out / "report.md").read_text()
    bm25 = [table["datasets"][d]["BM25"] for d in ("tiny", "tiny-notrain")]
    assert table["average"]["BM25"] == pytest.approx(sum(bm25) / 2)


def test_a_finished_run_is_not_reused_for_another_dataset(
    tiny_dir: Path, no_train: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path / "c.yaml", tiny_options(tiny_bert, run={"mode": "zero-shot"})), True)
    out = tmp_path / "run"
    run_all(BeirDataset(no_train), out, config)
    edited = tmp_path / "edited" / no_train.name  # the same dataset, its corpus edited
    shutil.copytree(no_train, edited)
    (edited / "corpus.jsonl").write_text((edited / "corpus.jsonl").read_text().replace("aspirin", "ibuprofen"))
    assert run_all(BeirDataset(edited), out, config)[0] == "bm25"  # same folder, other corpus: all stages rerun
    other = tmp_path / "other"
    shutil.copytree(no_train, other)
    with pytest.raises(TandemError, match="holds the results of a run on tiny-notrain, not on other"):
        run_all(BeirDataset(other), out, config)  # another dataset's results are not replaced unasked


@pytest.mark.integration
def test_stress_shape_runs_with_one_group_per_query(tmp_path: Path) -> None:
    """Tens of graded judged passages per query (the shape that wrote 5 GB of groups before): one groups
    line per query, all positives kept, by passage id."""
    from bench.stress import make_stress_dataset
    from tests.tiny_models import build_tiny_bert

    data = make_stress_dataset(tmp_path / "stress", passages=3000, train_queries=2500, positives=40, test_queries=50)
    texts = [json.loads(line)["text"] for line in (data / "corpus.jsonl").read_text().splitlines()[:3000]]
    tiny = build_tiny_bert(tmp_path / "tiny-bert", texts + ["w" + str(i) for i in range(2000)])
    config = write_config(tmp_path / "c.yaml", tiny_options(tiny, mining={"title_queries_per_query": 0.02}))
    out = tmp_path / "run"
    assert main(["run", "--dataset", str(data), "--out", str(out), "--config", str(config), "--quick"]) == 0
    train_queries = {line.split("\t")[0] for line in (data / "qrels" / "train.tsv").read_text().splitlines()[1:]}
    dev_queries = read_run(out / "bm25" / "dev.trec")
    for groups_file in (out / "retriever" / "bm25-negatives.jsonl", out / "mining" / "groups.jsonl"):
        lines = groups_file.read_text().splitlines()
        assert len(train_queries) == 2500 and len(lines) == 2500 - 250  # one per query; 10 % held out as dev
        assert not {json.loads(line)["query_id"] for line in lines} & set(dev_queries)
        assert groups_file.stat().st_size < 20e6
        first = json.loads(lines[0])
        assert len(first["positives"]) > 10 and all("text" not in p for p in first["positives"])
    title_groups = (out / "mining" / "title-groups.jsonl").read_text().splitlines()
    assert len(title_groups) == round(0.02 * 2250)  # a share of the judged training queries
    text, metrics = report_of(out)
    assert "**Mode: train**" in text and "BM25 + CE (NLL)" in metrics["systems"]
    assert "dev nDCG@10" in text and "the best nDCG@10 on the dev split (250 queries" in text


def test_plan_prints_sizes_and_estimates_then_exits(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_options(tiny_bert, split={"train": "test"}))
    out = tmp_path / "run"
    assert main(["run", "--dataset", str(tiny_dir), "--out", str(out), "--config", str(config), "--plan"]) == 0
    printed = capsys.readouterr().out
    for stage in (
        "bm25",
        "dense-zeroshot",
        "retriever",
        "index",
        "mining",
        "reranker",
        "distill",
        "rerank",
        "report",
        "total",
    ):
        assert f"\n{stage} " in printed, stage
    assert "encode 12 passages" in printed and "pairs to score" in printed and "measured in a" in printed
    assert not (out / "bm25").exists()  # nothing ran


def test_the_warm_up_is_reused_for_the_same_job_on_this_machine(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.warmup

    monkeypatch.setenv("TANDEM_CACHE", str(tmp_path / "cache"))  # none of the session's earlier warm-ups
    measured = []
    measure = pipelines.warmup.measure
    monkeypatch.setattr(pipelines.warmup, "measure", lambda *a, **k: measured.append(1) or measure(*a, **k))
    config = write_config(tmp_path / "c.yaml", tiny_options(tiny_bert, split={"train": "test"}))
    plan = ["run", "--dataset", str(tiny_dir), "--out", str(tmp_path / "run"), "--config", str(config), "--plan"]

    def planned(*extra: str) -> str:
        assert main([*plan, *extra]) == 0
        return capsys.readouterr().out

    first = planned()
    assert len(measured) == 1 and "measured in a " in first
    again = planned("--set", "reranker.max_steps=7")  # how long it trains: same timings
    assert len(measured) == 1 and "measured in an earlier" in again
    assert again.split("\nreranker ")[0] == first.split("\nreranker ")[0]  # same rates, same estimates
    planned("--set", "rerank.last_window=false")  # how many pairs it scores, not what one costs
    assert len(measured) == 1
    planned("--set", "reranker.max_length=32")  # a timed shape changed
    planned("--fresh-warmup")
    assert len(measured) == 3

    # a run with only reranking left times no training step
    options = load_config(config, quick=False)
    options["split"]["train"] = "test"
    rates = measure(BeirDataset(tiny_dir), options, "train", pending=["rerank", "fuse", "report"])
    assert rates.retriever_step_s == rates.reranker_step_s == 0 and rates.score_s_per_token > 0
    rates = measure(BeirDataset(tiny_dir), options, "train")
    assert rates.retriever_step_s > 0 and rates.reranker_step_s > 0


def test_budget_cuts_steps_and_depth_and_the_report_says_so(tmp_path: Path) -> None:
    from pipelines.plan import StagePlan, fit_budget, parse_budget
    from pipelines.warmup import Rates

    assert parse_budget("45m") == 2700 and parse_budget("1h30m") == 5400 and parse_budget("90") == 90
    with pytest.raises(TandemError, match="duration"):
        parse_budget("soon")

    def plans(reranker_steps: int = 800) -> list[StagePlan]:
        return [StagePlan("bm25", "", 60), StagePlan("retriever", "", 600, steps=100), StagePlan("reranker", "", 1200, steps=reranker_steps),
                StagePlan("distill", "", 300, steps=40), StagePlan("rerank", "", 600), StagePlan("report", "", 40)]  # fmt: skip

    def cut(budget: float, reranker_steps: int = 800, depth: int = 100) -> tuple[dict, list[str], float]:
        config, planned = load_config(None, quick=False), plans(reranker_steps)
        config["rerank"]["depth"] = depth
        cuts = fit_budget(config, planned, budget)
        return config, cuts, sum(p.seconds for p in planned)

    untouched = load_config(None, quick=False)
    config, cuts, seconds = cut(2600)  # skipping distillation is enough
    assert cuts == ["distill skipped"] and not config["distill"]["enabled"] and seconds == pytest.approx(2500)
    assert config["retriever"]["max_steps"] == untouched["retriever"]["max_steps"]
    assert config["reranker"]["max_steps"] == untouched["reranker"]["max_steps"]
    assert config["rerank"]["depth"] == 100
    config, cuts, seconds = cut(1800)  # then the cross-encoder alone, above its floor
    factor = 1 - 700 / 1800
    assert config["reranker"]["max_steps"] == int(800 * factor) and config["rerank"]["depth"] == int(100 * factor)
    assert config["retriever"]["max_steps"] == 0 and len(cuts) == 3 and seconds == pytest.approx(1800, rel=0.01)
    config, cuts, seconds = cut(1300)  # the cross-encoder at half, then the retriever
    assert config["reranker"]["max_steps"] == 400 and config["rerank"]["depth"] == 50
    assert config["retriever"]["max_steps"] == 50 and seconds == pytest.approx(1300, rel=0.01)
    config, cuts, seconds = cut(1800, reranker_steps=600)  # 366 steps would fit: too few to be of use
    assert not config["reranker"]["enabled"] and config["reranker"]["max_steps"] == untouched["reranker"]["max_steps"]
    assert cuts[-1].startswith("cross-encoder skipped (366 of its steps would fit")
    assert config["retriever"]["max_steps"] == 0 and seconds == pytest.approx(700)
    assert cut(5000)[1] == []
    config, cuts, seconds = cut(1800, depth=30)  # at the default depth only the steps can go
    assert config["rerank"]["depth"] == 30 and config["reranker"]["max_steps"] == int(800 * factor)
    assert config["retriever"]["max_steps"] == 61 and seconds == pytest.approx(1800, rel=0.01)
    with pytest.raises(TandemError, match="cannot be cut"):
        fit_budget(load_config(None, quick=False), plans(), budget=50)
    rates = Rates(1e-3, 2e-3, 1.0, 2.0, {256: 100.0}, 150.0, 1.0, last_window_tokens=100.0)
    assert rates.encode_seconds(10, 256) == pytest.approx(1.0) and rates.score_seconds(10) == pytest.approx(3.0)
    assert rates.score_seconds(10, last_window=True) == pytest.approx(5.0)  # the long passages' last windows too


def test_config_types_are_checked_before_any_stage(tmp_path: Path) -> None:
    bad = write_config(tmp_path / "bad.yaml", {"reranker": {"epochs": "one"}})
    with pytest.raises(TandemError, match=r"reranker.epochs must be int or float, not 'one'"):
        load_config(bad, quick=False)
    unset = write_config(tmp_path / "unset.yaml", {"dense": {"model": 5}})  # an option whose default is None
    with pytest.raises(TandemError, match=r"unset.yaml.dense.model must be str, not 5"):
        load_config(unset, quick=False)
    firsts = write_config(tmp_path / "f.yaml", {"rerank": {"first_stages": ["bm25", "splade"]}})
    with pytest.raises(TandemError, match=r"rerank.first_stages must list some of bm25, dense, hybrid, not"):
        load_config(firsts, quick=False)
    precision = write_config(tmp_path / "p.yaml", {"rerank": {"precision": "int4"}})
    with pytest.raises(
        TandemError, match=r"rerank.precision must be one of auto, fp32, bf16, fp16, int8, bf16-compiled, not 'int4'"
    ):
        load_config(precision, quick=False)
    listed = tmp_path / "list.yaml"
    listed.write_text("- reranker\n")
    with pytest.raises(TandemError, match="top level must be a table"):
        load_config(listed, quick=False)


def test_an_exponent_without_a_dot_is_a_number_in_set_and_in_a_config_file(tmp_path: Path) -> None:
    """PyYAML alone reads `1e-4` as the string '1e-4' (YAML 1.1), which the type check then refuses."""
    assert load_config(None, quick=False, sets=["reranker.learning_rate=1e-4"])["reranker"]["learning_rate"] == 1e-4
    config = tmp_path / "lr.yaml"
    config.write_text("reranker:\n  learning_rate: 2e-5\n  head_learning_rate: 1E-3\n")
    loaded = load_config(config, quick=False)["reranker"]
    assert loaded["learning_rate"] == 2e-5 and loaded["head_learning_rate"] == 1e-3
    assert load_config(None, quick=False, sets=["dense.model=1e4x"])["dense"]["model"] == "1e4x"


def test_options_set_in_code_are_checked_before_any_stage(tiny_dir: Path, tmp_path: Path) -> None:
    """`run_all` checks the configuration it is handed, not only what a config file held."""
    config = load_config(None, quick=True)
    config["mining"]["sources"] = ["dense", "splade"]
    with pytest.raises(TandemError, match=r"config.mining.sources must list some of dense, bm25, not"):
        run_all(BeirDataset(tiny_dir), tmp_path / "run", config)
    assert not (tmp_path / "run").exists()


def test_a_start_model_replaced_at_the_same_path_reruns_what_used_it(
    no_train: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    from tests.tiny_models import build_tiny_bert, tiny_texts

    model = tmp_path / "start-model"
    shutil.copytree(tiny_bert, model)
    config = load_config(write_config(tmp_path / "c.yaml", tiny_options(model)), quick=True)
    out = tmp_path / "run"
    run_all(BeirDataset(no_train), out, config)
    assert run_all(BeirDataset(no_train), out, config) == []
    build_tiny_bert(model, tiny_texts(no_train), seed=7)  # other weights, same path
    assert run_all(BeirDataset(no_train), out, config)[0] == "dense-zeroshot"  # BM25 did not use it: kept


def test_a_finished_run_reruns_without_a_warm_up(
    no_train: Path, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import pipelines.runner
    from pipelines.cli import main

    config = write_config(tmp_path / "c.yaml", tiny_options(tiny_bert))
    argv = ["run", "--dataset", str(no_train), "--out", str(tmp_path / "run"), "--config", str(config), "--quick"]
    assert main(argv) == 0
    assert "plan for" in (tmp_path / "run" / "run.log").read_text()  # the plan is in the log too
    assert main([*argv, "--plan", "--force", "report"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "finished earlier" in lines["bm25"] and "0m00s" in lines["bm25"]  # the plan costs what is left
    assert "finished earlier" not in lines["report"]

    def no_warm_up(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run measured a warm-up")

    monkeypatch.setattr(pipelines.runner, "warmup_rates", no_warm_up)
    assert main(argv) == 0
    assert "stage report: finished earlier, skipped" in (tmp_path / "run" / "run.log").read_text()
