"""The mining job as one call: gather candidates from a BM25 and/or a dense index, then mine groups.

`tandem mine`, `tandem retriever train` (BM25 negatives) and the stages of `tandem run` all call these,
so a command and the stage that does the same job cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.data.beir import BeirDataset, Qrels
from core.errors import TandemError
from retrieval import bm25
from retrieval.mining import Candidate, Candidates, MiningConfig, MiningStats, PositiveScorer, mine_to_file
from retrieval.pseudo import title_queries

RerankerFilter = Callable[[str, list[str], list[Candidate]], list[Candidate]]


def check_bm25_index(index_dir: str | Path, dataset: BeirDataset) -> None:
    """Refuse a BM25 index built from another corpus."""
    meta = bm25.read_index_meta(index_dir)
    if meta.corpus_fingerprint != dataset.corpus_fingerprint:
        raise TandemError(f"{index_dir} indexes another corpus ({meta.corpus_path}), not {dataset.corpus_path}")


def mine_negatives(
    dataset: BeirDataset,
    queries: dict[str, str],
    qrels: Qrels,
    out: str | Path,
    config: MiningConfig,
    bm25_index: str | Path | None = None,
    dense_index: str | Path | None = None,
    reranker_filter: RerankerFilter | None = None,
    passage_form: str = "title+text",
    batch_size: int = 64,
    with_text: bool = False,
) -> MiningStats:
    """Retrieve `config.depth` candidates per query from each index given (dense first, then BM25), score
    positives where the margin filter needs them, and write the groups to `out`."""
    if bm25_index is None and dense_index is None:
        raise TandemError("mining needs a dense index, a BM25 index, or both")
    sources: dict[str, Candidates] = {}
    scorers: dict[str, PositiveScorer] = {}
    if dense_index is not None:
        from retrieval.dense import dense_candidates  # FAISS and the encoder only when a dense index is used

        sources["dense"], scorers["dense"] = dense_candidates(dense_index, dataset, queries, config.depth, batch_size)
    if bm25_index is not None:
        check_bm25_index(bm25_index, dataset)
        sources["bm25"] = bm25.search(bm25_index, queries, k=config.depth)
        if config.margin is not None:
            scorer = bm25.Bm25Scorer(bm25_index)
            scorers["bm25"] = lambda qid, pid: scorer.score(queries[qid], pid)
    return mine_to_file(
        out, queries, qrels, dataset.corpus, sources, scorers, config, reranker_filter, passage_form, with_text
    )


def mine_title_negatives(
    dataset: BeirDataset, count: int, out: str | Path, config: MiningConfig, bm25_index: str | Path
) -> MiningStats:
    """Self-supervised groups: `count` document titles as queries, their text (shown without the title,
    so the pair cannot be solved by string matching) as the positive, BM25 negatives."""
    queries, qrels = title_queries(dataset.corpus, count, config.seed)
    return mine_negatives(dataset, queries, qrels, out, config, bm25_index=bm25_index, passage_form="text")
