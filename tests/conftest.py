"""Test environment: no network, caches in a temp folder, real BEIR data from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "data" / "tiny"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TANDEM_OFFLINE"] = "1"
os.environ.setdefault("TANDEM_DATA_DIR", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `precision=auto` picks bf16 on CPUs with AMX or AVX512-BF16; tests that compare numbers exactly must not
# depend on the CI machine's CPU, so every test and every process a test starts sees a CPU without it
# (bf16 is tested explicitly).
os.environ["TANDEM_CPU_BF16"] = "0"
# Likewise `auto` quantises large reranking jobs to int8 where the int8 extra is installed: off, so the
# numbers do not depend on the install (int8 and the choice itself are tested explicitly).
os.environ["TANDEM_CPU_INT8"] = "0"
# and compiles large bf16 jobs with torch.compile: off too (the compiled path is tested explicitly)
os.environ["TANDEM_CPU_COMPILE"] = "0"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_CACHE", str(tmp_path_factory.getbasetemp() / "tandem-cache"))


@pytest.fixture
def tiny_dir() -> Path:
    return TINY


def real_dataset(name: str) -> Path:
    """The real BEIR folder for an integration test; missing data is a failure, not a skip."""
    root = Path(os.environ["TANDEM_DATA_DIR"]) / name
    assert (root / "corpus.jsonl").is_file(), f"integration data missing: {root} (set TANDEM_DATA_DIR)"
    return root


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT folder whose vocabulary covers data/tiny."""
    from tests.tiny_models import build_tiny_bert, tiny_texts

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), tiny_texts(TINY))
