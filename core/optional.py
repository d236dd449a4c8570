"""Modules imported when first used, not when tandem starts: `tandem --help`, BM25 and evaluation work
on a machine without them, and a missing one is a one-line error saying how to install it."""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from core.errors import TandemError


class LazyModule:
    """Stands in for module `name`; the first attribute read imports it."""

    def __init__(self, name: str, install: str) -> None:
        self._name = name
        self._install = install
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            logging.getLogger(self._name).setLevel(logging.WARNING)  # its loader logs each build it tries
            try:
                self._module = importlib.import_module(self._name)
            except ImportError as err:
                raise TandemError(f"{self._name} is not installed ({err}); {self._install}") from None
        return getattr(self._module, attribute)


faiss: Any = LazyModule("faiss", "install faiss-cpu or faiss-gpu-cu12 (bash install.sh does)")
"""FAISS, imported by the first index built, searched or read."""
