"""The warm-up `tandem run` plans from: it times what dominates each stage with the run's own models,
settings and precisions (encoding a sample of passages, two bi-encoder and two cross-encoder training
steps, scoring a batch of pairs) and samples the corpus's token lengths. What it measured is kept in the
cache (`warmup_rates`), keyed by the machine, the collection and every option that changes a timed
shape, so a later run of the same job on the same machine plans without timing again."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields

import torch

from core.atomic import atomic_file
from core.data.beir import BeirDataset
from core.data.groups import GroupSample
from core.data.splits import dev_split_ids
from core.precision import autocast, bulk_precision, pick_device, resolved_precision
from pipelines.evaluation.provenance import machine

WARMUP_PASSAGES = 64
LENGTH_SAMPLE = 1000


@dataclass
class Rates:
    """What the warm-up measured on this machine, per token where cost follows length."""

    encode_s_per_token: float
    score_s_per_token: float
    retriever_step_s: float
    reranker_step_s: float
    passage_tokens: dict[int, float]  # max length -> mean tokens per passage (from a corpus sample)
    pair_tokens: float  # mean tokens per (query, passage) pair at the cross-encoder's max length
    warmup_seconds: float
    encode_quantise_s: float = 0.0  # int8: quantising the encoder, once per model
    score_quantise_s: float = 0.0  # int8: quantising the cross-encoder, once per model
    last_window_tokens: float = 0.0  # mean tokens per pair of its passage's last window (0 where it fits)
    cached: bool = False  # read from an earlier warm-up of the same job on this machine

    def encode_seconds(self, passages: int, max_length: int) -> float:
        return passages * self.passage_tokens[max_length] * self.encode_s_per_token

    def score_seconds(self, pairs: int, last_window: bool = False) -> float:
        """Scoring `pairs` pairs, each on its first window, and with `last_window` also the long ones' last."""
        tokens = self.pair_tokens + (self.last_window_tokens if last_window else 0.0)
        return pairs * tokens * self.score_s_per_token


def evaluated_queries(dataset: BeirDataset, config: dict, mode: str) -> int:
    """The queries the first stages retrieve for and the rerank stage reranks: test, plus dev in train mode."""
    return len(dataset.split_queries(config["split"]["test"])) + dev_count(dataset, config, mode)


def dev_count(dataset: BeirDataset, config: dict, mode: str) -> int:
    """Queries held out of train as dev (the ones `RunContext.dev_query_ids` holds out)."""
    return len(dev_split_ids(dataset, config["split"])) if mode == "train" else 0


NEW_PAIRS_PER_EXTRA_FIRST_STAGE = 0.4
"""Share of new (query, passage) pairs each first stage after the first adds to a query's reranked top hits
(pairs shared between first stages are scored once); how it was measured: docs/experiments.md."""


def rerank_pair_count(queries: int, config: dict) -> int:
    """About how many pairs one cross-encoder scores in the rerank stage for this many queries."""
    firsts = len(config["rerank"]["first_stages"])
    return round(queries * config["rerank"]["depth"] * (1 + NEW_PAIRS_PER_EXTRA_FIRST_STAGE * (firsts - 1)))


UNTIMED_OPTIONS = frozenset(
    {"epochs", "min_steps", "max_steps", "learning_rate", "head_learning_rate", "seed", "eval_every",
     "eval_depth", "patience", "save_every", "positives", "positive_depth", "negative_depth",
     "losses", "warmup", "last_window"}
)  # fmt: skip
"""Options of the timed sections that change how long a run trains, not what one step or batch costs:
a warm-up measured with other values of these is reused."""


def warmup_key(dataset: BeirDataset, config: dict, mode: str) -> dict:
    """What the warm-up's figures depend on: the machine (`provenance.machine`, torch's threads and
    version), the collection (its sampled lengths), the options of the timed models and shapes, and what
    `Rates` holds (a cache entry from before a rate was added lacks it)."""
    timed = {
        section: {k: v for k, v in config[section].items() if k not in UNTIMED_OPTIONS}
        for section in ("dense", "retriever", "reranker", "rerank")
    }
    return {
        "machine": {**machine(), "threads": torch.get_num_threads(), "torch": torch.__version__},
        "dataset": [dataset.name, dataset.corpus_fingerprint],
        "mode": mode,
        "run_mode": config["run"]["mode"],
        "options": timed,
        "rates": [rate.name for rate in fields(Rates)],
    }


