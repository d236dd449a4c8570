"""A dev split carved from the training queries, so every choice a run makes (which system is the
result, interpolation weights) is made on queries that were neither trained on nor tested on."""

from __future__ import annotations

import random
from collections.abc import Iterable


def carve_dev(query_ids: Iterable[str], fraction: float, maximum: int, minimum: int, seed: int) -> list[str]:
    """A seeded sample of `fraction` of the queries (at most `maximum`), in sorted order; empty when that
    is fewer than `minimum` (a handful of queries would make the choices noise)."""
    ids = sorted(set(query_ids))
    size = min(maximum, round(fraction * len(ids)))
    if size < max(minimum, 1) or size >= len(ids):
        return []
    return sorted(random.Random(seed).sample(ids, size))
