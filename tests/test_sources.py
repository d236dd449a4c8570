"""`--dataset` resolves to a path, $TANDEM_DATA_DIR/NAME or the cache; offline, a missing name is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.sources import resolve_dataset
from core.errors import TandemError


def test_path_and_data_dir(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_dataset(str(tiny_dir)) == tiny_dir
    monkeypatch.setenv("TANDEM_DATA_DIR", str(tiny_dir.parent))
    assert resolve_dataset("tiny") == tiny_dir


def test_offline_missing_dataset_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TANDEM_DATA_DIR", str(tmp_path))
    with pytest.raises(TandemError, match=r"dataset 'nfcorpus' is not available locally.*TANDEM_DATA_DIR"):
        resolve_dataset("nfcorpus")
    assert not (tmp_path / "nfcorpus").exists()


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(TandemError, match="does not exist"):
        resolve_dataset(str(tmp_path / "nope" / "deeper"))


def test_scifact_ships_with_the_checkout_and_is_found_without_a_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.data.sources import SHIPPED, resolve_dataset

    monkeypatch.delenv("TANDEM_DATA_DIR", raising=False)
    assert resolve_dataset("scifact") == SHIPPED / "scifact"
    assert (SHIPPED / "scifact" / "qrels" / "test.tsv").is_file()
