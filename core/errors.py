"""Error types a user sees: each says which file, which line and what was wrong."""

from __future__ import annotations

from pathlib import Path


class TandemError(Exception):
    """An error caused by the user's input or environment; the CLI prints it without a traceback."""


class DataFormatError(TandemError):
    """A malformed input file, located down to the line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
