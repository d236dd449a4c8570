"""Progress bars that also report when nobody is watching a terminal.

On a terminal this is tqdm as usual. Off a terminal (CI, `nohup`, a job scheduler) tqdm would print
nothing, so the bar is routed through logging instead: one line about every 30 s with step/total, rate
and ETA, and a closing line, for loops that run that long (short loops stay silent)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("tandem.progress")
LOG_INTERVAL = 30.0
"""Seconds between progress lines off a terminal."""


class _LogLines:
    """A file-like sink for tqdm that logs its lines, staying silent for the first `interval` seconds."""

    def __init__(self, interval: float) -> None:
        self.started = time.monotonic()
        self.interval = interval
        self.last = ""

    def write(self, text: str) -> None:
        line = text.strip("\r\n\x1b[A ")
        if line and line != self.last and time.monotonic() - self.started >= self.interval:
            log.info(line)
            self.last = line

    def flush(self) -> None:
        pass


def progress_bar(iterable: Iterable | None = None, disable: bool | None = None, **kwargs: Any) -> tqdm:
    """`tqdm(iterable, **kwargs)` on a terminal, a ~30 s log line off it; `disable=True` silences it."""
    if disable:
        return tqdm(iterable, disable=True, **kwargs)
    if sys.stderr.isatty():
        return tqdm(iterable, disable=False, **kwargs)
    return tqdm(
        iterable,
        disable=False,
        file=_LogLines(LOG_INTERVAL),
        mininterval=LOG_INTERVAL,
        maxinterval=LOG_INTERVAL,
        ascii=True,
        ncols=100,
        dynamic_ncols=False,
        **kwargs,
    )
