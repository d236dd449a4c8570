"""What the dev-split quality experiments (`experiments.retriever`, `experiments.distill`) share: a finished run's dev
and test queries, a dense setting scored on both from its index, and the chosen setting's record."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from core.data.beir import BeirDataset
from core.data.runs import read_run, write_run
from pipelines.evaluation.metrics import Evaluation, evaluate
from pipelines.evaluation.report import paired_p_value
from pipelines.stages.context import RunContext
from retrieval.dense import dense_search
from retrieval.index import DenseIndex, build_dense_index
from retrieval.train import RetrieverConfig, train_retriever


def dev_and_test(dataset: BeirDataset, run: Path, config: dict) -> tuple[dict, dict]:
    """(queries, qrels), each {"dev": ..., "test": ...}: the dev queries the run held out of train (with
    their train qrels) and the test split."""
    context = RunContext(dataset, run, config)
    test = config["split"]["test"]
    queries = {"dev": context.dev_queries(), "test": dataset.split_queries(test)}
    qrels = {"dev": context.dev_qrels(), "test": dataset.qrels(test)}
    return queries, qrels


def train_and_index(
    folder: Path, training: Callable[[], tuple[list, RetrieverConfig]], corpus_path: Path, dense: dict, factory: str
) -> Path:
    """A setting's bi-encoder trained into `folder/model` (from `training()`'s groups and settings, called
    only when the model is not there yet) and the corpus indexed with it into `folder/index` (likewise
    reused); returns the index."""
    if not (folder / "model" / "config.json").is_file():
        groups, config = training()
        started = time.perf_counter()
        summary = train_retriever(groups, config, folder / "model")
        print(f"trained {folder.name}: {summary['steps']} steps in {time.perf_counter() - started:.0f} s", flush=True)
    if not (folder / "index" / "meta.json").is_file():
        build_dense_index(
            folder / "model", corpus_path, folder / "index", factory, dense["batch_size"], dense["precision"]
        )
    return folder / "index"


def evaluate_index(index_dir: Path, queries: dict, qrels: dict, tag: str) -> dict[str, Evaluation]:
    """A setting's dev and test figures from its index (the runs are written beside the index, top 100,
    and reused when they exist)."""
    figures, index = {}, None
    for split in ("dev", "test"):
        path = index_dir.parent / f"{split}.trec"
        if not path.is_file():
            index = index or DenseIndex(index_dir)
            run, _ = dense_search(index, queries[split], 100)
            write_run(run, path, tag=tag)
        figures[split] = evaluate(read_run(path), qrels[split])
    return figures


def p_text(row: dict[str, Evaluation], against: dict[str, Evaluation], split: str) -> str:
    """The paired t-test's p on per-query nDCG@10, as the tables print it ("—" against itself)."""
    value = paired_p_value(row[split], against[split])
    return "—" if value is None else f"{value:.3g}"


def write_result(out: Path, chosen: str, figures: dict[str, dict[str, Evaluation]]) -> None:
    """`out/result.json`: the dev-chosen setting and every setting's nDCG@10 per split."""
    result = {name: {split: row[split].aggregate["nDCG@10"] for split in row} for name, row in figures.items()}
    (out / "result.json").write_text(json.dumps({"chosen": chosen, "nDCG@10": result}, indent=2) + "\n")
