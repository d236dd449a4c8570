"""Bad input is a clear error, never a silently wrong figure (each case failed before its fix)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.beir import load_corpus, load_qrels, load_queries
from core.errors import DataFormatError, TandemError
from pipelines.cli import main


def test_ids_with_whitespace_are_refused_with_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "d1", "text": "a"}\n{"_id": "d\\t2", "text": "b"}\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:2: '_id' 'd\\t2' contains whitespace"):
        load_corpus(corpus)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q 1", "text": "a"}\n')
    with pytest.raises(DataFormatError, match=r"queries.jsonl:1: .*whitespace"):
        load_queries(queries)


def test_a_headerless_qrels_file_keeps_its_first_row_and_bad_scores_are_errors(tmp_path: Path) -> None:
    qrels = tmp_path / "q.tsv"
    qrels.write_text("q1\td1\t1\nq2\td2\t2.0\n")
    assert load_qrels(qrels) == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    qrels.write_text("q1\td1\tx\nq2\td2\t1\n")  # used to be taken for a header and dropped
    with pytest.raises(DataFormatError, match=r"q.tsv:1: score 'x' is not a whole number"):
        load_qrels(qrels)
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1.7\n")  # used to become 1 silently
    with pytest.raises(DataFormatError, match=r"q.tsv:2: score '1.7'"):
        load_qrels(qrels)
    qrels.write_text("query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n")
    assert load_qrels(qrels) == {"q1": {"d1": 1}}


@pytest.mark.parametrize(
    "argv",
    [
        ["rerank", "--run", "r", "--dataset", "d", "--model", "m", "--out", "o", "--depth", "-5"],
        ["index", "build", "--dataset", "d", "--out", "o", "--num-shards", "0"],
        ["mine", "--dataset", "d", "--out", "o", "--bm25-index", "i", "--num-negatives", "-3"],
        ["reranker", "train", "--groups", "g", "--out", "o", "--lr", "-1"],
        ["reranker", "train", "--groups", "g", "--out", "o", "--batch-queries", "0"],
        ["retriever", "train", "--dataset", "d", "--out", "o", "--grad-accumulation", "0"],
        ["reranker", "train", "--groups", "g", "--out", "o", "--warmup", "5"],
        ["bm25", "search", "--index", "i", "--dataset", "d", "--out", "o", "--k", "-5"],
        ["rerank", "--run", "r", "--dataset", "d", "--model", "m", "--out", "o", "--interpolate", "nan"],
        ["rerank", "--run", "r", "--dataset", "d", "--model", "m", "--out", "o", "--interpolate", "2"],
        ["fuse", "a", "b", "--out", "o", "--method", "interpolation", "--alpha", "nan"],
        ["fuse", "a", "b", "--out", "o", "--method", "interpolation", "--alpha", "5"],
    ],
)
def test_out_of_range_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "must be" in capsys.readouterr().err


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['TANDEM_PWNED']}",))


def test_a_crafted_checkpoint_cannot_run_code_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_bert: Path
) -> None:
    from core.training.config import TrainingConfig
    from core.training.distributed import DistributedContext
    from core.training.loop import TrainLoop

    marker = tmp_path / "pwned"
    monkeypatch.setenv("TANDEM_PWNED", str(marker))
    (tmp_path / "out" / "checkpoint-1").mkdir(parents=True)
    torch.save({"evil": _RunsCode()}, tmp_path / "out" / "checkpoint-1" / "training_state.pt")
    model = torch.nn.Linear(2, 1)
    loop = TrainLoop(model, TrainingConfig(), tmp_path / "out", 4, DistributedContext(), lambda _: None)
    with pytest.raises(TandemError, match="not a readable tandem training state"):
        loop.resume()
    assert not marker.exists()


def test_an_unfinished_accumulation_does_not_leak_into_the_next_epoch(tmp_path: Path) -> None:
    from core.training.config import TrainingConfig
    from core.training.distributed import DistributedContext
    from core.training.loop import TrainLoop

    weight = torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.weight = weight
    config = TrainingConfig(epochs=2, grad_accumulation=2, max_grad_norm=1e9, warmup_ratio=0.0, precision="fp32")
    loop = TrainLoop(model, config, tmp_path, 3, DistributedContext(), lambda _: None)  # 3 batches, 1 step/epoch
    seen = []
    step = loop.optimizer.step
    loop.optimizer.step = lambda *a, **k: (seen.append(weight.grad.item()), step(*a, **k))[1]
    loop.run(lambda epoch: [1.0, 2.0, 4.0], lambda x: (weight * x).sum())
    assert seen == [pytest.approx(1.5), pytest.approx(1.5)]  # the third batch's gradient (4) is dropped, not carried


def test_a_query_longer_than_the_max_length_is_scored_not_a_crash(tiny_bert: Path) -> None:
    from rerank.model import CrossEncoder

    model = CrossEncoder.from_pretrained(tiny_bert, max_length=32)
    long_query = " ".join(["aspirin heart attack"] * 120)  # 360 words, far over 32 tokens
    scores = model.score([long_query, "aspirin"], ["aspirin reduces heart attack risk"] * 2, show_progress=False)
    assert scores.shape == (2,) and bool(np.isfinite(scores).all())


@pytest.mark.parametrize(
    ("line", "message"),
    [('{"text": "no id"}', "missing required field '_id'"), ("[1, 2]", "expected a JSON object"),
     ('{"_id": "d1", "text": "again"}', "duplicate _id 'd1'"), ('{"_id": "d9", "text": "trunc', "malformed JSON")],
)  # fmt: skip
def test_bm25_index_refuses_a_broken_corpus_with_file_and_line(
    tiny_dir: Path, tmp_path: Path, line: str, message: str
) -> None:
    from retrieval import bm25

    corpus = tmp_path / "corpus.jsonl"
    rows = (tiny_dir / "corpus.jsonl").read_text().splitlines()
    corpus.write_text("\n".join([*rows[:5], line, *rows[5:]]) + "\n")
    with pytest.raises(DataFormatError, match=rf"corpus.jsonl:6: .*{message}"):
        bm25.build_index(corpus, tmp_path / "index")
    assert not (tmp_path / "index").exists()


def test_bm25_index_checks_anserini_counted_every_passage() -> None:
    from retrieval.bm25 import _documents_indexed

    assert _documents_indexed("... - Total 5,183 documents indexed in 00:00:02") == 5183
    assert _documents_indexed("Indexing failed") is None


def test_dense_index_refuses_duplicate_passage_ids(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    from retrieval.index import build_dense_index

    corpus = tmp_path / "corpus.jsonl"
    rows = (tiny_dir / "corpus.jsonl").read_text().splitlines()
    corpus.write_text("\n".join([*rows, rows[0]]) + "\n")
    with pytest.raises(TandemError, match="passage id 'd1' occurs more than once"):
        build_dense_index(str(tiny_bert), corpus, tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


def test_rerank_refuses_a_model_without_a_trained_head(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    from core.data.runs import write_run
    from rerank.model import CrossEncoder, is_cross_encoder

    write_run({"q1": [("d1", 2.0), ("d2", 1.0)]}, tmp_path / "run.trec")
    args = ["rerank", "--run", str(tmp_path / "run.trec"), "--dataset", str(tiny_dir), "--out", str(tmp_path / "o")]
    assert main([*args, "--model", str(tiny_bert)]) == 2 and not (tmp_path / "o").exists()
    assert main([*args, "--model", str(tiny_bert), "--allow-untrained-head"]) == 0
    CrossEncoder.from_pretrained(tiny_bert).save_pretrained(tmp_path / "ce")
    assert is_cross_encoder(tmp_path / "ce") and not is_cross_encoder(tiny_bert)


def test_retriever_train_does_not_reuse_negatives_mined_for_another_split(tiny_dir: Path, tmp_path: Path) -> None:
    from core.data.beir import BeirDataset
    from pipelines.commands.dense import bm25_groups

    dataset = BeirDataset(tiny_dir)
    path = bm25_groups(dataset, "test", tmp_path, depth=10, num_negatives=3, seed=1)
    on_test = {line.split('"query_id": "')[1].split('"')[0] for line in path.read_text().splitlines()}
    assert bm25_groups(dataset, "test", tmp_path, depth=10, num_negatives=3, seed=1).read_text() == path.read_text()
    bm25_groups(dataset, "train", tmp_path, depth=10, num_negatives=3, seed=1)  # used to return the test groups
    on_train = {line.split('"query_id": "')[1].split('"')[0] for line in path.read_text().splitlines()}
    assert on_test == set(dataset.qrels("test")) and on_train == set(dataset.qrels("train"))


def test_an_index_refuses_an_encoder_folder_whose_weights_changed(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from retrieval.index import DenseIndex, build_dense_index
    from tests.tiny_models import build_tiny_bert, tiny_texts

    model = build_tiny_bert(tmp_path / "tiny-bert", tiny_texts(tiny_dir), seed=0)
    monkeypatch.chdir(tmp_path)
    meta = build_dense_index("tiny-bert", tiny_dir / "corpus.jsonl", tmp_path / "idx")  # a relative path, as typed
    assert meta.encoder == str(model.resolve()) and meta.encoder_fingerprint
    monkeypatch.chdir(tiny_dir)  # from another folder the index still finds its encoder
    DenseIndex(tmp_path / "idx").load_encoder()
    shutil.rmtree(model)
    build_tiny_bert(model, tiny_texts(tiny_dir), seed=1)  # same folder, other weights
    with pytest.raises(TandemError, match="now holds other weights"):
        DenseIndex(tmp_path / "idx").load_encoder()


def test_leftover_shards_of_an_edited_corpus_are_not_reused(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    from retrieval.encoder import BiEncoder
    from retrieval.index import encode_corpus_shard

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text((tiny_dir / "corpus.jsonl").read_text())
    encoder = BiEncoder.from_pretrained(tiny_bert)
    encode_corpus_shard(encoder, corpus, tmp_path / "shards")
    corpus.write_text(corpus.read_text().replace('"d1"', '"d1-renamed"'))  # same path, same length
    with pytest.raises(TandemError, match="was encoded differently"):
        encode_corpus_shard(encoder, corpus, tmp_path / "shards")


def test_a_killed_final_save_does_not_look_finished(tmp_path: Path) -> None:
    from core.atomic import publish_model

    def dies_halfway(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt  # stands for a kill during save_pretrained

    with pytest.raises(KeyboardInterrupt):
        publish_model(tmp_path / "model", dies_halfway, "training_config.json", "{}")
    assert (
        not (tmp_path / "model" / "config.json").exists() and not (tmp_path / "model" / "training_config.json").exists()
    )
    publish_model(tmp_path / "model", lambda f: (f / "config.json").write_text("{}"), "training_config.json", "{}")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "training_config.json"]


def test_outputs_get_the_users_usual_mode(tmp_path: Path) -> None:
    from core.atomic import atomic_dir, atomic_file

    mask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "run.trec") as out:
            out.write("x")
        with atomic_dir(tmp_path / "index", "dense-index") as staging:
            (staging / "f").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "run.trec").stat().st_mode & 0o777 == 0o644  # was 0o600 (mkstemp's)
    assert (tmp_path / "index").stat().st_mode & 0o777 == 0o755


def test_a_resumed_run_logs_each_step_once(tmp_path: Path) -> None:
    from core.training.loop import LossLog

    log = LossLog(tmp_path / "loss.csv", enabled=True)
    for step in (10, 20, 30):  # 30 was logged after the checkpoint at step 20, then the run died
        log.write(step, 0.0, 1.0, 1e-5, 1.0)
    log.keep_until(20)  # what resume() does after loading checkpoint-20
    log.write(30, 0.0, 0.9, 1e-5, 1.0)
    steps = [row.split(",")[0] for row in (tmp_path / "loss.csv").read_text().splitlines()[1:]]
    assert steps == ["10", "20", "30"]


def test_runs_with_nan_scores_or_repeated_passages_are_refused(tmp_path: Path) -> None:
    from core.data.runs import read_run

    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 nan t\n")
    with pytest.raises(DataFormatError, match=r"run.trec:2: score 'nan' is not a finite number"):
        read_run(run)
    run.write_text("q1 Q0 d1 1 2.0 t\nq2 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n")
    with pytest.raises(
        DataFormatError, match=r"run.trec:3: passage 'd1' appears twice for query 'q1' \(first on line 1\)"
    ):
        read_run(run)


def test_a_bad_faiss_factory_fails_before_encoding(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    args = ["index", "build", "--dataset", str(tiny_dir), "--encoder", str(tiny_bert), "--out", str(tmp_path / "i")]
    assert main([*args, "--factory", "NotAFactory"]) == 2
    assert not (tmp_path / "i.shards").exists()  # nothing was encoded
    assert main([*args, "--factory", "IVF4096,Flat"]) == 2  # 12 passages cannot train 4,096 lists
    assert not (tmp_path / "i").exists()


def test_temporaries_of_killed_writers_are_removed_and_a_live_writer_s_kept(tmp_path: Path) -> None:
    from core.atomic import atomic_dir, atomic_file

    dead = _dead_pid()
    stale_file = tmp_path / f".groups.jsonl.{dead}.abc123.tmp"
    stale_dir = tmp_path / f".index.{dead}.xyz_9.tmp"
    live = tmp_path / f".groups.jsonl.{os.getpid()}.live00.tmp"
    other = tmp_path / f".groups.jsonl.5.{dead}.abc.tmp"  # a temporary of `groups.jsonl.5`, not ours
    stale_file.write_text("half")
    stale_dir.mkdir()
    (stale_dir / "part").write_text("half")
    live.write_text("being written")
    other.write_text("x")
    with atomic_file(tmp_path / "groups.jsonl") as out:
        out.write("done\n")
    with atomic_dir(tmp_path / "index", "dense-index") as staging:
        (staging / "f").write_text("done")
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other.exists()


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _tiny_groups(path: Path) -> Path:
    rows = [
        {"query_id": f"q{i}", "query": f"question {i}", "positives": [{"id": f"d{i}"}],
         "negatives": [{"id": f"d{i + 4}"}, {"id": f"d{i + 5}"}] if i != 4 else []}
        for i in range(1, 5)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_reranker_train_refuses_a_used_out_without_resume_or_overwrite(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "ce"
    args = ["reranker", "train", "--groups", str(_tiny_groups(tmp_path / "g.jsonl")), "--dataset", str(tiny_dir),
            "--model", str(tiny_bert), "--batch-queries", "1", "--group-size", "3", "--min-steps", "0",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "1 groups without a negative left out" in capsys.readouterr().out
    history = (out / "loss.csv").read_text()
    assert main(args) == 2
    assert "is not empty" in capsys.readouterr().err and (out / "loss.csv").read_text() == history
    (out / "stray.txt").write_text("from the earlier run")
    assert main([*args, "--overwrite"]) == 0
    assert not (out / "stray.txt").exists() and (out / "loss.csv").read_text().count("\n") == history.count("\n")
    assert main([*args, "--resume"]) == 0  # finished: resuming changes nothing
    assert (out / "loss.csv").read_text().count("\n") == history.count("\n")
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    assert main([*args[:-1], str(precious), "--overwrite"]) == 2
    assert "holds files tandem did not write" in capsys.readouterr().err and (precious / "notes.txt").exists()


def test_groups_without_negatives_are_counted_not_silently_dropped(caplog: pytest.LogCaptureFixture) -> None:
    from core.data.groups import Passage, TrainingGroup, groups_with_negatives

    groups = [
        TrainingGroup("q1", "a", [Passage("d1")], [Passage("d2")]),
        TrainingGroup("q2", "b", [Passage("d3")], []),
    ]
    kept, dropped = groups_with_negatives(groups)
    assert [g.query_id for g in kept] == ["q1"] and dropped == 1
    assert "1 of 2 groups have no negative passage" in caplog.text


def test_rerank_cli_reranks_the_split_s_queries(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    from core.data.runs import read_run, write_run

    write_run({"q1": [("d1", 2.0), ("d2", 1.0)], "q2": [("d2", 2.0), ("d3", 1.0), ("d4", 0.5)]}, tmp_path / "r.trec")
    args = ["rerank", "--run", str(tmp_path / "r.trec"), "--dataset", str(tiny_dir), "--model", str(tiny_bert),
            "--allow-untrained-head", "--depth", "2", "--out", str(tmp_path / "o.trec")]  # fmt: skip
    assert main(args) == 0 and set(read_run(tmp_path / "o.trec")) == {"q1", "q2"}
    assert main([*args, "--split", "test"]) == 0  # q1 is judged in train only
    reranked = read_run(tmp_path / "o.trec")
    assert set(reranked) == {"q2"} and reranked["q2"][2][0] == "d4"  # below the depth: first-stage order
    assert "1 of 2 queries" in caplog.text and "not judged in 'test'" in caplog.text
    write_run({"q1": [("d1", 2.0)]}, tmp_path / "train-only.trec")
    assert main([*args[:2], str(tmp_path / "train-only.trec"), *args[3:], "--split", "test"]) == 2
    assert "no query of" in capsys.readouterr().err


def test_a_run_with_no_judged_query_warns_that_its_zeros_mean_nothing(caplog: pytest.LogCaptureFixture) -> None:
    from pipelines.evaluation.metrics import evaluate

    result = evaluate({"q9": [("d1", 1.0)]}, {"q1": {"d1": 1}})
    assert result.aggregate["nDCG@10"] == 0.0
    assert "none of the run's 1 queries is judged" in caplog.text


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("docids.txt", "delete", "docids.txt: missing or damaged"),
        ("docids.txt", "truncate", "complete lines, the index holds 12"),
        ("index.faiss", "delete", "index.faiss: missing or damaged"),
        ("index.faiss", "truncate", "index.faiss: missing or damaged"),
        ("meta.json", "truncate", "meta.json: missing or damaged"),
        ("embeddings.npy", "delete", "embeddings.npy: missing or damaged"),
        ("embeddings.npy", "truncate", "embeddings.npy: missing or damaged"),
    ],
)
def test_a_damaged_index_folder_is_a_one_line_error(
    name: str, damage: str, message: str, tiny_dir: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    from retrieval.index import DenseIndex, build_dense_index

    build_dense_index(str(tiny_bert), tiny_dir / "corpus.jsonl", tmp_path / "idx")
    DenseIndex(tmp_path / "idx").embeddings()
    path = tmp_path / "idx" / name
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TandemError, match=message):
        DenseIndex(tmp_path / "idx").embeddings()


def test_an_unknown_model_offline_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from rerank.model import CrossEncoder
    from retrieval.encoder import BiEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load in (BiEncoder.from_pretrained, CrossEncoder.from_pretrained):
        with pytest.raises(TandemError, match="cannot load model 'no-such-org/no-such-model'.*HF_HUB_OFFLINE"):
            load("no-such-org/no-such-model")


def test_a_corpus_with_empty_passages_runs_end_to_end_with_one_warning(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real collections have empty passages; Anserini skips them, so BM25 counts them out (one warning
    naming them) and the dense index keeps them."""
    import shutil

    import yaml

    data = tmp_path / "with-empty"
    shutil.copytree(tiny_dir, data)
    with open(data / "corpus.jsonl", "a") as corpus:
        corpus.write('{"_id": "e1", "title": "", "text": ""}\n{"_id": "e2", "title": " ", "text": "  "}\n')
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "split": {"train": "test", "test": "test"}, "dense": {"model": str(tiny_bert)}, "mining": {"title_queries_per_query": 1},
        "reranker": {"model": str(tiny_bert), "batch_queries": 1, "group_size": 3}, "rerank": {"depth": 5},
    }))  # fmt: skip
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="retrieval.bm25"):
        assert main(["run", "--dataset", str(data), "--out", str(out), "--config", str(config), "--quick"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "retrieval.bm25"]
    assert len(warnings) == 1 and "2 of 14 passages" in warnings[0] and "(e1, e2)" in warnings[0]
    assert (out / "report" / "report.md").is_file()
    docids = (out / "dense-zeroshot" / "index" / "docids.txt").read_text().split()
    assert {"e1", "e2"} <= set(docids)


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path: Path) -> None:
    from core.data.runs import read_run

    run = tmp_path / "run.trec"
    run.write_bytes(b"\xef\xbb\xbf3 Q0 d1 1 2.0 t\n3 Q0 d2 2 1.0 t\n")
    assert list(read_run(run)) == ["3"]
    qrels = tmp_path / "qrels.tsv"
    qrels.write_bytes(b"\xef\xbb\xbfquery-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert load_qrels(qrels) == {"q1": {"d1": 1}}


def test_a_pair_judged_twice_with_different_grades_names_both_lines(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t1\nq1\td1\t2\n")
    with pytest.raises(DataFormatError, match=r"qrels.tsv:4: 'q1' / 'd1' is judged 2 here and 1 on line 2"):
        load_qrels(qrels)
    qrels.write_text("q1 0 d1 1\nq1 0 d2 2\n")  # TREC qrels, space-separated
    assert load_qrels(qrels) == {"q1": {"d1": 1, "d2": 2}}


def test_ranks_that_contradict_scores_are_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from core.data.runs import read_run

    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 5.0 t\nq2 Q0 d3 1 2.0 t\n")
    with caplog.at_level(logging.WARNING, logger="core.data.runs"):
        assert read_run(run)["q1"][0] == ("d2", 5.0)
    assert "in 1 of 2 queries (e.g. 'q1') a better rank has a lower score" in caplog.text


def test_mine_refuses_a_reranker_without_a_trained_head(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["mine", "--dataset", str(tiny_dir), "--split", "test", "--bm25-index", str(tmp_path / "i"),
            "--reranker", str(tiny_bert), "--out", str(tmp_path / "g.jsonl")]  # fmt: skip
    assert main(argv) == 2
    assert "is not a trained cross-encoder" in capsys.readouterr().err
    assert not (tmp_path / "g.jsonl").exists()


def test_resume_with_other_options_is_refused_and_models_follow_the_umask(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "ce"
    args = ["reranker", "train", "--groups", str(_tiny_groups(tmp_path / "g.jsonl")), "--dataset", str(tiny_dir),
            "--model", str(tiny_bert), "--batch-queries", "1", "--group-size", "3", "--save-every", "1",
            "--min-steps", "0", "--out", str(out)]  # fmt: skip
    mask = os.umask(0o022)
    try:
        assert main(args) == 0
    finally:
        os.umask(mask)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o644  # was 0o600
    history = (out / "loss.csv").read_text()
    assert main([*args, "--resume", "--lr", "1e-3", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "with other options" in err and "epochs 1.0 -> 3.0" in err and "learning_rate" in err
    assert (out / "loss.csv").read_text() == history
    assert main([*args, "--resume"]) == 0  # the same options: fine
    assert not list(out.glob("checkpoint-*")) and "tandem cross-encoder" in (out / "README.md").read_text()


def test_a_positive_listed_as_its_own_negative_is_refused(tmp_path: Path) -> None:
    from core.data.groups import read_groups

    path = tmp_path / "g.jsonl"
    path.write_text('{"query_id": "q", "query": "x", "positives": [{"id": "d1"}], "negatives": [{"id": "d1"}]}\n')
    with pytest.raises(DataFormatError, match=r"g.jsonl:1: passage 'd1' is listed both as a positive and as a neg"):
        read_groups(path)


def test_an_index_without_an_encoder_fingerprint_is_refused(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    from retrieval.index import DenseIndex

    out = tmp_path / "idx"
    assert main(["index", "build", "--dataset", str(tiny_dir), "--encoder", str(tiny_bert), "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "encoder_fingerprint": None}))
    with pytest.raises(TandemError, match="records no fingerprint of its encoder's weights"):
        DenseIndex(out).check()


def test_reranker_train_keeps_the_weights_dev_chose(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """With --dev-run and --dev-qrels the sub-command evaluates on dev as `tandem run` does; half of the pair
    is refused before any training."""
    dev_run = tmp_path / "dev.trec"
    dev_run.write_text("".join(f"q2 Q0 d{rank} {rank} {10 - rank} bm25\n" for rank in range(1, 8)))
    dev_qrels = tmp_path / "dev.tsv"
    dev_qrels.write_text("query-id\tcorpus-id\tscore\nq2\td2\t1\n")
    args = ["reranker", "train", "--groups", str(_tiny_groups(tmp_path / "g.jsonl")), "--dataset", str(tiny_dir),
            "--model", str(tiny_bert), "--batch-queries", "1", "--group-size", "3", "--min-steps", "4",
            "--max-steps", "4", "--eval-every", "2", "--out", str(tmp_path / "ce")]  # fmt: skip
    assert main([*args, "--dev-run", str(dev_run)]) == 2
    assert "needs all three of --dev-run, --dev-qrels and --dataset" in capsys.readouterr().err
    assert not (tmp_path / "ce").exists()
    assert main([*args, "--dev-run", str(dev_run), "--dev-qrels", str(dev_qrels)]) == 0
    curve = (tmp_path / "ce" / "dev-curve.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in curve[1:]] == ["2", "4"]
