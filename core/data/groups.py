"""Training groups: one JSONL line per query, passages by reference.

    {"query_id", "query", "passage_form": "title+text" | "text",
     "positives": [{"id", "relevance", "rank", "source"}], "negatives": [{"id", "score", "rank", "source"}]}

A positive's `rank` and `source` say where the mining job's sources found it (absent: not within their
depth). A group holds *all* of a query's judged positives and its ranked hard negatives as passage ids, so a
groups file grows with the number of queries, not of judged pairs. Texts are resolved from the corpus
when training (`read_groups(path, corpus)`); `passage_form: "text"` shows passages without their title
(title pseudo-queries, where the title is the query). Every epoch samples one positive per query
(seeded), as Tevatron does. A passage may also carry its `text` (the with-text export for other tools,
`tandem mine --with-text`); such a file trains without a corpus.

Written by the mining job, read by both trainers."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import Corpus, iter_jsonl_records
from core.errors import DataFormatError, TandemError

log = logging.getLogger(__name__)

PASSAGE_FORMS = ("title+text", "text")


@dataclass
class Passage:
    id: str
    text: str | None = None
    score: float | None = None
    rank: int | None = None
    source: str | None = None
    relevance: int | None = None
    teacher: float | None = None
    """a cross-encoder's score of (query, passage), for distillation (`tandem reranker score-groups`)"""


@dataclass
class TrainingGroup:
    query_id: str
    query: str
    positives: list[Passage]
    negatives: list[Passage] = field(default_factory=list)
    passage_form: str = "title+text"
    corpus: Corpus | None = field(default=None, repr=False, compare=False)
    """where passage ids are resolved to text (set by `read_groups(path, corpus)`)"""

    def text(self, passage: Passage) -> str:
        """The training text of one of this group's passages: its own, else the corpus's."""
        if passage.text is not None:
            return passage.text
        if self.corpus is None:
            raise TandemError(
                f"group '{self.query_id}' references passages by id: read the groups with the corpus "
                "(read_groups(path, corpus); on the command line, give --dataset)"
            )
        i = self.corpus.position[passage.id]
        return self.corpus.texts[i] if self.passage_form == "text" else self.corpus.passage(passage.id)

    def judged_ids(self) -> frozenset[str]:
        """The ids of every passage judged relevant to this query (its positives)."""
        return frozenset(p.id for p in self.positives)

    def to_json(self, with_text: bool = False) -> str:
        def clean(p: Passage) -> dict:
            item = {
                "id": p.id,
                "text": self.text(p) if with_text else None,
                "score": p.score,
                "rank": p.rank,
                "source": p.source,
                "relevance": p.relevance,
                "teacher": p.teacher,
            }
            return {k: v for k, v in item.items() if v is not None}

        record = {"query_id": self.query_id, "query": self.query, "passage_form": self.passage_form}
        record["positives"] = [clean(p) for p in self.positives]
        record["negatives"] = [clean(p) for p in self.negatives]
        return json.dumps(record, ensure_ascii=False)


def _passages(path: Path, line: int, record: dict, key: str, corpus: Corpus | None) -> list[Passage]:
    items = record.get(key)
    if not isinstance(items, list):
        raise DataFormatError(path, line, f"'{key}' must be a list")
    passages = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise DataFormatError(path, line, f"{key}[{i}] must be an object with a string 'id'")
        if "text" in item and not isinstance(item["text"], str):
            raise DataFormatError(path, line, f"{key}[{i}].text must be a string")
        if "text" not in item and corpus is not None and item["id"] not in corpus:
            raise DataFormatError(path, line, f"{key}[{i}]: passage '{item['id']}' is not in the corpus")
        fields = ("id", "text", "score", "rank", "source", "relevance", "teacher")
        passages.append(Passage(**{k: item[k] for k in fields if k in item}))
    return passages


