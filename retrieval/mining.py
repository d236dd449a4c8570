"""Hard-negative mining: retrieve candidates for every training query, drop positives and likely
false negatives, sample N negatives per query and write one training group per query (all its judged
positives and its negatives, by passage id).

False-negative control (unjudged passages that are really relevant are the main reason rerankers
trained on a strong retriever's negatives get worse):
- a rank window `A:B` keeps only candidates ranked A..B (1-based, inclusive) by their source;
- `margin` drops candidates scoring above margin x the positive's score under the same source
  (NV-Retriever's "TopK-PercPos", Moreira et al. 2024);
- an optional cross-encoder drops candidates it scores above the query's positive.
Sampling is seeded per query, so output depends only on the seed, not on sharding or batching.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.data.beir import Corpus, Qrels
from core.data.groups import Passage, TrainingGroup, write_groups

Candidates = dict[str, list[tuple[str, float]]]
"""query id -> [(passage id, score)], best first, from one source."""
PositiveScorer = Callable[[str, str], float]
"""(query id, positive id) -> that positive's score under a source."""


@dataclass
class MiningConfig:
    num_negatives: int = 30
    """negatives kept per group (each training step samples from them afresh); not chosen on dev
    (docs/experiments.md, "Defaults not chosen on both dev splits")"""
    depth: int = 100
    """hits per query of each source searched for negatives; the cross-encoder trains on those within its
    `negative_depth` (docs/experiments.md, "Where the cross-encoder's negatives come from")"""
    rank_range: tuple[int, int] | None = None
    """negatives only from these ranks of their source (None: the whole `depth`). A window of the top 30
    (what a reranker is shown) did not separate from the whole depth on the two dev splits
    (docs/experiments.md, "Where the cross-encoder's negatives come from")"""
    margin: float | None = None
    seed: int = 42
    min_relevance: int = 1
    """qrels grade a passage needs to count as a positive; every judged grade above 0 is kept out of
    the negatives either way"""

    def __post_init__(self) -> None:
        if self.num_negatives < 1:
            raise ValueError("num_negatives must be at least 1")
        if self.depth < 1:
            raise ValueError("depth must be at least 1")
        if self.min_relevance < 1:
            raise ValueError("min_relevance must be at least 1 (grade 0 means not relevant)")
        if self.rank_range is not None:
            low, high = self.rank_range
            if not 1 <= low <= high:
                raise ValueError(f"rank range {low}:{high} must satisfy 1 <= A <= B")
        if self.margin is not None and not 0 < self.margin:
            raise ValueError("margin must be positive (e.g. 0.95)")


@dataclass
class MiningStats:
    queries: int = 0
    groups: int = 0
    positives: int = 0
    queries_short_of_negatives: int = 0
    candidates: int = 0
    removed: Counter = field(default_factory=Counter)
    kept_rank_histogram: Counter = field(default_factory=Counter)
    negatives_per_group: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "queries": self.queries,
            "groups": self.groups,
            "positives": self.positives,
            "queries_short_of_negatives": self.queries_short_of_negatives,
            "candidates": self.candidates,
            "removed": dict(sorted(self.removed.items())),
            "negatives_per_group": dict(sorted(self.negatives_per_group.items())),
            "kept_rank_histogram": {
                f"{b * 10 + 1}-{b * 10 + 10}": n for b, n in sorted(self.kept_rank_histogram.items())
            },
        }

    def summary(self) -> str:
        return summarise(self.to_dict())


def summarise(stats: dict) -> str:
    """A few readable lines from `MiningStats.to_dict()` (also the merged statistics of torchrun parts)."""

    def items(values: dict) -> str:
        return ", ".join(f"{k}: {v}" for k, v in values.items())

    return "\n".join(
        [
            f"queries: {stats['queries']}, groups written: {stats['groups']} (one per query, {stats['positives']} "
            f"positives), candidates seen: {stats['candidates']}",
            f"queries with fewer negatives than asked: {stats['queries_short_of_negatives']}",
            "removed: " + (", ".join(f"{k} {v}" for k, v in stats["removed"].items()) or "nothing"),
            "negatives per group: " + items(stats["negatives_per_group"]),
            "kept ranks: " + ", ".join(f"{k} {v}" for k, v in stats["kept_rank_histogram"].items()),
        ]
    )


@dataclass
class Candidate:
    doc_id: str
    score: float
    rank: int
    source: str


