"""Stage two: the cross-encoder (`model`), its trainer (`train`), reranking a run (`rerank`), the `Reranker`
protocol (`reranker`) and the mining filter. Imports from `core` and `retrieval`, never `pipelines`.

The names below load their module on first use, so `import rerank.model` (inference) never pulls in the
training loop."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CrossEncoder": "rerank.model",
    "rerank_run": "rerank.rerank",
    "Reranker": "rerank.reranker",
    "CrossEncoderReranker": "rerank.reranker",
    "RerankerConfig": "rerank.train",
    "train_reranker": "rerank.train",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rerank' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
