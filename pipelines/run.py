"""`tandem run`: every stage in order, each in DIR/<stage>/, resumable.

    bm25 -> dense-zeroshot -> retriever -> index -> mining -> reranker -> rerank -> report

A stage is finished when DIR/<stage>/done.json exists; it records the stage's configuration, its
outputs and timings. A finished stage whose configuration is unchanged is skipped; a stage that
runs (because it was unfinished, changed, or named by --force) makes every later stage run again.
Cross-encoder training checkpoints inside its stage, so an interrupted run resumes mid-training.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.evaluate import evaluate
from pipelines.fusion import rrf
from pipelines.report import System, write_report
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run
from rerank.train import RerankerConfig, train_reranker
from retrieval import bm25
from retrieval.atomic import atomic_file
from retrieval.beir import BeirDataset
from retrieval.dense import dense_search
from retrieval.encoder import BiEncoderConfig
from retrieval.errors import TandemError
from retrieval.groups import read_groups
from retrieval.index import DenseIndex, build_dense_index
from retrieval.mining import MiningConfig, mine_to_file
from retrieval.models import resolve_model
from retrieval.pseudo import text_only, title_queries
from retrieval.runs import Run, read_run, write_run
from retrieval.train import RetrieverConfig, train_retriever

log = logging.getLogger(__name__)

DEFAULTS: dict = {
    "split": {"train": "train", "test": "test"},
    "bm25": {"fields": "flat", "k1": 0.9, "b": 0.4, "k": 1000},
    "dense": {"model": None, "factory": "Flat", "batch_size": 64, "k": 1000},
    "retriever": {
        "epochs": 3, "batch_queries": 32, "group_size": 2, "learning_rate": 2e-5, "temperature": 0.05,
        "passage_max_length": 256, "query_max_length": 64, "attention_dropout": 0.0, "negatives_depth": 100, "seed": 42,
    },
    "mining": {
        "sources": ["dense", "bm25"], "num_negatives": 30, "depth": 100, "rank_range": None, "margin": None,
        "title_queries": 1500, "seed": 42,
    },
    "reranker": {
        "model": None, "losses": ["nll"], "epochs": 1, "learning_rate": 7e-5, "group_size": 8, "batch_queries": 4,
        "max_length": 256, "attention_dropout": 0.0, "save_every": 50, "seed": 42,
    },
    "rerank": {"depth": 100, "batch_size": 64},
    "hybrid": {"rrf_k": 60, "depth": 1000},
}  # fmt: skip

QUICK: dict = {
    "dense": {"batch_size": 64},
    "retriever": {"epochs": 0.25, "passage_max_length": 128},
    "mining": {"num_negatives": 7, "depth": 30, "title_queries": 100},
    "reranker": {"epochs": 0.05, "max_length": 128, "save_every": 5},
    "rerank": {"depth": 10},
}
"""The smoke-test profile: every stage runs, on little compute."""

STAGES = ["bm25", "dense-zeroshot", "retriever", "index", "mining", "reranker", "rerank", "report"]


def merge(base: dict, override: dict, where: str = "config") -> dict:
    """Deep-merge `override` into a copy of `base`; unknown keys are an error (typos must not pass)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key not in merged:
            raise TandemError(f"{where}: unknown key '{key}' (known: {', '.join(merged)})")
        if isinstance(merged[key], dict):
            if not isinstance(value, dict):
                raise TandemError(f"{where}.{key} must be a table of options")
            merged[key] = merge(merged[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None, quick: bool) -> dict:
    config = merge(DEFAULTS, QUICK) if quick else copy.deepcopy(DEFAULTS)
    if path is None:
        return config
    if not path.is_file():
        raise TandemError(f"{path}: config file not found")
    text = path.read_text()
    try:
        loaded = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise TandemError(f"{path}: {err}") from None
    return merge(config, loaded or {}, str(path))


@dataclass
class RunContext:
    dataset: BeirDataset
    out: Path
    config: dict

    def stage_dir(self, stage: str) -> Path:
        return self.out / stage

    def done(self, stage: str) -> dict | None:
        path = self.stage_dir(stage) / "done.json"
        return json.loads(path.read_text()) if path.is_file() else None


def stage_config(config: dict, stage: str) -> dict:
    """The slice of the configuration a stage depends on (its own options and everything upstream)."""
    sections = {
        "bm25": ["split", "bm25"],
        "dense-zeroshot": ["split", "dense"],
        "retriever": ["split", "bm25", "dense", "retriever"],
        "index": ["split", "dense", "retriever"],
        "mining": ["split", "bm25", "dense", "retriever", "mining"],
        "reranker": ["split", "bm25", "dense", "retriever", "mining", "reranker"],
        "rerank": ["split", "bm25", "dense", "retriever", "mining", "reranker", "rerank"],
        "report": list(config),
    }[stage]
    return {name: config[name] for name in sections}


# --------------------------------------------------------------------------------------------- stages


def _search_seconds_per_query(started: float, queries: dict) -> float:
    return (time.perf_counter() - started) / max(len(queries), 1)


def stage_bm25(ctx: RunContext, work: Path) -> dict:
    options = ctx.config["bm25"]
    bm25.build_index(ctx.dataset.corpus_path, work / "index", fields=options["fields"])
    queries = ctx.dataset.split_queries(ctx.config["split"]["test"])
    started = time.perf_counter()
    run = bm25.search(work / "index", queries, k=options["k"], k1=options["k1"], b=options["b"])
    write_run(run, work / "test.trec", tag="bm25")
    return {"latency": {"retrieve": _search_seconds_per_query(started, queries)}}


def _dense_stage(ctx: RunContext, work: Path, encoder: str | None) -> dict:
    options = ctx.config["dense"]
    started = time.perf_counter()
    meta = build_dense_index(
        encoder, ctx.dataset.corpus_path, work / "index", options["factory"], options["batch_size"]
    )
    encode_seconds = time.perf_counter() - started
    queries = ctx.dataset.split_queries(ctx.config["split"]["test"])
    started = time.perf_counter()
    run, _ = dense_search(DenseIndex(work / "index"), queries, options["k"], options["batch_size"])
    write_run(run, work / "test.trec", tag="dense")
    return {
        "latency": {"retrieve": _search_seconds_per_query(started, queries)},
        "encode_seconds": encode_seconds,
        "passages": meta.count,
    }


def stage_dense_zeroshot(ctx: RunContext, work: Path) -> dict:
    return _dense_stage(ctx, work, ctx.config["dense"]["model"])


def _mining_config(options: dict) -> MiningConfig:
    return MiningConfig(
        options["num_negatives"],
        options["depth"],
        options.get("rank_range") and tuple(options["rank_range"]),
        options.get("margin"),
        options["seed"],
    )


def _mine(ctx: RunContext, sources: dict[str, Run], scorers: dict, options: dict, path: Path) -> dict:
    split = ctx.config["split"]["train"]
    queries = ctx.dataset.split_queries(split)
    return mine_to_file(
        path, queries, ctx.dataset.qrels(split), ctx.dataset.corpus, sources, scorers, _mining_config(options)
    ).to_dict()


def _mine_title_queries(ctx: RunContext, options: dict, path: Path) -> dict:
    """Self-supervised groups for the cross-encoder: document titles as queries, their abstract
    (shown without its title) as the positive, BM25 negatives."""
    corpus = ctx.dataset.corpus
    queries, qrels = title_queries(corpus, options["title_queries"], options["seed"])
    candidates = bm25.search(ctx.stage_dir("bm25") / "index", queries, k=options["depth"])
    config = _mining_config({**options, "margin": None})
    return mine_to_file(
        path, queries, qrels, corpus, {"bm25": candidates}, {}, config, passage_text=text_only(corpus)
    ).to_dict()


def stage_retriever(ctx: RunContext, work: Path) -> dict:
    options = ctx.config["retriever"]
    queries = ctx.dataset.split_queries(ctx.config["split"]["train"])
    candidates = bm25.search(ctx.stage_dir("bm25") / "index", queries, k=options["negatives_depth"])
    mining = {"num_negatives": 30, "depth": options["negatives_depth"], "seed": options["seed"]}
    stats = _mine(ctx, {"bm25": candidates}, {}, mining, work / "bm25-negatives.jsonl")
    encoder = BiEncoderConfig(
        temperature=options["temperature"], passage_max_length=options["passage_max_length"],
        query_max_length=options["query_max_length"],
    )  # fmt: skip
    config = RetrieverConfig(
        model=ctx.config["dense"]["model"], encoder=encoder, group_size=options["group_size"],
        batch_queries=options["batch_queries"], attention_dropout=options["attention_dropout"], epochs=options["epochs"],
        learning_rate=options["learning_rate"], seed=options["seed"],
    )  # fmt: skip
    groups = read_groups(work / "bm25-negatives.jsonl")
    config.batch_queries = min(config.batch_queries, len(groups))
    summary = train_retriever(groups, config, work / "model")
    return {"mining": stats, "training": summary}


def stage_index(ctx: RunContext, work: Path) -> dict:
    return _dense_stage(ctx, work, str(ctx.stage_dir("retriever") / "model"))


def stage_mining(ctx: RunContext, work: Path) -> dict:
    from retrieval.dense import dense_candidates

    options = ctx.config["mining"]
    queries = ctx.dataset.split_queries(ctx.config["split"]["train"])
    sources, scorers = {}, {}
    unknown = set(options["sources"]) - {"dense", "bm25"}
    if unknown or not options["sources"]:
        raise TandemError(f"mining.sources must list 'dense' and/or 'bm25', not {options['sources']}")
    if "dense" in options["sources"]:
        sources["dense"], scorers["dense"] = dense_candidates(
            ctx.stage_dir("index") / "index", ctx.dataset, queries, options["depth"]
        )
    if "bm25" in options["sources"]:
        index = ctx.stage_dir("bm25") / "index"
        sources["bm25"] = bm25.search(index, queries, k=options["depth"])
        if options.get("margin") is not None:
            scorer = bm25.Bm25Scorer(index)
            scorers["bm25"] = lambda qid, pid: scorer.score(queries[qid], pid)
    result = {"stats": _mine(ctx, sources, scorers, options, work / "groups.jsonl")}
    if options["title_queries"]:
        result["title_stats"] = _mine_title_queries(ctx, options, work / "title-groups.jsonl")
    return result


def stage_reranker(ctx: RunContext, work: Path) -> dict:
    """Trains one cross-encoder per configured loss, into reranker/<loss>/ (resuming from checkpoints)."""
    options = ctx.config["reranker"]
    mined = ctx.stage_dir("mining")
    groups = read_groups(mined / "groups.jsonl")
    if (mined / "title-groups.jsonl").is_file():
        groups += read_groups(mined / "title-groups.jsonl")
    summaries = {}
    for loss in options["losses"]:
        if (work / loss / "training_config.json").is_file():  # finished before an interruption
            continue
        config = RerankerConfig(
            model=options["model"], loss=loss, group_size=options["group_size"], batch_queries=min(options["batch_queries"], len(groups)),
            max_length=options["max_length"], attention_dropout=options["attention_dropout"], epochs=options["epochs"],
            learning_rate=options["learning_rate"], save_every=options["save_every"], seed=options["seed"],
        )  # fmt: skip
        summaries[loss] = train_reranker(groups, config, work / loss, resume=True)
    return {"training": summaries}


def stage_rerank(ctx: RunContext, work: Path) -> dict:
    options = ctx.config["rerank"]
    queries = ctx.dataset.queries
    latency = {}
    for loss in ctx.config["reranker"]["losses"]:
        model = CrossEncoder.from_pretrained(ctx.stage_dir("reranker") / loss).to_device()
        for first in ("bm25", "index"):
            run = read_run(ctx.stage_dir(first) / "test.trec")
            started = time.perf_counter()
            reranked = rerank_run(run, queries, ctx.dataset.corpus, model, options["depth"], options["batch_size"])
            latency[f"{first}-{loss}"] = _search_seconds_per_query(started, run)
            write_run(reranked, work / f"{first}-{loss}.trec", tag=f"{first}-ce-{loss}")
    hybrid = rrf(
        [read_run(ctx.stage_dir(s) / "test.trec") for s in ("bm25", "index")],
        ctx.config["hybrid"]["rrf_k"],
        ctx.config["hybrid"]["depth"],
    )
    write_run(hybrid, work / "hybrid.trec", tag="hybrid-rrf")
    return {"latency": latency}


def stage_report(ctx: RunContext, work: Path) -> dict:
    qrels = ctx.dataset.qrels(ctx.config["split"]["test"])
    latency = {
        s: (ctx.done(s) or {}).get("result", {}).get("latency", {})
        for s in ("bm25", "dense-zeroshot", "index", "rerank")
    }
    systems = [
        System("BM25", evaluate(read_run(ctx.stage_dir("bm25") / "test.trec"), qrels), {"retrieve": latency["bm25"]["retrieve"]}),
        System("dense zero-shot", evaluate(read_run(ctx.stage_dir("dense-zeroshot") / "test.trec"), qrels), {"retrieve": latency["dense-zeroshot"]["retrieve"]}),
        System("dense fine-tuned", evaluate(read_run(ctx.stage_dir("index") / "test.trec"), qrels), {"retrieve": latency["index"]["retrieve"]}),
        System("hybrid (RRF BM25 + dense ft)", evaluate(read_run(ctx.stage_dir("rerank") / "hybrid.trec"), qrels), {}),
    ]  # fmt: skip
    names = {"bm25": "BM25", "index": "dense fine-tuned"}
    for loss in ctx.config["reranker"]["losses"]:
        for first in ("bm25", "index"):
            stage_latency = {"retrieve": latency[first]["retrieve"], "rerank": latency["rerank"][f"{first}-{loss}"]}
            run = read_run(ctx.stage_dir("rerank") / f"{first}-{loss}.trec")
            systems.append(
                System(f"{names[first]} + CE ({loss.upper()})", evaluate(run, qrels), stage_latency, names[first])
            )
    depth = ctx.config["rerank"]["depth"]
    notes = f"Dataset {ctx.dataset.name}, split {ctx.config['split']['test']}; cross-encoders rerank the top {depth}. Latency: wall-clock ms per query of each stage on this machine."
    write_report(work, f"tandem run: {ctx.dataset.name}", systems, "BM25", notes)
    return {"systems": [s.name for s in systems]}


STAGE_FUNCTIONS: dict[str, Callable[[RunContext, Path], dict]] = {
    "bm25": stage_bm25,
    "dense-zeroshot": stage_dense_zeroshot,
    "retriever": stage_retriever,
    "index": stage_index,
    "mining": stage_mining,
    "reranker": stage_reranker,
    "rerank": stage_rerank,
    "report": stage_report,
}


def resumable(work: Path, stage: str, wanted: dict, done: dict | None, forced: bool, upstream_ran: bool) -> bool:
    """Only an interrupted reranker stage, with the same configuration and inputs, keeps its
    checkpoints to resume from; every other stage starts from an empty folder."""
    if stage != "reranker" or done or forced or upstream_ran:
        return False
    config = work / "config.json"
    return config.is_file() and json.loads(config.read_text()) == wanted


def run_all(dataset: BeirDataset, out: Path, config: dict, force: list[str] = ()) -> list[str]:
    """Run the stages in order; returns the names of the stages that ran (the rest were skipped)."""
    unknown = set(force) - set(STAGES)
    if unknown:
        raise TandemError(f"--force: unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
    resolve_model(config["dense"]["model"])  # fail early on a bad model path
    ctx = RunContext(dataset, out, config)
    out.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    for stage in STAGES:
        wanted = stage_config(config, stage)
        done = ctx.done(stage)
        if done and not ran and stage not in force and done["config"] == wanted:
            log.info("stage %s: finished earlier, skipped", stage)
            continue
        reason = (
            "forced"
            if stage in force
            else "upstream stage re-ran"
            if ran
            else "configuration changed"
            if done
            else "not finished"
        )
        log.info("stage %s: running (%s)", stage, reason)
        work = ctx.stage_dir(stage)
        if not resumable(work, stage, wanted, done, forced=stage in force, upstream_ran=bool(ran)):
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        (work / "config.json").write_text(json.dumps(wanted, indent=2) + "\n")
        started = time.perf_counter()
        result = STAGE_FUNCTIONS[stage](ctx, work)
        with atomic_file(work / "done.json") as marker:
            json.dump(
                {"config": wanted, "seconds": time.perf_counter() - started, "result": result},
                marker,
                indent=2,
                default=str,
            )
        ran.append(stage)
    return ran


def print_config(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
