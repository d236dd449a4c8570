"""meta.json of an index folder: what the index was built from, checked by everyone who uses it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IndexMeta:
    encoder: str
    pooling: str
    normalize: bool
    dim: int
    passage_max_length: int
    query_max_length: int
    corpus_path: str
    corpus_fingerprint: str
    factory: str
    count: int
    encode_seconds: float = 0.0
    build_seconds: float = 0.0
    encoder_fingerprint: str | None = None
    """content hash of the encoder's weights (None for a hub name, or an index from before it was recorded)"""
    precision: str | None = None
    """what the passages were encoded in: fp32, bf16, fp16 or int8 (None: an index from before it was recorded)"""
