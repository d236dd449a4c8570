"""TREC run files round-trip, follow trec_eval's tie-breaking and reject malformed lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.runs import ranked, read_run, write_run
from core.errors import DataFormatError


def test_round_trip_and_ranks(tmp_path: Path) -> None:
    run = {"q1": [("a", 1.0), ("c", 3.0), ("b", 2.0)], "q2": [("x", 0.5)]}
    write_run(run, tmp_path / "run.trec", tag="t")
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0] == "q1 Q0 c 1 3.000000 t"
    assert lines[2] == "q1 Q0 a 3 1.000000 t"
    assert read_run(tmp_path / "run.trec") == {"q1": [("c", 3.0), ("b", 2.0), ("a", 1.0)], "q2": [("x", 0.5)]}


def test_ties_break_by_doc_id_descending() -> None:
    assert ranked([("a", 1.0), ("b", 1.0), ("c", 2.0)]) == [("c", 2.0), ("b", 1.0), ("a", 1.0)]


def test_malformed_run(tmp_path: Path) -> None:
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 a 1 2.0 t\nq1 Q0 b 2 t\n")
    with pytest.raises(DataFormatError, match=r"bad.trec:2: expected 6 columns"):
        read_run(path)
    path.write_text("q1 Q0 a 1 high t\n")
    with pytest.raises(DataFormatError, match=r"bad.trec:1: score 'high' is not a number"):
        read_run(path)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    class Boom(dict):
        def items(self):
            yield "q1", [("a", 1.0)]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_run(Boom(), tmp_path / "run.trec")
    assert list(tmp_path.iterdir()) == []
