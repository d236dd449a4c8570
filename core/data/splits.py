"""The dev split every choice of a run is made on (which system is the result, fusion weights), so that
choice reads queries that were neither trained on nor tested on: the dataset's own dev qrels where it
has them (`split.dev`, e.g. NFCorpus's `qrels/dev.tsv`), else a seeded share carved from the train queries."""

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


def official_dev_split(dataset: BeirDataset, split: dict) -> str | None:
    """The dataset's own dev split (`split.dev`) when it has qrels for it and it is neither the train nor
    the test split; None when the dev queries are to be carved from train."""
    name = split.get("dev")
    if not name or name in (split["train"], split["test"]) or name not in dataset.splits():
        return None
    return name


def dev_qrels_split(dataset: BeirDataset, split: dict) -> str:
    """The qrels split the dev queries are judged in: the official dev split, else train (carved)."""
    return official_dev_split(dataset, split) or split["train"]


def dev_split_ids(dataset: BeirDataset, split: dict) -> list[str]:
    """The dev queries of a run: all of the official dev split's queries (less any that are also train
    queries), else those `carve_dev` holds out of `split["train"]` with the `split.dev_*` options. The run
    and its plan both ask here, so the plan counts exactly the queries the run holds out."""
    official = official_dev_split(dataset, split)
    if official is not None:
        train = dataset.split_queries(split["train"]) if split["train"] in dataset.splits() else {}
        return sorted(query_id for query_id in dataset.split_queries(official) if query_id not in train)
    train = dataset.split_queries(split["train"])
    return carve_dev(train, split["dev_fraction"], split["dev_max"], split["dev_min"], split["dev_seed"])


def train_query_ids(dataset: BeirDataset, split: dict, mode: str) -> list[str]:
    """The queries a run trains on, in queries.jsonl order: the train split's queries with a judgment of at
    least `split.min_relevance`, less the dev queries in train mode (`dev_split_ids`). The stages and the
    plan both ask here, so the plan counts exactly the training groups (and title pseudo-queries) a run makes."""
    dev = set(dev_split_ids(dataset, split)) if mode == "train" else set()
    judged = dataset.qrels(split["train"])
    floor = split["min_relevance"]
    return [
        query_id
        for query_id in dataset.split_queries(split["train"])
        if query_id not in dev and any(relevance >= floor for relevance in judged[query_id].values())
    ]
