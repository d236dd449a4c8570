"""Bi-encoder: pooling, HF/sentence-transformers compatibility, the DPR loss (single and 2-process DDP),
sharded encoding, FAISS search and the index's refusal of another corpus or encoder."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from core.data.beir import BeirDataset
from core.data.runs import read_run
from core.errors import TandemError
from core.training.losses import ListwiseNLLLoss
from pipelines.cli import main
from retrieval.encoder import BiEncoder, BiEncoderConfig
from retrieval.index import DenseIndex, build_index, encode_corpus_shard
from retrieval.train import in_batch_nll
from tests import ddp_worker


def test_mean_pooling_ignores_padding(tiny_bert: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_bert)
    alone = encoder.encode(["aspirin heart"], show_progress=False)
    padded = encoder.encode(
        ["aspirin heart", "aspirin reduces the risk of a first heart attack in adults"], show_progress=False
    )
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
    assert np.linalg.norm(alone[0]) == pytest.approx(1.0, abs=1e-5)


def test_saved_encoder_loads_in_sentence_transformers(tiny_bert: Path, tmp_path: Path) -> None:
    encoder = BiEncoder.from_pretrained(
        tiny_bert, BiEncoderConfig(pooling="mean", normalize=True, passage_max_length=128)
    )
    encoder.save_pretrained(tmp_path / "bi")
    reloaded = BiEncoder.from_pretrained(tmp_path / "bi")
    assert reloaded.config == encoder.config
    texts = ["vitamin d increases bone density", "smoking causes lung cancer"]
    ours = encoder.encode(texts, show_progress=False)
    np.testing.assert_allclose(reloaded.encode(texts, show_progress=False), ours, atol=1e-6)
    sentence_transformers = pytest.importorskip("sentence_transformers")
    st = sentence_transformers.SentenceTransformer(str(tmp_path / "bi"), device="cpu")
    assert st.max_seq_length == 128
    np.testing.assert_allclose(st.encode(texts), ours, atol=1e-5)


def test_separate_towers_round_trip(tiny_bert: Path, tmp_path: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_bert, BiEncoderConfig(shared=False))
    assert encoder.query_model is not encoder.passage_model
    encoder.save_pretrained(tmp_path / "two")
    assert (tmp_path / "two" / "query" / "config.json").is_file()
    assert not BiEncoder.from_pretrained(tmp_path / "two").config.shared


def test_in_batch_nll_scores_every_passage(tiny_bert: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_bert, BiEncoderConfig(temperature=0.1)).eval()
    batch = ddp_worker.global_batch()
    q = encoder.encode([sample.query for sample in batch], "query", show_progress=False)
    p = encoder.encode([t for sample in batch for t in sample.texts], "passage", show_progress=False)
    scores = torch.tensor(q @ p.T / 0.1)  # 4 queries x 8 passages; positives at columns 0, 2, 4, 6
    expected = ListwiseNLLLoss()(scores, torch.tensor([0, 2, 4, 6])).item()
    masked = scores.clone()
    masked[0, 6] = float("-inf")  # the first query's qrels judge the last group's positive relevant
    expected_masked = ListwiseNLLLoss()(masked, torch.tensor([0, 2, 4, 6])).item()
    with torch.no_grad():
        unmasked = in_batch_nll(encoder, encoder, batch, 0.1, mask_false_negatives=False).item()
        assert unmasked == pytest.approx(expected, rel=1e-4)
        assert in_batch_nll(encoder, encoder, batch, 0.1).item() == pytest.approx(expected_masked, rel=1e-4)
    assert expected_masked < expected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single_process(tiny_bert: Path, tmp_path: Path) -> None:
    loss, grads = ddp_worker.single_process(tiny_bert)
    mp.spawn(ddp_worker.worker, args=(2, str(tiny_bert), free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["loss"] / 2 == pytest.approx(
            loss, rel=1e-5
        )  # every process computes the global loss x world size
        assert result["grads"].keys() == grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(result["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_sharded_encoding_and_search(tiny_bert: Path, tiny_dir: Path, tmp_path: Path) -> None:
    dataset = BeirDataset(tiny_dir)
    encoder = BiEncoder.from_pretrained(tiny_bert)
    for shard in (0, 1, 2):
        encode_corpus_shard(encoder, dataset.corpus_path, tmp_path / "shards", shard, 3, batch_size=4)
    timings = [json.loads((tmp_path / "shards" / f"shard-{i}" / "timing.json").read_text()) for i in range(3)]
    assert [t["passages"] for t in timings] == [4, 4, 4] and all(t["seconds"] > 0 for t in timings)
    meta = build_index(
        str(tiny_bert), encoder, dataset.corpus_path, tmp_path / "shards", tmp_path / "idx", num_shards=3
    )
    assert meta.count == 12 and meta.dim == 32
    index = DenseIndex(tmp_path / "idx")
    assert index.ids == dataset.corpus.ids
    whole = encoder.encode([dataset.corpus.passage(d) for d in dataset.corpus.ids], show_progress=False)
    np.testing.assert_allclose(index.embeddings(), whole, atol=1e-5)
    scores, hits = index.search(whole[:3], k=2)  # a passage's own embedding finds itself first
    assert [row[0] for row in hits] == dataset.corpus.ids[:3]
    with pytest.raises(TandemError, match="fingerprints differ"):
        index.check(corpus_fingerprint="0" * 32)
    with pytest.raises(TandemError, match="built with encoder"):
        index.check(encoder_path=str(tmp_path))


@pytest.mark.parametrize("factory", ["HNSW8", "IVF2,Flat"])
def test_other_factories(tiny_bert: Path, tiny_dir: Path, tmp_path: Path, factory: str) -> None:
    dataset = BeirDataset(tiny_dir)
    encoder = BiEncoder.from_pretrained(tiny_bert)
    encode_corpus_shard(encoder, dataset.corpus_path, tmp_path / "shards")
    build_index(str(tiny_bert), encoder, dataset.corpus_path, tmp_path / "shards", tmp_path / "idx", factory=factory)
    _, hits = DenseIndex(tmp_path / "idx").search(np.load(tmp_path / "idx" / "embeddings.npy")[:3], k=3)
    assert [row[0] for row in hits] == dataset.corpus.ids[:3]  # each passage's own embedding finds it first
    assert all(len(row) == 3 for row in hits)


def test_cli_train_index_search(tiny_bert: Path, tiny_dir: Path, tmp_path: Path, capsys) -> None:
    """Train (3 queries in batches of 2: one step an epoch, so --min-steps 3 runs a third epoch), index,
    search, mine."""
    out = tmp_path / "bi"
    common = ["--dataset", str(tiny_dir)]
    assert (
        main(
            [
                "retriever",
                "train",
                *common,
                "--split",
                "test",
                "--out",
                str(out),
                "--model",
                str(tiny_bert),
                "--batch-queries",
                "2",
                "--epochs",
                "2",
                "--min-steps",
                "3",
            ]
        )
        == 0
    )
    assert "trained 3 steps" in capsys.readouterr().out
    assert (out / "bm25-negatives.jsonl").is_file() and (out / "model.safetensors").is_file()
    assert main(["index", "build", *common, "--encoder", str(out), "--out", str(tmp_path / "idx")]) == 0
    assert not (tmp_path / "idx.shards").exists()
    assert (
        main(["dense", "search", "--index", str(tmp_path / "idx"), *common, "--out", str(tmp_path / "run"), "--k", "5"])
        == 0
    )
    run = read_run(tmp_path / "run")
    assert set(run) == {"q2", "q5", "q6"} and all(len(h) == 5 for h in run.values())
    assert (
        main(
            [
                "mine",
                *common,
                "--split",
                "test",
                "--index",
                str(tmp_path / "idx"),
                "--out",
                str(tmp_path / "g.jsonl"),
                "--margin",
                "0.99",
            ]
        )
        == 0
    )


def test_torchrun_requires_mined_negatives(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["retriever", "train", "--dataset", str(tiny_dir), "--out", str(tmp_path / "bi")]) == 2
    assert "pass --negatives" in capsys.readouterr().err


def test_continued_training_keeps_the_saved_config(tiny_bert: Path, tiny_dir: Path, tmp_path: Path) -> None:
    start = tmp_path / "cls"
    BiEncoder.from_pretrained(
        tiny_bert, BiEncoderConfig(pooling="cls", temperature=0.1, passage_max_length=96)
    ).save_pretrained(start)
    common = [
        "retriever",
        "train",
        "--dataset",
        str(tiny_dir),
        "--split",
        "test",
        "--batch-queries",
        "2",
        "--epochs",
        "1",
    ]
    assert main([*common, "--model", str(start), "--out", str(tmp_path / "next")]) == 0
    config = BiEncoder.from_pretrained(tmp_path / "next").config
    assert (config.pooling, config.temperature, config.passage_max_length) == ("cls", 0.1, 96)
    assert main([*common, "--model", str(start), "--out", str(tmp_path / "mean"), "--pooling", "mean"]) == 0
    assert BiEncoder.from_pretrained(tmp_path / "mean").config.pooling == "mean"


def test_ivf_and_hnsw_are_searched_with_real_breadth_not_faiss_defaults() -> None:
    """FAISS searches IVF with nprobe=1 and HNSW with efSearch=16 unless told otherwise; tandem sets both."""
    import faiss

    from retrieval.index.search import set_search_parameters

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, 16)).astype("float32")
    queries = rng.standard_normal((50, 16)).astype("float32")
    exact = faiss.IndexFlatIP(16)
    exact.add(vectors)
    truth = exact.search(queries, 10)[1]
    ivf = faiss.index_factory(16, "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors)
    ivf.add(vectors)
    at_one = ivf.search(queries, 10)[1]
    assert set_search_parameters(ivf) == {"nprobe": 16}
    assert (ivf.search(queries, 10)[1] == truth).all()  # every list visited: exact
    assert not (at_one == truth).all()  # what tandem used to return
    hnsw = faiss.index_factory(16, "HNSW8", faiss.METRIC_INNER_PRODUCT)
    hnsw.add(vectors)
    assert set_search_parameters(hnsw, ef_search=300) == {"efSearch": 300}
    assert faiss.downcast_index(hnsw).hnsw.efSearch == 300
    refined = faiss.index_factory(16, "IVF16,PQ4x4,RFlat", faiss.METRIC_INNER_PRODUCT)
    refined.train(vectors)
    refined.add(vectors)
    faiss.extract_index_ivf(refined).nprobe = 16  # every list: what is lost is PQ's, not IVF's
    coarse = refined.search(queries, 10)[1]  # FAISS's k_factor 1: the PQ top 10, re-scored among themselves
    assert set_search_parameters(refined, refine_factor=50) == {"k_factor": 50, "nprobe": 16}
    rescored = refined.search(queries, 10)[1]

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))

    assert recall(coarse) < 0.5 and recall(rescored) > 0.95


def test_auto_factory_by_corpus_size(tmp_path: Path) -> None:
    """`--factory auto`: exact below 1M passages, IVF-Flat to 10M, IVF-SQ8 from there; a FAISS factory
    string every time, with lists FAISS can train on the sample."""
    import faiss

    from retrieval.index.build import index_vectors
    from retrieval.index.search import auto_factory

    assert auto_factory(5_183) == "Flat" and auto_factory(999_999) == "Flat"
    assert auto_factory(1_000_000) == "IVF4096,Flat"  # 4 sqrt(1M) = 4,000 -> 4,096
    assert auto_factory(8_800_000) == "IVF4096,Flat"  # capped: 200,000 / 39 training points per list
    assert auto_factory(8_800_000, train_sample=1_000_000) == "IVF16384,Flat"
    assert auto_factory(20_000_000) == "IVF4096,SQ8"
    for count in (1_000_000, 20_000_000):
        faiss.index_factory(16, auto_factory(count), faiss.METRIC_INNER_PRODUCT)
    vectors = np.random.default_rng(0).standard_normal((300, 16)).astype("float32")
    assert index_vectors(auto_factory(len(vectors)), vectors).ntotal == 300


def test_distillation_from_scored_groups(tiny_dir: Path, tiny_bert: Path, tmp_path: Path) -> None:
    """`reranker score-groups` stores a teacher score on every passage; `retriever train --loss kl` then
    lowers the KL to it (and refuses groups without teacher scores)."""
    import csv

    from core.data.beir import BeirDataset
    from core.data.groups import read_groups
    from rerank.model import CrossEncoder

    CrossEncoder.from_pretrained(tiny_bert).save_pretrained(tmp_path / "ce")
    mine = ["mine", "--dataset", str(tiny_dir), "--split", "test", "--bm25-index", str(tmp_path / "bm25"),
            "--num-negatives", "4", "--depth", "10", "--out", str(tmp_path / "g.jsonl")]  # fmt: skip
    assert main(["bm25", "index", "--dataset", str(tiny_dir), "--out", str(tmp_path / "bm25")]) == 0
    assert main(mine) == 0
    score = ["reranker", "score-groups", "--groups", str(tmp_path / "g.jsonl"), "--dataset", str(tiny_dir),
             "--model", str(tmp_path / "ce"), "--out", str(tmp_path / "scored.jsonl")]  # fmt: skip
    assert main(score) == 0
    groups = read_groups(tmp_path / "scored.jsonl", BeirDataset(tiny_dir).corpus)
    assert all(p.teacher is not None for g in groups for p in [*g.positives, *g.negatives])
    train = ["retriever", "train", "--dataset", str(tiny_dir), "--split", "test", "--model", str(tiny_bert),
             "--group-size", "4", "--batch-queries", "3", "--epochs", "12", "--lr", "1e-3", "--loss", "kl",
             "--label-weight", "0"]  # fmt: skip
    # --label-weight 0: the KL alone (the label term has its own test in test_losses)
    assert main([*train, "--negatives", str(tmp_path / "g.jsonl"), "--out", str(tmp_path / "no")]) == 2
    assert main([*train, "--negatives", str(tmp_path / "scored.jsonl"), "--out", str(tmp_path / "kl")]) == 0
    losses = [float(row["loss"]) for row in csv.DictReader(open(tmp_path / "kl" / "loss.csv"))]
    assert len(losses) >= 2 and losses[-1] < losses[0] / 2  # logged every 10 steps


@pytest.mark.parametrize("pooling", ["cls", "mean", "lasttoken", "max"])
def test_sentence_transformers_folders_encode_as_sentence_transformers_does(
    tiny_bert: Path, tmp_path: Path, pooling: str
) -> None:
    """A folder saved by sentence-transformers (any pooling, with or without Normalize, with prompts)
    encodes to the embeddings `SentenceTransformer.encode` gives."""
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(tiny_bert), max_seq_length=32)
    modules = [transformer, models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode=pooling)]
    if pooling != "max":
        modules.append(models.Normalize())
    prompts = {"query": "query: ", "passage": "passage: "} if pooling == "mean" else None
    st = SentenceTransformer(modules=modules, device="cpu", prompts=prompts)
    st.save(str(tmp_path / "st"))
    texts = ["aspirin reduces heart attack risk", "vitamin d increases bone density in elderly women", "salt"]
    encoder = BiEncoder.from_pretrained(tmp_path / "st")
    assert (encoder.config.pooling, encoder.config.normalize) == (pooling, pooling != "max")
    for kind in ("query", "passage"):
        expected = st.encode(texts, prompt_name=kind if prompts else None, convert_to_numpy=True)
        ours = encoder.encode(texts, kind, precision="fp32", show_progress=False)
        np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_a_plain_model_folder_says_what_tandem_assumed(tiny_bert: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="retrieval.encoder"):
        BiEncoder.from_pretrained(tiny_bert)
    assert "assuming mean pooling, normalised embeddings" in caplog.text