def query_rng(seed: int, query_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{query_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def filter_candidates(
    query_id: str,
    judged: dict[str, int],
    positives: dict[str, int],
    sources: dict[str, Candidates],
    positive_scorers: dict[str, PositiveScorer],
    config: MiningConfig,
    stats: MiningStats,
) -> list[Candidate]:
    """Merge the sources' candidates for one query (a passage found by several keeps its best rank
    and records every source) after removing positives, out-of-window ranks and margin violations."""
    kept: dict[str, Candidate] = {}
    for source, candidates in sources.items():
        hits = candidates.get(query_id, [])[: config.depth]
        threshold = None
        if config.margin is not None and positives:
            positive_score = min(positive_scorers[source](query_id, pid) for pid in positives)
            threshold = config.margin * positive_score
        for rank, (doc_id, score) in enumerate(hits, start=1):
            stats.candidates += 1
            if doc_id in judged:
                stats.removed["judged positive"] += 1
            elif config.rank_range and not config.rank_range[0] <= rank <= config.rank_range[1]:
                stats.removed["outside rank range"] += 1
            elif threshold is not None and score > threshold:
                stats.removed[f"above margin x positive score ({source})"] += 1
            elif doc_id in kept:
                kept[doc_id].source = "+".join(sorted({*kept[doc_id].source.split("+"), source}))
                kept[doc_id].rank = min(kept[doc_id].rank, rank)
            else:
                kept[doc_id] = Candidate(doc_id, score, rank, source)
    return sorted(kept.values(), key=lambda c: (c.rank, c.source, c.doc_id))


def positive_ranks(
    query_id: str, positives: dict[str, int], sources: dict[str, Candidates], depth: int
) -> dict[str, tuple[int, str]]:
    """Each positive the sources retrieved within `depth`: its best rank and the source(s) at that rank.
    Training can then tell positives a first stage finds from those it never shows a reranker."""
    found: dict[str, tuple[int, str]] = {}
    for source, candidates in sources.items():
        for rank, (doc_id, _) in enumerate(candidates.get(query_id, [])[:depth], start=1):
            if doc_id in positives:
                best = found.get(doc_id)
                if best is None or rank < best[0]:
                    found[doc_id] = (rank, source)
                elif rank == best[0]:
                    found[doc_id] = (rank, "+".join(sorted({*best[1].split("+"), source})))
    return found


def mine_groups(
    queries: dict[str, str],
    qrels: Qrels,
    corpus: Corpus,
    sources: dict[str, Candidates],
    positive_scorers: dict[str, PositiveScorer],
    config: MiningConfig,
    stats: MiningStats,
    reranker_filter: Callable[[str, list[str], list[Candidate]], list[Candidate]] | None = None,
    passage_form: str = "title+text",
) -> Iterator[TrainingGroup]:
    """Yield one group per query with a positive (grade >= `config.min_relevance`), in query order;
    `stats` is filled as they go. Passages are written by id; `passage_form` says how training shows them."""
    for query_id, query in queries.items():
        judged = {doc_id: rel for doc_id, rel in qrels.get(query_id, {}).items() if rel > 0 and doc_id in corpus}
        positives = {doc_id: rel for doc_id, rel in judged.items() if rel >= config.min_relevance}
        if not positives:
            continue
        stats.queries += 1
        candidates = filter_candidates(query_id, judged, positives, sources, positive_scorers, config, stats)
        if reranker_filter is not None and candidates:
            survivors = reranker_filter(query, list(positives), candidates)
            stats.removed["cross-encoder scores above positive"] += len(candidates) - len(survivors)
            candidates = survivors
        found = positive_ranks(query_id, positives, sources, config.depth)
        rng = query_rng(config.seed, query_id)
        chosen = candidates if len(candidates) <= config.num_negatives else rng.sample(candidates, config.num_negatives)
        chosen.sort(key=lambda c: (c.rank, c.doc_id))
        if len(chosen) < config.num_negatives:
            stats.queries_short_of_negatives += 1
        negatives = [Passage(c.doc_id, score=round(c.score, 6), rank=c.rank, source=c.source) for c in chosen]
        stats.kept_rank_histogram.update((c.rank - 1) // 10 for c in chosen)
        stats.groups += 1
        stats.negatives_per_group[len(negatives)] += 1
        stats.positives += len(positives)
        yield TrainingGroup(
            query_id,
            query,
            [
                Passage(
                    doc_id,
                    relevance=rel,
                    rank=found.get(doc_id, (None, None))[0],
                    source=found.get(doc_id, (None, None))[1],
                )
                for doc_id, rel in positives.items()
            ],
            negatives,
            passage_form,
            corpus,
        )


def mine_to_file(
    path: str | Path,
    queries: dict[str, str],
    qrels: Qrels,
    corpus: Corpus,
    sources: dict[str, Candidates],
    positive_scorers: dict[str, PositiveScorer],
    config: MiningConfig,
    reranker_filter: Callable[[str, list[str], list[Candidate]], list[Candidate]] | None = None,
    passage_form: str = "title+text",
    with_text: bool = False,
) -> MiningStats:
    """Mine and stream the groups into `path` (atomically); returns the statistics. `with_text` embeds
    passage texts (for other tools; tandem reads ids with the corpus)."""
    stats = MiningStats()
    groups = mine_groups(
        queries, qrels, corpus, sources, positive_scorers, config, stats, reranker_filter, passage_form
    )
    write_groups(groups, path, with_text=with_text)
    return stats


def parse_rank_range(text: str | None) -> tuple[int, int] | None:
    """`A:B` -> (A, B); None and `none` (no window: every rank) -> None."""
    if text is None or text.lower() == "none":
        return None
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"--rank-range takes A:B with whole numbers, e.g. 10:100, not '{text}'") from None
    return low, high
