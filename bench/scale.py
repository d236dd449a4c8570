"""Scale: encode and index a large synthetic corpus with bounded memory, then compare FAISS indexes.

1. Streams a synthetic corpus (realistic length spread) to disk and encodes `--encode` passages of it with
   the streaming, memory-mapped encoder; reports passages/s, and peak anonymous RSS (heap, excluding the
   file-backed embedding memmap), sampled every 50 ms. If `--encode` < `--passages`, the encoding time of
   the full corpus is extrapolated with the measured rate (the pipeline is linear in passages).
2. Builds Flat, HNSW and IVF-PQ indexes over the encoded embeddings; reports build seconds, search
   latency (ms/query, one query at a time and batched) and recall@100 against Flat.

    .venv/bin/python -m bench.scale --passages 1000000 --encode 30000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from bench.common import add_dtype_args, encode_measured, set_threads, synthetic_passages, write_synthetic_corpus
from core.models import resolve_model
from retrieval.encoder import BiEncoder


def recall_at(reference: np.ndarray, found: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(reference, found, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1_000_000, help="corpus size the figures are for")
    parser.add_argument("--encode", type=int, default=30_000, help="passages actually encoded (the rest extrapolated)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--model")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    add_dtype_args(parser, peer=False)
    args = parser.parse_args()
    set_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    encoder = BiEncoder.from_pretrained(resolve_model(args.model)).to_device(args.device)
    encoder.config.passage_max_length = args.max_length
    with tempfile.TemporaryDirectory(prefix="tandem-scale-") as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        write_synthetic_corpus(corpus, args.encode)
        shard, seconds, memory = encode_measured(encoder, corpus, Path(tmp) / "shards", args)
        embeddings = np.load(shard / "embeddings.npy", mmap_mode="r")
        vectors = np.ascontiguousarray(embeddings)
    rate = args.encode / seconds
    print(f"encode: {args.encode} passages in {seconds:.0f} s = {rate:.1f} passages/s ({args.dtype}); peak RssAnon {memory.peak_anon / 2**30:.2f} GiB "
          f"(chunk {args.chunk_size}); extrapolated {args.passages} passages: {args.passages / rate / 3600:.1f} h")  # fmt: skip
    queries = encoder.encode(
        synthetic_passages(args.queries, seed=10**9)[: args.queries], "query", precision=args.dtype, show_progress=False
    )
    n = len(vectors)
    nlist = max(16, int(4 * math.sqrt(n)))
    results = {}
    for factory in ("Flat", "HNSW32", f"IVF{nlist},PQ32"):
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        if not index.is_trained:
            index.train(vectors[np.random.default_rng(0).choice(n, size=min(n, 100 * nlist), replace=False)])
        index.add(vectors)
        build = time.perf_counter() - started
        if factory.startswith("IVF"):
            faiss.extract_index_ivf(index).nprobe = 16
        started = time.perf_counter()
        for q in queries[:100]:
            index.search(q[None], 100)
        single_ms = (time.perf_counter() - started) / 100 * 1000
        started = time.perf_counter()
        _, found = index.search(queries, 100)
        batch_ms = (time.perf_counter() - started) / len(queries) * 1000
        results[factory] = found
        recall = recall_at(results["Flat"], found, 100)
        print(
            f"{factory}: build {build:.1f} s, search {single_ms:.2f} ms/query single, {batch_ms:.3f} ms/query batched, recall@100 vs Flat {recall:.3f}"
        )
    print(f"RESULT scale: {rate:.1f} passages/s, peak RssAnon {memory.peak_anon / 2**30:.2f} GiB, {n} vectors indexed")


if __name__ == "__main__":
    main()
