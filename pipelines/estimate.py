"""What `tandem run --plan` costs each stage from: the run's workload (collection sizes, configuration,
mode and the warm-up's measured rates) and the estimate every stage declares beside its function
(`pipelines.stages.STAGES`). BM25 is costed from Anserini's measured rates (indexing ~10k passages/s; a
query ~35 ms at depth 1000)."""

from __future__ import annotations

from dataclasses import dataclass

from core.data.beir import BeirDataset
from core.data.splits import train_query_ids
from core.training.config import scheduled_steps
from pipelines.modes import TRAINED
from pipelines.warmup import Rates, dev_count, evaluated_queries
from retrieval.pseudo import title_queries, title_query_count

BM25_INDEX_PER_S = 10_000.0
JVM_START_S = 8.0  # the indexing subprocess and the in-process searcher each start Java
INDEX_OVERHEAD_S = 3.0  # writing and loading a dense index, beside encoding


def bm25_query_seconds(k: int) -> float:
    """One BM25 query at depth k (measured with Pyserini on 2 cores: ~35 ms at k=1000 on SciFact)."""
    return 0.01 + 0.025 * k / 1000


@dataclass
class StagePlan:
    stage: str
    work: str
    seconds: float
    steps: int = 0
    cut: str = ""


@dataclass
class Workload:
    """What a stage's estimate reads: sizes of this collection under this configuration and mode, and the
    rates the warm-up measured on this machine."""

    config: dict
    mode: str
    rates: Rates
    passages: int
    dev: int
    """dev queries (train mode only)"""
    evaluated: int
    """queries the first stages retrieve for and the rerank stage reranks: test, plus dev"""
    train_queries: int
    """training groups of the bi-encoder (one per train query, or per title pseudo-query)"""
    title_queries: int
    """title pseudo-query groups the cross-encoder trains on beside the train queries' (train mode)"""
    has_bi_encoder: bool
    rerankers: int

    @property
    def trains(self) -> bool:
        return self.mode in TRAINED

    def index_seconds(self, max_length: int) -> float:
        """Encoding the corpus at `max_length` tokens into a dense index."""
        return self.rates.encode_seconds(self.passages, max_length) + self.rates.encode_quantise_s + INDEX_OVERHEAD_S


def workload(
    dataset: BeirDataset, config: dict, mode: str, rates: Rates, has_bi_encoder: bool, rerankers: int
) -> Workload:
    train_queries = train_query_count(dataset, config, mode) if mode in TRAINED else 0
    return Workload(
        config=config,
        mode=mode,
        rates=rates,
        passages=len(dataset.corpus),
        dev=dev_count(dataset, config, mode),
        evaluated=evaluated_queries(dataset, config, mode),
        train_queries=train_queries,
        title_queries=title_query_count(config["mining"]["title_queries_per_query"], train_queries)
        if mode == "train"
        else 0,
        has_bi_encoder=has_bi_encoder,
        rerankers=rerankers,
    )


def train_query_count(dataset: BeirDataset, config: dict, mode: str) -> int:
    """The training groups the bi-encoder learns from: one per train query with a positive that the run does
    not hold out as dev (`train_query_ids`, what `RunContext.train_queries` holds), or per title pseudo-query
    in self-supervised mode."""
    if mode == "self-supervised":
        return len(title_queries(dataset.corpus, config["mining"]["title_queries"], config["mining"]["seed"])[0])
    return len(train_query_ids(dataset, config["split"], mode))


def training_steps(groups: int, options: dict) -> int:
    """The steps a training section (`retriever`, `reranker`, `distill`) schedules for this many groups."""
    per_epoch = max(1, groups // min(options["batch_queries"], max(groups, 1)))
    return scheduled_steps(per_epoch, options["epochs"], options.get("min_steps", 0), options["max_steps"])