def read_groups(path: str | Path, corpus: Corpus | None = None, min_negatives: int = 0) -> list[TrainingGroup]:
    """Read and check a groups file; a group needs a positive and at least `min_negatives` negatives.
    With `corpus`, passages given by id are checked against it and resolved from it when training."""
    path = Path(path)
    groups = []
    for line, record in iter_jsonl_records(path, required=("query_id", "query", "positives", "negatives")):
        positives = _passages(path, line, record, "positives", corpus)
        negatives = _passages(path, line, record, "negatives", corpus)
        form = record.get("passage_form", "title+text")
        if form not in PASSAGE_FORMS:
            raise DataFormatError(path, line, f"passage_form must be one of {PASSAGE_FORMS}, not {form!r}")
        if not positives:
            raise DataFormatError(path, line, "group has no positive passage")
        both = {p.id for p in positives} & {p.id for p in negatives}
        if both:
            raise DataFormatError(
                path, line, f"passage '{sorted(both)[0]}' is listed both as a positive and as a negative"
            )
        if len(negatives) < min_negatives:
            raise DataFormatError(path, line, f"group has {len(negatives)} negatives, at least {min_negatives} needed")
        groups.append(TrainingGroup(str(record["query_id"]), record["query"], positives, negatives, form, corpus))
    return groups


MINED_GROUPS = "groups.jsonl"
"""A mining folder's groups for the train queries (`tandem mine --out`, a run's `mining/`)."""
TITLE_GROUPS = "title-groups.jsonl"
"""A run's mining folder's groups for title pseudo-queries (passage titles as queries, BM25 negatives)."""
TITLE_QUERY_PREFIX = "title:"
"""The query id of a title pseudo-query is this prefix and its passage's id (`retrieval.pseudo`)."""


def read_mined_groups(folder: str | Path, corpus: Corpus | None = None) -> list[TrainingGroup]:
    """The cross-encoder's training groups in a `tandem run` mining folder: the train queries' groups, then
    the title pseudo-query groups when the run mined them. The reranker stage trains on exactly these."""
    folder = Path(folder)
    groups = read_groups(folder / MINED_GROUPS, corpus)
    if (folder / TITLE_GROUPS).is_file():
        groups += read_groups(folder / TITLE_GROUPS, corpus)
    return groups


def groups_with_negatives(groups: list[TrainingGroup]) -> tuple[list[TrainingGroup], int]:
    """The groups a contrastive loss can use, and how many were left out for having no negative (a
    query whose candidates were all positives or filtered away); the count is logged, never silent."""
    kept = [group for group in groups if group.negatives]
    dropped = len(groups) - len(kept)
    if dropped:
        log.warning("%d of %d groups have no negative passage and are left out of training", dropped, len(groups))
    return kept, dropped


def groups_with_found_positives(groups: list[TrainingGroup], depth: int) -> tuple[list[TrainingGroup], int]:
    """The groups cut to the positives their mining ranked within `depth` (0: all kept), and how many groups
    were left out for having none. Groups that record no positive's rank (written by another tool, or by
    an older tandem) keep every positive, with a warning that says so."""
    if not depth:
        return groups, 0
    if groups and not any(p.rank is not None for g in groups for p in g.positives):
        log.warning(
            "the training groups record no rank for their positives, so positive_depth %d cannot apply: training "
            "on every judged positive (groups from `tandem mine` record them)", depth,
        )  # fmt: skip
        return groups, 0
    kept = []
    for group in groups:
        found = [p for p in group.positives if p.rank is not None and p.rank <= depth]
        if found:
            kept.append(replace(group, positives=found))
    dropped = len(groups) - len(kept)
    if dropped:
        log.info("%d of %d groups have no positive ranked within %d by mining; left out", dropped, len(groups), depth)
    return kept, dropped


def groups_with_near_negatives(groups: list[TrainingGroup], depth: int) -> list[TrainingGroup]:
    """The judged queries' groups cut to the negatives their mining source ranked within `depth` (0: all
    kept): `groups_with_negatives_ranked(groups, 1, depth)`."""
    return groups_with_negatives_ranked(groups, 1, depth) if depth else groups


