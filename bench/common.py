"""Shared helpers for the benchmarks: timing, thread pinning, inputs, memory sampling."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.warmup import fastest_seconds


def add_inference_args(parser, batch_size: int = 64, dtypes: bool = True) -> None:
    """The options the inference benchmarks share (same settings for tandem and its peers); `dtypes`: also
    `--dtype`/`--peer-dtype` (encode and rerank time every precision instead: `--settings`, `--peers`)."""
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    if dtypes:
        add_dtype_args(parser)


def add_dtype_args(parser, peer: bool = True) -> None:
    """tandem's precision and (with `peer`) the peer's dtype, set separately: each library's default is
    compared by default."""
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
        help="tandem's precision (default: auto, its own default: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32)",
    )  # fmt: skip
    if peer:
        parser.add_argument(
            "--peer-dtype", default="fp32", choices=["same", "fp32", "bf16", "fp16"],
            help="sentence-transformers' weight dtype (default: fp32, its own default; same: tandem's resolved dtype)",
        )  # fmt: skip


def data_root() -> Path:
    return Path(os.environ.get("TANDEM_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def set_threads(threads: int) -> None:
    """This process on `threads` cores (affinity, so no library can use more) and `threads` torch threads;
    the peers' process pins itself the same way."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


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
    from core.precision import resolved_precision

    ours = resolved_precision(args.dtype, torch.device(args.device))
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


def write_span_corpus(path: Path, count: int, median_words: int = 56, seed: int = 0, block: int = 50_000) -> None:
    """A BEIR corpus.jsonl of `count` real-text passages: word spans cut from SciFact's abstracts at random
    offsets, lengths drawn log-normally around `median_words` (56: MS MARCO passage's median) and clipped
    8..400. Real text embeds like real passages do (synthetic word salad collapses into a few clusters),
    and overlapping spans make many near neighbours: a hard case for approximate search. Written in blocks,
    so memory stays bounded at any `count`."""
    documents = [passage.split() for passage in scifact_passages(10**9)]
    rng = np.random.default_rng(seed)
    with open(path, "w") as out:
        for start in range(0, count, block):
            size = min(block, count - start)
            lengths = np.clip(rng.lognormal(np.log(median_words), 0.5, size), 8, 400).astype(int)
            picks = rng.integers(0, len(documents), size)
            offsets = rng.random(size)
            lines = []
            for i in range(size):
                words = documents[picks[i]]
                first = int(offsets[i] * max(1, len(words) - lengths[i]))
                text = " ".join(words[first : first + lengths[i]])
                lines.append(json.dumps({"_id": f"s{start + i}", "title": "", "text": text}) + "\n")
            out.writelines(lines)


class PeakMemory:
    """Samples the VmRSS and RssAnon (heap and anonymous mappings, i.e. without the page cache of
    memory-mapped files) of this process, or of process `pid`, every 50 ms while the block runs."""

    def __init__(self, pid: int | str = "self") -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.peak_rss = 0
        self.peak_anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                lines = self.status.read_text().splitlines()
            except (FileNotFoundError, ProcessLookupError):  # the watched process has ended
                return
            for line in lines:
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


PEERS_PYTHON = Path(__file__).resolve().parents[1] / ".venv-peers" / "bin" / "python"
PEER_BACKENDS = (
    "torch-fp32",
    "torch-bf16",
    "onnx-fp32",
    "onnx-int8",
    "openvino-fp32",
    "openvino-bf16",
    "openvino-int8",
)


def add_peer_args(parser) -> None:
    parser.add_argument(
        "--peers", nargs="*", default=list(PEER_BACKENDS), choices=PEER_BACKENDS,
        help="sentence-transformers backends to compare with (default: all; they run in .venv-peers)",
    )  # fmt: skip
    parser.add_argument("--peer-cache", default="runs/bench-peers", help="exported peer models are kept here")
    parser.add_argument(
        "--quality-peers", nargs="*", default=["onnx-int8", "openvino-int8"], choices=PEER_BACKENDS,
        help="with --quality, the peers whose nDCG@10 is measured (default: the int8 ones; the others agree "
        "with fp32 to a cosine or correlation of 0.9999 and are reported without one)",
    )  # fmt: skip


