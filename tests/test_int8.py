"""int8 inference (OpenVINO, `core.int8`) on the tiny random BERT: outputs close to fp32, one quantised
model reused, calibration the same for every shard, and training refusing int8."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import TandemError
from core.int8 import calibration_sample
from rerank.model import CrossEncoder
from retrieval.encoder import BiEncoder
from tests.conftest import REPO, TINY, real_dataset
from tests.tiny_models import tiny_texts


def test_calibration_sample_spreads_over_lengths_and_is_deterministic() -> None:
    lengths = [(i * 37) % 1000 for i in range(1000)]
    sample = calibration_sample(lengths, size=10)
    assert len(sample) == len(set(sample)) == 10
    assert sample == calibration_sample(lengths, size=10)
    picked = sorted(lengths[i] for i in sample)
    assert picked[0] < 50 and picked[-1] > 850  # both ends of the length range, not the first ten inputs
    assert calibration_sample([5, 3], size=10) == [1, 0]


def test_int8_embeddings_are_close_to_fp32_and_the_model_is_quantised_once(tiny_bert: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_bert)
    texts = tiny_texts(TINY)
    fp32 = encoder.encode(texts, "passage", 8, "fp32", show_progress=False)
    int8 = encoder.encode(texts, "passage", 8, "int8", show_progress=False)
    cosine = np.sum(fp32 * int8, axis=1)
    assert cosine.mean() > 0.98, cosine.mean()
    assert not np.array_equal(fp32, int8)  # it did run quantised
    quantised = encoder.prepare_int8("passage", ["another text"])
    assert encoder.prepare_int8("passage", texts) is quantised  # calibrated once, then reused
    np.testing.assert_array_equal(encoder.encode(texts, "passage", 8, "int8", show_progress=False), int8)
    encoder.train()
    assert encoder.prepare_int8("passage", texts) is not quantised  # trained weights: quantised again


def test_int8_quantisation_prints_nothing(tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NNCF draws its own progress bars and the export trips a transformers warning: noise in a run's
    log, since tandem's own progress bar already covers the job."""
    model = CrossEncoder.from_pretrained(tiny_bert)
    model.score(["q"] * 6, tiny_texts(TINY)[:6], 4, "int8", show_progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and "Statistics collection" not in captured.err, captured


@pytest.mark.integration
def test_int8_scores_track_fp32() -> None:
    """On all-MiniLM-L6-v2 with a seeded head and SciFact pairs: the tiny random BERT's logits hardly vary
    between inputs (std 5e-5), so quantisation noise would swamp any comparison there."""
    corpus = [json.loads(line) for line in (real_dataset("scifact") / "corpus.jsonl").open()][:48]
    passages = [f"{r['title']} {r['text']}" for r in corpus]
    queries = ["which proteins regulate cell death", "vitamin D and bone density"] * 24
    torch.manual_seed(0)
    model = CrossEncoder.from_pretrained(None, max_length=128)
    fp32 = model.score(queries, passages, 16, "fp32", show_progress=False)
    int8 = model.score(queries, passages, 16, "int8", show_progress=False)
    assert np.corrcoef(fp32, int8)[0, 1] > 0.98
    assert not np.array_equal(fp32, int8)


def test_int8_shards_calibrate_alike(tiny_bert: Path, tmp_path: Path) -> None:
    """Each shard quantises on the corpus's first passages, so two int8 shards equal one int8 pass."""
    from retrieval.index import encode_corpus_shard

    corpus = TINY / "corpus.jsonl"
    whole = encode_corpus_shard(BiEncoder.from_pretrained(tiny_bert), corpus, tmp_path / "one", precision="int8")
    parts = [
        encode_corpus_shard(BiEncoder.from_pretrained(tiny_bert), corpus, tmp_path / "two", i, 2, precision="int8")
        for i in range(2)
    ]
    joined = np.concatenate([np.load(part / "embeddings.npy") for part in parts])
    np.testing.assert_allclose(joined, np.load(whole / "embeddings.npy"), rtol=0, atol=1e-6)
    assert json.loads((whole / "shard.json").read_text())["precision"] == "int8"
    with pytest.raises(TandemError, match="encoded differently"):  # an fp32 rerun may not reuse int8 vectors
        encode_corpus_shard(BiEncoder.from_pretrained(tiny_bert), corpus, tmp_path / "one", precision="fp32")


def test_auto_quantises_large_cpu_jobs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` means int8 for a bulk job on a CPU with the extra installed; never for small jobs, other
    precisions or CUDA; the environment variable overrides the check for the extra."""
    from core import int8
    from core.precision import BULK_INT8_MIN, CPU_INT8_ENV, bulk_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(CPU_INT8_ENV)  # decide as outside the tests
    assert int8.int8_available()  # the test environment installs the extra
    assert bulk_precision("auto", cpu, BULK_INT8_MIN) == "int8"
    assert bulk_precision("auto", cpu, BULK_INT8_MIN - 1) == "auto"
    assert bulk_precision("bf16", cpu, 10**6) == "bf16" and bulk_precision("fp32", cpu, 10**6) == "fp32"
    assert bulk_precision("auto", cuda, 10**6) == "auto"
    monkeypatch.setattr(int8, "int8_available", lambda: False)
    assert bulk_precision("auto", cpu, 10**6) == "auto"  # without the extra: bf16/fp32 as before
    monkeypatch.setenv(CPU_INT8_ENV, "1")
    assert bulk_precision("auto", cpu, 10**6) == "int8"
    monkeypatch.setenv(CPU_INT8_ENV, "0")
    assert bulk_precision("auto", cpu, 10**6) == "auto"


def test_auto_reranks_a_large_job_in_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    """`rerank_run` with `auto` scores exactly as with an explicit int8 once the job is large enough,
    and as `auto` always did below the threshold."""
    from core import precision
    from core.data.beir import load_corpus
    from rerank.rerank import rerank_run

    corpus = load_corpus(real_dataset("scifact") / "corpus.jsonl")
    queries = {"q": "which proteins regulate cell death"}
    run = {"q": [(doc_id, 40.0 - i) for i, doc_id in enumerate(corpus.ids[:40])]}
    torch.manual_seed(0)
    model = CrossEncoder.from_pretrained(None, max_length=128)
    monkeypatch.setenv(precision.CPU_INT8_ENV, "1")
    monkeypatch.setattr(precision, "BULK_INT8_MIN", 40)
    auto = rerank_run(run, queries, corpus, model, depth=40, show_progress=False)
    assert auto == rerank_run(run, queries, corpus, model, depth=40, show_progress=False, precision="int8")
    small = rerank_run(run, queries, corpus, model, depth=39, show_progress=False)  # 39 pairs: below it
    assert small == rerank_run(run, queries, corpus, model, depth=39, show_progress=False, precision="fp32")


def test_training_refuses_int8() -> None:
    from core.precision import autocast_dtype

    with pytest.raises(ValueError, match="inference precision"):
        autocast_dtype("int8", torch.device("cpu"))
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "reranker", "train", "--precision", "int8", "--help"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "invalid choice: 'int8'" in result.stderr


def test_missing_openvino_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from core import int8

    real_import = builtins.__import__

    def no_openvino(name: str, *args, **kwargs):
        if name in ("openvino", "nncf"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(TandemError, match="install.sh cpu,test,int8"):
        int8.require_openvino()