def warmup_rates(dataset: BeirDataset, config: dict, mode: str, pending: Collection[str], fresh: bool = False) -> Rates:
    """The warm-up's rates for this job's `pending` stages: read from the cache when this machine measured
    the same before (`fresh`: measure again and replace them), else measured (`measure`) and kept."""
    from core.data.sources import cache_dir

    key = {**warmup_key(dataset, config, mode), "pending": sorted(pending)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    path = cache_dir() / "warmup" / f"{digest}.json"
    if not fresh and path.is_file():
        try:
            saved = json.loads(path.read_text())["rates"]
            saved["passage_tokens"] = {int(length): tokens for length, tokens in saved["passage_tokens"].items()}
            return Rates(**{**saved, "cached": True})
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable entry is measured again and replaced
    rates = measure(dataset, config, mode, pending=pending)
    with atomic_file(path) as out:
        json.dump({"key": key, "rates": asdict(rates)}, out, indent=2, default=str)
    return rates


def measure(
    dataset: BeirDataset, config: dict, mode: str, seed: int = 0, pending: Collection[str] | None = None
) -> Rates:
    """Time the expensive operations with the run's start models, lengths and batch shapes (each timed
    after an untimed call, once kernels for the shape exist), and the corpus's token lengths from a sample.
    Inference cost is kept per padded token: the run's length-sorted batches pad little. Jobs that will
    run compiled (bf16-compiled) are timed in eager bf16: compiling here would cost more than the estimate
    gains, so their planned time is an upper bound. With `pending` (the stages left to run), training
    steps and scoring are timed only for stages among them."""
    from rerank.model import CrossEncoder, last_windows
    from retrieval.encoder import BiEncoder

    started = time.perf_counter()
    rng = random.Random(seed)
    corpus = dataset.corpus
    picked = rng.sample(range(len(corpus)), min(LENGTH_SAMPLE, len(corpus)))
    texts = [corpus.passage(corpus.ids[i]) for i in picked]
    sample = texts[:WARMUP_PASSAGES]
    queries = list(dataset.queries.values())[:64]
    device = pick_device()
    encoder = BiEncoder.from_pretrained(config["dense"]["model"]).to_device()
    lengths = {
        length: _mean_tokens(encoder.tokenizer, texts, length)
        for length in {256, config["retriever"]["passage_max_length"]}
    }
    padded = len(sample) * max(
        len(ids) for ids in encoder.tokenizer(sample, truncation=True, max_length=256)["input_ids"]
    )
    dense_precision = config["dense"]["precision"]
    encode_quantise_s = (
        _timed_once(lambda: encoder.prepare_int8("passage", texts)) if dense_precision == "int8" else 0.0
    )
    encode_s_per_token = (
        fastest_seconds(lambda: encoder.encode(sample, precision=dense_precision, show_progress=False)) / padded
    )

    left = set(pending) if pending is not None else {"retriever", "reranker", "distill", "rerank"}
    trains = mode in ("train", "self-supervised")
    trains_retriever = trains and bool(left & {"retriever", "distill"})
    retriever_step_s = _time_retriever_step(config, device, rng, queries, texts) if trains_retriever else 0.0
    reranks = ((trains and config["reranker"]["enabled"]) or mode == "transfer") and bool(
        left & {"reranker", "distill", "rerank"}
    )
    if not reranks:  # zero-shot: nothing trains or reranks, so nothing more to time
        return Rates(encode_s_per_token, 0.0, retriever_step_s, 0.0, lengths, 0.0, time.perf_counter() - started,
                     encode_quantise_s)  # fmt: skip
    options = config["reranker"]
    start = options["model"] if config["run"]["mode"] != "transfer" else None
    ce = CrossEncoder.from_pretrained(start, max_length=options["max_length"], attention_dropout=0.0).to(device)
    pairs = [(rng.choice(queries), rng.choice(texts)) for _ in range(options["batch_queries"] * options["group_size"])]
    qs, ps = [q for q, _ in pairs], [p for _, p in pairs]
    reranker_step_s = (
        _time_steps(ce, lambda: ce(ce.tokenize(qs, ps)).float().logsumexp(0), device, options["precision"])
        if trains and "reranker" in left
        else 0.0
    )
    ce.eval()
    timed_pairs = ([q for q, _ in pairs] * 2, [p for _, p in pairs] * 2)
    rerank_precision = bulk_precision(
        config["rerank"]["precision"], device, rerank_pair_count(evaluated_queries(dataset, config, mode), config)
    )
    score_quantise_s = _timed_once(lambda: ce.prepare_int8(*timed_pairs)) if rerank_precision == "int8" else 0.0
    timed_precision = resolved_precision(rerank_precision, device)  # bf16-compiled is timed as bf16
    score_seconds = fastest_seconds(
        lambda: ce.score(
            *timed_pairs, batch_size=config["rerank"]["batch_size"], precision=timed_precision, show_progress=False
        )
    )
    timed_tokens = len(timed_pairs[0]) * max(_pair_lengths(ce, *timed_pairs))  # one batch, padded to its longest
    sampled_queries = [rng.choice(queries) for _ in texts]
    mean_pair = _pair_tokens(ce, sampled_queries, texts) / len(texts)
    last = last_windows(ce.tokenizer, sampled_queries, texts, ce.max_length)
    windows = [(query, window) for query, window in zip(sampled_queries, last, strict=True) if window is not None]
    mean_last_window = _pair_tokens(ce, [q for q, _ in windows], [w for _, w in windows]) / len(texts)
    return Rates(
        encode_s_per_token,
        score_seconds / timed_tokens,
        retriever_step_s,
        reranker_step_s,
        lengths,
        mean_pair,
        time.perf_counter() - started,
        encode_quantise_s,
        score_quantise_s,
        mean_last_window,
    )


def _time_retriever_step(config: dict, device: torch.device, rng: random.Random, queries: list, texts: list) -> float:
    """Seconds per bi-encoder training step with the run's retriever settings."""
    from retrieval.encoder import BiEncoder, BiEncoderConfig
    from retrieval.train import in_batch_nll

    options = config["retriever"]
    bi = BiEncoder.from_pretrained(
        options["model"] or config["dense"]["model"],
        BiEncoderConfig(passage_max_length=options["passage_max_length"], query_max_length=options["query_max_length"]),
        attention_dropout=options["attention_dropout"],
    ).to(device)
    batch = [
        GroupSample(rng.choice(queries), rng.choices(texts, k=options["group_size"]), [], frozenset())
        for _ in range(options["batch_queries"])
    ]
    return _time_steps(
        bi,
        lambda: in_batch_nll(bi, bi, batch, options["temperature"], mask_false_negatives=False),
        device,
        options["precision"],
    )


def _tokens(tokenizer, texts: list[str], max_length: int) -> int:
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])