def run_peers(task: str, model: str, inputs: dict, args, quality_inputs: list | None = None) -> dict[str, dict]:
    """Time sentence-transformers on each backend in `args.peers` (in `.venv-peers`, one process, pinned to
    the same threads): {backend: {"rate": items/s, "outputs": array, "quality_outputs": array | None}}."""
    import subprocess
    import sys
    import tempfile

    if not args.peers:
        return {}
    if not PEERS_PYTHON.is_file():
        sys.exit(
            "the peers' environment is missing: run `bash bench/install_peers.sh` (or pass --peers with no backend)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        payload = dict(inputs)
        if quality_inputs is not None:
            payload["quality"] = quality_inputs
            payload["quality_backends"] = args.quality_peers
        (Path(tmp) / "inputs.json").write_text(json.dumps(payload))
        command = [
            str(PEERS_PYTHON), str(Path(__file__).parent / "peers" / "run.py"), "--task", task, "--model", model,
            "--inputs", f"{tmp}/inputs.json", "--out", f"{tmp}/out", "--cache", str(Path(args.peer_cache).resolve()),
            "--threads", str(args.threads), "--max-length", str(args.max_length), "--batch-size", str(args.batch_size),
            "--repeats", str(args.repeats), "--backends", *args.peers,
        ]  # fmt: skip
        subprocess.run(command, check=True)
        out = Path(tmp) / "out"
        rates = json.loads((out / "rates.json").read_text())
        return {
            backend: {
                "rate": rate,
                "outputs": np.load(out / f"{backend}.npy"),
                "quality_outputs": np.load(out / f"{backend}.quality.npy")
                if (out / f"{backend}.quality.npy").is_file()
                else None,
            }
            for backend, rate in rates.items()
        }


def scifact_test() -> tuple[list[str], list[str], list[str], dict]:
    """SciFact's whole corpus and its test queries: (passage ids, passages, query ids + texts, qrels)."""
    from core.data.beir import BeirDataset

    dataset = BeirDataset(data_root() / "scifact")
    corpus = dataset.corpus
    passages = [corpus.passage(doc_id) for doc_id in corpus.ids]
    queries = dataset.split_queries("test")
    return corpus.ids, passages, list(queries.items()), dataset.qrels("test")


def dense_ndcg(
    passage_vectors: np.ndarray, query_vectors: np.ndarray, ids: list[str], query_ids: list[str], qrels
) -> float:
    """nDCG@10 of exact inner-product search (vectors L2-normalised first, as every row here is)."""
    from pipelines.evaluation.metrics import evaluate

    def unit(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    scores = unit(query_vectors) @ unit(passage_vectors).T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {qid: [(ids[j], float(scores[i, j])) for j in top[i]] for i, qid in enumerate(query_ids)}
    return evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"]


def roofline(gflop_per_item: float, rate: float, peak_gflops: float) -> str:
    """'X GFLOP/s, Y % of peak' for `rate` items/s of `gflop_per_item` each."""
    achieved = gflop_per_item * rate
    return f"{achieved:.0f} GFLOP/s ({100 * achieved / peak_gflops:.0f} % of the measured peak)"


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Achieved GFLOP/s (int8: GOP/s, via `torch._int_mm`) of a large square matmul on this process's
    threads: the practical peak a model's matrix multiplies can approach."""
    if dtype == torch.int8:
        a = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        multiply = torch._int_mm
    else:
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        multiply = torch.mm
    best = fastest_seconds(lambda: multiply(a, b), repeats)
    return 2 * size**3 / best / 1e9


def encoder_gflop(config, lengths: list[int]) -> float:
    """Matrix-multiply GFLOP of a BERT-style encoder over sequences of `lengths` tokens: 2 x tokens x the
    layer weights, plus attention's two L x L x d products per layer (embeddings, norms, GELU left out)."""
    d, layers, ff = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_token = 2 * layers * (4 * d * d + 2 * d * ff)
    return sum(per_token * n + layers * 4 * n * n * d for n in lengths) / 1e9
