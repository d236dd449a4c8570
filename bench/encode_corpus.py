"""Corpus-encoding throughput and peak memory of `tandem index build`'s encoder path.

Writes a synthetic BEIR corpus (word counts drawn log-normally, median ~120 words, clipped 8..600, like
scientific abstracts), encodes it with the streaming, length-sorted, memory-mapped encoder and prints
passages/s and peak resident memory. Peak RSS is sampled from /proc while encoding; the embedding
memmap is on disk and counts only as page cache.

    .venv/bin/python -m bench.encode_corpus --num-passages 100000            # the issue's figure
    .venv/bin/python -m bench.encode_corpus --num-passages 2000 --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path

import torch

from bench.common import add_dtype_args, encode_measured, resolved_dtypes, write_synthetic_corpus
from core.models import resolve_model
from retrieval.encoder import BiEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-passages", type=int, default=100_000)
    parser.add_argument("--model", help="encoder (default: all-MiniLM-L6-v2, offline copy)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=50_000, help="passages held in memory at once")
    parser.add_argument("--device", default="cpu")
    add_dtype_args(parser, peer=False)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        write_synthetic_corpus(corpus, args.num_passages)
        encoder = BiEncoder.from_pretrained(resolve_model(args.model)).to_device(args.device)
        encoder.config.passage_max_length = args.max_length
        baseline = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
        _, seconds, rss = encode_measured(encoder, corpus, Path(tmp) / "shards", args)
        memmap_bytes = os.path.getsize(Path(tmp) / "shards" / "shard-0" / "embeddings.npy")
    rate = args.num_passages / seconds
    print(
        f"device={args.device} dtype={resolved_dtypes(args)[0]} threads={args.threads} max_length={args.max_length} batch={args.batch_size}"
    )
    print(f"passages={args.num_passages} seconds={seconds:.1f} embeddings_file={memmap_bytes / 2**20:.0f} MiB")
    print(
        f"rss_before={baseline / 2**30:.2f} GiB peak_rss={rss.peak_rss / 2**30:.2f} GiB peak_anon={rss.peak_anon / 2**30:.2f} GiB maxrss={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    print(f"RESULT encode: {rate:.1f} passages/s, peak RSS {rss.peak_rss / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
