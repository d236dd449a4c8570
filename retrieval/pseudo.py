"""Self-supervised training queries from the corpus itself: a document's title as the query, its
abstract as the positive. With few judged queries (SciFact has 809) they add in-domain pairs.

The passages of such groups are shown without their titles: otherwise the query would appear
verbatim in its positive and the model would learn string matching."""

from __future__ import annotations

import random

from core.data.beir import Corpus, Qrels
from core.data.groups import TITLE_QUERY_PREFIX


def title_queries(corpus: Corpus, count: int, seed: int = 42, min_words: int = 4) -> tuple[dict[str, str], Qrels]:
    """`count` documents (sampled with `seed`) whose title has at least `min_words` words, as
    queries `title:<doc id>` with that document as the only positive."""
    eligible = [
        i for i, title in enumerate(corpus.titles) if len(title.split()) >= min_words and corpus.texts[i].strip()
    ]
    chosen = sorted(random.Random(seed).sample(eligible, min(count, len(eligible))))
    queries = {f"{TITLE_QUERY_PREFIX}{corpus.ids[i]}": corpus.titles[i] for i in chosen}
    qrels = {f"{TITLE_QUERY_PREFIX}{corpus.ids[i]}": {corpus.ids[i]: 1} for i in chosen}
    return queries, qrels


def title_query_count(per_judged_query: float, judged_queries: int) -> int:
    """How many title pseudo-queries go beside `judged_queries` judged training queries: a share of them,
    not a fixed number, so that a collection with few judged queries is not swamped by pseudo-queries and
    one with many still gets its share."""
    return round(per_judged_query * judged_queries)