def groups_with_negatives_ranked(groups: list[TrainingGroup], first: int, last: int) -> list[TrainingGroup]:
    """The judged queries' groups cut to the negatives their mining source ranked `first`..`last`; title
    pseudo-query groups keep every negative. A group left without a negative is then left out by
    `groups_with_negatives`, which counts it. Groups that record no negative's rank (written by another
    tool) keep every negative, with a warning that says so."""
    judged = [group for group in groups if not group.query_id.startswith(TITLE_QUERY_PREFIX)]
    if judged and not any(p.rank is not None for g in judged for p in g.negatives):
        log.warning(
            "the training groups record no rank for their negatives, so the negatives ranked %d-%d cannot be "
            "picked: training on every mined negative (groups from `tandem mine` record them)", first, last,
        )  # fmt: skip
        return groups
    return [
        group
        if group.query_id.startswith(TITLE_QUERY_PREFIX)
        else replace(group, negatives=[p for p in group.negatives if p.rank is not None and first <= p.rank <= last])
        for group in groups
    ]


def write_groups(groups: Iterable[TrainingGroup], path: str | Path, with_text: bool = False) -> int:
    """Write groups atomically (streaming); returns how many were written. `with_text` embeds every
    passage's text (resolved from the group's corpus) for tools that do not read the corpus."""
    count = 0
    with atomic_file(path) as out:
        for group in groups:
            out.write(group.to_json(with_text) + "\n")
            count += 1
    return count


@dataclass(frozen=True)
class GroupSample:
    """One group's share of a training batch: the query and its sampled passages, positives first."""

    query: str
    texts: list[str]
    ids: list[str]
    judged: frozenset[str]
    """every passage judged relevant to the query: never its negative, also when another group of the
    batch brings it (in-batch false negatives are masked by the losses that use other groups' passages)"""
    teacher: list[float | None] | None = None
    """a cross-encoder's score of each text (`with_teacher`, for distillation)"""
    positives: int = 1
    """how many of `texts`, from the first, are positives (fewer than asked when the query has fewer)"""


GroupBatch = list[GroupSample]
"""One training batch: a `GroupSample` per group."""


def sample_passages(group: TrainingGroup, group_size: int, rng: random.Random, positives: int = 1) -> list[Passage]:
    """[up to `positives` distinct positives (as many as the query has), then negatives up to `group_size`]:
    negatives are drawn without replacement when the group has enough, else with replacement, so every
    group has the same size."""
    if positives == 1:
        chosen = [rng.choice(group.positives)]
    else:
        chosen = rng.sample(group.positives, min(positives, len(group.positives)))
    wanted = group_size - len(chosen)
    pool = group.negatives
    negatives = rng.sample(pool, wanted) if len(pool) >= wanted else rng.choices(pool, k=wanted)
    return [*chosen, *negatives]


def sample_group(group: TrainingGroup, group_size: int, rng: random.Random) -> list[str]:
    """The texts of `sample_passages`."""
    return [group.text(p) for p in sample_passages(group, group_size, rng)]


def epoch_batches(
    groups: list[TrainingGroup],
    group_size: int,
    batch_queries: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    with_teacher: bool = False,
    positives: int = 1,
) -> Iterator[GroupBatch]:
    """The batches of one epoch for this process: groups (one per query) shuffled by (seed, epoch),
    then dealt to processes so each sees a disjoint, equal share; each group sampled to `positives`
    positives and `group_size - positives` negatives."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(groups)))
    rng.shuffle(order)
    per_step = batch_queries * world_size
    usable = len(order) - len(order) % per_step
    for start in range(0, usable, per_step):
        mine = order[start + rank * batch_queries : start + (rank + 1) * batch_queries]
        batch = []
        for i in mine:
            group = groups[i]
            passages = sample_passages(group, group_size, rng, positives)
            batch.append(
                GroupSample(
                    group.query,
                    [group.text(p) for p in passages],
                    [p.id for p in passages],
                    group.judged_ids(),
                    [p.teacher for p in passages] if with_teacher else None,
                    min(positives, len(group.positives)),
                )
            )
        yield batch
