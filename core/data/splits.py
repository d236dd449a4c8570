"""A dev split carved from the training queries, so every choice a run makes (which system is the
result, interpolation weights) is made on queries that were neither trained on nor tested on."""

from __future__ import annotations

import random
from collections.abc import Iterable

from core.data.beir import BeirDataset


def carve_dev(query_ids: Iterable[str], fraction: float, maximum: int, minimum: int, seed: int) -> list[str]:
    """A seeded sample of `fraction` of the queries (at most `maximum`), in sorted order; empty when that
    is fewer than `minimum` (a handful of queries would make the choices noise)."""
    ids = sorted(set(query_ids))
    size = min(maximum, round(fraction * len(ids)))
    if size < max(minimum, 1) or size >= len(ids):
        return []
    return sorted(random.Random(seed).sample(ids, size))


def dev_split_ids(dataset: BeirDataset, split: dict) -> list[str]:
    """The dev queries `tandem run` holds out of `split["train"]`, with the `split.dev_*` options (the run
    and its plan both ask here, so the plan counts exactly the queries the run holds out)."""
    train = dataset.split_queries(split["train"])
    return carve_dev(train, split["dev_fraction"], split["dev_max"], split["dev_min"], split["dev_seed"])
