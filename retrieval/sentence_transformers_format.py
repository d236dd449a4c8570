"""Reading a sentence-transformers folder's encoder settings, so that tandem encodes with any such model
exactly as `SentenceTransformer.encode` does: pooling, normalisation, max length and prompts, in the
formats of sentence-transformers v6 and of the versions before it."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import TandemError
from retrieval.encoder import POOLINGS, BiEncoderConfig


def sentence_transformers_config(folder: Path) -> BiEncoderConfig | None:
    """How sentence-transformers encodes with a folder it saved: pooling (1_Pooling/config.json),
    normalisation (a Normalize module in modules.json), max length (sentence_bert_config.json; queries keep
    tandem's shorter default when it is shorter) and query/passage prompts (config_sentence_transformers.json).
    None when the folder is not a sentence-transformers model."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text())
    classes = [module.get("type", "").rsplit(".", 1)[-1] for module in modules]
    config = BiEncoderConfig(normalize="Normalize" in classes)
    if "Pooling" in classes:
        pooling_file = folder / modules[classes.index("Pooling")].get("path", "1_Pooling") / "config.json"
        config.pooling = _st_pooling(
            json.loads(pooling_file.read_text()) if pooling_file.is_file() else {}, pooling_file
        )
    length = _st_max_length(folder)
    if length:
        config.passage_max_length = length
        config.query_max_length = min(config.query_max_length, length)
    extra = folder / "config_sentence_transformers.json"
    prompts = json.loads(extra.read_text()).get("prompts") or {} if extra.is_file() else {}
    config.query_prompt = prompts.get("query", "")
    config.passage_prompt = prompts.get("passage", prompts.get("document", prompts.get("corpus", "")))
    return config


def _st_pooling(settings: dict, path: Path) -> str:
    """The pooling a sentence-transformers Pooling config names (v6's `pooling_mode`, or the older flags)."""
    if "pooling_mode" in settings:
        modes = [settings["pooling_mode"]]
    else:
        modes = [
            key.removeprefix("pooling_mode_") for key, on in settings.items() if key.startswith("pooling_mode_") and on
        ]
    names = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}
    modes = [names.get(mode, mode) for mode in modes]
    if len(modes) != 1 or modes[0] not in POOLINGS or settings.get("include_prompt") is False:
        raise TandemError(f"{path}: pooling {modes or 'none'} is not one tandem reproduces ({', '.join(POOLINGS)})")
    return modes[0]


def _st_max_length(folder: Path) -> int | None:
    """sentence-transformers' max sequence length: sentence_bert_config.json, else the tokenizer's."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        path = folder / name
        length = json.loads(path.read_text()).get(key) if path.is_file() else None
        if isinstance(length, int) and 0 < length < 1_000_000:
            return length
    return None
