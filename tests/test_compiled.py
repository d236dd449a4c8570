"""Compiled bf16 inference (`--precision bf16-compiled`, `core.compiled`): the compiled forward pass gives
eager bf16's embeddings and scores, compiles once per model and job, and is refused where it cannot run.
Forced here, so it runs on CI's CPU whether or not `auto` would pick it there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from core.errors import TandemError
from core.precision import resolved_precision
from rerank.model import CrossEncoder
from retrieval.encoder import BiEncoder
from tests.conftest import TINY
from tests.tiny_models import tiny_texts


def test_compiled_embeddings_and_scores_match_eager_bf16(tiny_bert: Path) -> None:
    texts = tiny_texts(TINY)
    encoder = BiEncoder.from_pretrained(tiny_bert)
    eager = encoder.encode(texts, "passage", 4, "bf16", show_progress=False)
    counters.clear()
    compiled = encoder.encode(texts, "passage", 4, "bf16-compiled", show_progress=False)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1  # it did compile (torch.compile falls back to eager silently on some errors)
    assert np.sum(eager * compiled, axis=1).min() > 0.999
    forward = encoder._inference["passage", "bf16-compiled"]
    encoder.encode(texts[:5], "passage", 4, "bf16-compiled", show_progress=False)  # new lengths, a batch of one
    assert encoder._inference["passage", "bf16-compiled"] is forward
    assert counters["stats"]["unique_graphs"] == graphs  # no recompilation: shapes are dynamic

    model = CrossEncoder.from_pretrained(tiny_bert, max_length=64)
    queries = [texts[0]] * len(texts)
    eager_scores = model.score(queries, texts, 4, "bf16", show_progress=False)
    compiled_scores = model.score(queries, texts, 4, "bf16-compiled", show_progress=False)
    np.testing.assert_allclose(compiled_scores, eager_scores, atol=0.02 * np.abs(eager_scores).max() + 1e-3)
    assert compiled_scores.dtype == np.float32


def test_compiled_precision_is_recorded_as_bf16_and_refused_without_a_compiler(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolved_precision("bf16-compiled", torch.device("cpu")) == "bf16"
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setenv("PATH", "/nonexistent")
    encoder = BiEncoder.from_pretrained(tiny_bert)
    with pytest.raises(TandemError, match="C\\+\\+ compiler"):
        encoder.encode(["a text"], "passage", 4, "bf16-compiled", show_progress=False)


def test_auto_compiles_only_large_bf16_jobs_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.precision import BULK_COMPILE_MIN, bulk_encode_precision, bulk_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setenv("TANDEM_CPU_BF16", "1")
    monkeypatch.setenv("TANDEM_CPU_COMPILE", "1")
    assert bulk_encode_precision("auto", cpu, BULK_COMPILE_MIN) == "bf16-compiled"
    assert bulk_encode_precision("auto", cpu, BULK_COMPILE_MIN - 1) == "auto"  # compiling would not repay
    assert bulk_encode_precision("bf16", cpu, 10**6) == "bf16"  # an explicit precision is kept
    assert bulk_encode_precision("auto", cuda, 10**6) == "auto"
    monkeypatch.setenv("TANDEM_CPU_COMPILE", "0")
    assert bulk_encode_precision("auto", cpu, 10**6) == "auto"
    monkeypatch.delenv("TANDEM_CPU_COMPILE")
    monkeypatch.setattr("core.compiled.compile_available", lambda: False)
    assert bulk_encode_precision("auto", cpu, 10**6) == "auto"  # no C++ compiler: eager
    monkeypatch.setattr("core.compiled.compile_available", lambda: True)
    assert bulk_encode_precision("auto", cpu, 10**6) == "bf16-compiled"
    monkeypatch.setenv("TANDEM_CPU_BF16", "0")
    assert bulk_encode_precision("auto", cpu, 10**6) == "auto"  # no fast bf16: fp32, not compiled

    monkeypatch.setenv("TANDEM_CPU_BF16", "1")
    monkeypatch.setenv("TANDEM_CPU_INT8", "1")
    assert bulk_precision("auto", cpu, BULK_COMPILE_MIN) == "int8"  # scoring: int8 is faster still
    monkeypatch.setenv("TANDEM_CPU_INT8", "0")
    assert bulk_precision("auto", cpu, BULK_COMPILE_MIN) == "bf16-compiled"  # without the int8 extra
