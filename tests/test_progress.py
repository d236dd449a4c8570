"""Off a terminal, long loops still report: progress lines go through logging (and so into run.log)."""

from __future__ import annotations

import logging

import pytest

from core import progress


def test_progress_is_logged_off_a_terminal(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    with caplog.at_level(logging.INFO, logger="tandem.progress"):
        for _ in progress.progress_bar(range(3), desc="training", unit=" steps"):
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "tandem.progress"]
    assert lines and lines[-1].startswith("training: 100%") and "3/3" in lines[-1] and "steps/s" in lines[-1]


def test_short_loops_stay_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tandem.progress"):
        for _ in progress.progress_bar(range(3), desc="quick"):
            pass
        for _ in progress.progress_bar(range(3), desc="off", disable=True):
            pass
    assert not [r for r in caplog.records if r.name == "tandem.progress"]
