"""The README's core-job snippet runs as printed: read groups, train a cross-encoder with the listwise
NLL, rerank a run, evaluate; and it trains the model `tandem run`'s reranker stage trains. Here on
data/tiny (named 'scifact' in a temporary data folder) with the tiny random BERT standing in for the
default start model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from core.data.groups import Passage, TrainingGroup, write_groups
from core.data.runs import write_run

README = Path(__file__).resolve().parent.parent / "README.md"


def core_job_snippet() -> str:
    text = README.read_text()
    section = text[text.index("### The core job from Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_snippet_is_short() -> None:
    lines = [line for line in core_job_snippet().splitlines() if line.strip()]
    assert len(lines) <= 10, lines


def test_readme_core_job_snippet_runs(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from core import models
    from core.data.beir import BeirDataset
    from pipelines.config import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.reranker import stage_reranker

    data = tmp_path / "data"
    shutil.copytree(tiny_dir, data / "scifact")
    monkeypatch.setenv("TANDEM_DATA_DIR", str(data))
    monkeypatch.setattr(models, "offline_minilm_path", lambda: tiny_bert)
    monkeypatch.chdir(tmp_path)
    dataset = BeirDataset(tiny_dir)
    ids = dataset.corpus.ids
    groups = [
        TrainingGroup(qid, text, [Passage(ids[i], dataset.corpus.passage(ids[i]))],
                      [Passage(d, dataset.corpus.passage(d)) for d in ids if d != ids[i]][:5])
        for i, (qid, text) in enumerate(dataset.queries.items())
    ] * 2  # fmt: skip
    write_groups(groups, "runs/scifact/mining/groups.jsonl")
    write_groups(groups[:2], "runs/scifact/mining/title-groups.jsonl")  # a run's title pseudo-query groups
    write_run({qid: [(d, 1.0 / (r + 1)) for r, d in enumerate(ids)] for qid in dataset.split_queries("test")},
              "runs/scifact/bm25/test.trec")  # fmt: skip

    exec(compile(core_job_snippet(), str(README), "exec"), {})

    assert (tmp_path / "runs" / "ce-nll" / "model.safetensors").is_file()
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert 0.0 <= float(printed) <= 1.0

    # `tandem run`'s reranker stage on the same mining folder, with its default recipe, saves the same bytes
    # (the tiny collection has too few train queries for a dev split, so no dev evaluation picks a checkpoint)
    config = load_config(None, quick=False)
    run = tmp_path / "runs" / "scifact"
    (run / "reranker").mkdir()
    stage_reranker(RunContext(BeirDataset(data / "scifact"), run, config), run / "reranker")
    snippet, stage = (tmp_path / "runs" / "ce-nll", run / "reranker" / "nll")
    assert (snippet / "model.safetensors").read_bytes() == (stage / "model.safetensors").read_bytes()


def test_the_results_table_is_rendered_from_the_records(tmp_path: Path) -> None:
    """README.md's results table is what results/*.json say; editing a record makes the check fail."""
    import json

    from pipelines.evaluation.results_table import RESULTS, load_records, render, replace_table

    records = load_records()
    assert records, "results/ holds no run record"
    text = README.read_text()
    assert replace_table(text, render(records)) == text, "README.md's table differs from results/: rerender it"
    edited = json.loads(json.dumps(records))
    name = next(iter(edited[0]["systems"]))
    edited[0]["systems"][name]["test"]["nDCG@10"] += 0.01
    assert replace_table(text, render(edited)) != text
    for path in RESULTS.glob("*.json"):
        record = json.loads(path.read_text())
        assert {"command", "commit", "date", "machine", "systems", "result"} <= set(record)


def test_the_table_shows_the_result_when_dev_chose_a_two_way_fused_system() -> None:
    """Two-way fused variants are left out of the table, except the one dev chose as the run's result."""
    import json

    from pipelines.evaluation.results_table import load_records, render

    record = json.loads(json.dumps(load_records()[0]))
    fused = next(name for name in record["systems"] if " fused with " in name)
    record["result"] = fused
    rows = [line for line in render([record]).splitlines() if line.startswith("| ★")]
    assert len(rows) == 1 and rows[0].startswith(f"| ★ **{fused}** |"), rows


def test_a_record_names_the_program_that_wrote_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command a record (and the README's table) shows is the one that ran: the `tandem` console script,
    or `python -m MODULE` for a script such as experiments/replay_stages.py."""
    import importlib.machinery
    import sys
    import types

    from pipelines.evaluation.record import invoked_command

    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("experiments.replay_stages", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/repo/experiments/replay_stages.py", "--run", "runs/x"])
    assert invoked_command() == "python -m experiments.replay_stages --run runs/x"
    main.__spec__ = None  # the console script
    monkeypatch.setattr(sys, "argv", ["/venv/bin/tandem", "run", "--dataset", "scifact"])
    assert invoked_command() == "tandem run --dataset scifact"