def _pair_lengths(model, queries: list[str], passages: list[str]) -> list[int]:
    if not queries:
        return []
    encoded = model.tokenizer(queries, passages, truncation=True, max_length=model.max_length)
    return [len(ids) for ids in encoded["input_ids"]]


def _pair_tokens(model, queries: list[str], passages: list[str]) -> int:
    return sum(_pair_lengths(model, queries, passages))


def _mean_tokens(tokenizer, texts: list[str], max_length: int) -> float:
    return _tokens(tokenizer, texts, max_length) / max(len(texts), 1)


def _timed_once(fn) -> float:
    tick = time.perf_counter()
    fn()
    return time.perf_counter() - tick


def fastest_seconds(fn, repeats: int = 2) -> float:
    """Seconds of the fastest of `repeats` calls after one untimed call (kernel set-up for the shape); the
    benchmarks under bench/ time with it too."""
    fn()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tick)
    return min(times)


def _time_steps(model: torch.nn.Module, loss_fn, device: torch.device, precision: str, steps: int = 2) -> float:
    """Seconds per optimiser step (forward, backward, AdamW), after one untimed step."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9)
    times = []
    for _ in range(steps + 1):
        tick = time.perf_counter()
        with autocast(precision, device):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - tick)
    return sum(times[1:]) / steps
