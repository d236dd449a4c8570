"""Shared helpers for the benchmarks: timing, thread pinning, inputs, memory sampling."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def add_inference_args(parser, batch_size: int = 64) -> None:
    """The options the encode and rerank benchmarks share (same settings for tandem and its peer)."""
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    add_dtype_args(parser)


def add_dtype_args(parser, peer: bool = True) -> None:
    """tandem's precision and (with `peer`) the peer's dtype, set separately: each library's default is
    compared by default."""
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
        help="tandem's precision (default: auto, its own default: bf16 on CUDA and on CPUs with AMX, else fp32)",
    )  # fmt: skip
    if peer:
        parser.add_argument(
            "--peer-dtype", default="fp32", choices=["same", "fp32", "bf16", "fp16"],
            help="sentence-transformers' weight dtype (default: fp32, its own default; same: tandem's resolved dtype)",
        )  # fmt: skip


def data_root() -> Path:
    return Path(os.environ.get("TANDEM_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Seconds of the fastest of `repeats` calls (after one warm-up call on the same input)."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def synthetic_passages(count: int, seed: int = 0) -> list[str]:
    """Word counts drawn log-normally (median ~120, clipped 8..600): a realistic length spread."""
    rng = np.random.default_rng(seed)
    vocabulary = [
        "protein",
        "cells",
        "gene",
        "expression",
        "patients",
        "study",
        "increased",
        "the",
        "of",
        "and",
        "in",
        "with",
        "was",
        "risk",
    ]
    lengths = np.clip(rng.lognormal(np.log(120), 0.6, count), 8, 600).astype(int)
    return [" ".join(rng.choice(vocabulary, size=n)) for n in lengths]


def scifact_passages(limit: int) -> list[str]:
    passages = []
    with open(data_root() / "scifact" / "corpus.jsonl") as handle:
        for line in handle:
            record = json.loads(line)
            passages.append(f"{record['title']} {record['text']}".strip())
            if len(passages) == limit:
                break
    return passages


def resolved_dtypes(args) -> tuple[str, str]:
    """(tandem's dtype after resolving `auto` on this device, the peer's dtype), as names."""
    from core.precision import autocast_dtype

    names = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    ours = names[autocast_dtype(args.dtype, torch.device(args.device))]
    peer = getattr(args, "peer_dtype", "same")
    return ours, ours if peer == "same" else peer


def dtype_of(name: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def write_synthetic_corpus(path: Path, count: int, block: int = 50_000) -> None:
    """A BEIR corpus.jsonl of `count` synthetic passages, written in blocks (bounded memory)."""
    with open(path, "w") as out:
        for start in range(0, count, block):
            for i, text in enumerate(synthetic_passages(min(block, count - start), seed=start)):
                out.write(json.dumps({"_id": f"d{start + i}", "title": "", "text": text}) + "\n")


class PeakMemory:
    """Samples this process's VmRSS and RssAnon (heap and anonymous mappings, i.e. without the page
    cache of memory-mapped files) every 50 ms while the block runs."""

    def __init__(self) -> None:
        self.peak_rss = 0
        self.peak_anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
                    elif line.startswith("RssAnon:"):
                        self.peak_anon = max(self.peak_anon, int(line.split()[1]) * 1024)
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def encode_measured(encoder, corpus: Path, out_dir: Path, args) -> tuple[Path, float, PeakMemory]:
    """Encode `corpus` with tandem's streaming shard encoder under a memory sampler: (shard folder,
    seconds, peak memory). `args` carries batch_size, chunk_size and dtype."""
    from retrieval.index import encode_corpus_shard

    with PeakMemory() as memory:
        started = time.perf_counter()
        shard = encode_corpus_shard(
            encoder, corpus, out_dir, batch_size=args.batch_size, chunk_size=args.chunk_size, precision=args.dtype
        )
        seconds = time.perf_counter() - started
    return shard, seconds, memory
