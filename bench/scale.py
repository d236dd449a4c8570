"""Scale: a million real-text passages encoded and indexed by `tandem index build`, then searched.

1. Writes a span corpus under `--out` (`write_span_corpus`: word spans of SciFact's abstracts at MS MARCO
   passage length; real text, so the embeddings are real ones) and SciFact's 1,109 claims as its queries.
2. Encodes it shard by shard, each shard in its own `tandem index build --shard-id I --encode-only` child
   process (the way torchrun ranks or separate machines run it: a finished shard is kept, so an interrupted
   run resumes at its unfinished ones; `--precision int8` is the fastest CPU path), sampling each child's
   RssAnon (heap and anonymous memory, i.e. without the page cache of the memory-mapped embeddings) every
   50 ms; sums the shards' timing.json into `--out`/encode.json; then merges and builds the index
   (`--factory auto`). An index already under `--out` is kept, and its figures are read back.
   One process per shard bounds the heap: a single process that encodes all shards in turn kept growing,
   past 2 GiB after ~460,000 int8 passages (cause not found; see bench/README).
3. Encodes the queries with the same encoder and sweeps FAISS factories over the real embeddings
   (`bench.index_sweep.sweep`): recall@100 against exact search, and latency.

    .venv/bin/python -m bench.scale --passages 1000000 --out runs/scale-1m --precision int8
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from bench.common import PeakMemory, data_root, set_threads, write_span_corpus
from bench.index_sweep import add_sweep_args, default_factories, exact_top, report, sweep
from retrieval.encoder import BiEncoder
from retrieval.index.shards import encoded_marker, shard_dir


def write_dataset(folder: Path, passages: int, median_words: int) -> None:
    """The span corpus and SciFact's claims as queries, written once (a finished corpus is kept)."""
    corpus = folder / "corpus.jsonl"
    if corpus.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "corpus.jsonl.partial"
    write_span_corpus(partial, passages, median_words)
    shutil.copy(data_root() / "scifact" / "queries.jsonl", folder / "queries.jsonl")
    partial.rename(corpus)


def index_build(dataset: Path, index: Path, args, *extra: str) -> PeakMemory:
    """`tandem index build` in a child process under a memory sampler."""
    command = [
        sys.executable, "-m", "pipelines.cli", "index", "build", "--dataset", str(dataset), "--out", str(index),
        "--num-shards", str(args.num_shards), "--precision", args.precision, "--batch-size", str(args.batch_size),
        *extra,
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    child = subprocess.Popen(command)
    with PeakMemory(pid=child.pid) as memory:
        child.wait()
    if child.returncode:
        sys.exit(f"tandem index build failed (exit {child.returncode})")
    return memory


def encode(dataset: Path, index: Path, args) -> dict:
    """Encode each unfinished shard in its own process, then sum the shards' timing.json and peak memory
    (the merge deletes the shards, so the figures are kept in `--out`/encode.json)."""
    shards = Path(f"{index}.shards")
    peaks = args.out / "shard-peaks.json"  # per shard: its process's peak RssAnon and VmRSS, in bytes
    measured = json.loads(peaks.read_text()) if peaks.is_file() else {}
    for shard in range(args.num_shards):
        if encoded_marker(shard_dir(shards, shard)).is_file():
            continue
        memory = index_build(dataset, index, args, "--encode-only", "--shard-id", str(shard))
        measured[str(shard)] = {"anon": memory.peak_anon, "rss": memory.peak_rss}
        peaks.write_text(json.dumps(measured, indent=2) + "\n")
        print(f"shard {shard}: peak RssAnon {memory.peak_anon / 2**30:.2f} GiB", flush=True)
    paths = [shard_dir(shards, shard) / "timing.json" for shard in range(args.num_shards)]
    timings = [json.loads(path.read_text()) for path in paths if path.is_file()]
    figures = {
        "passages": sum(t["passages"] for t in timings), "seconds": sum(t["seconds"] for t in timings),
        "peak_anon_gib": max((m["anon"] for m in measured.values()), default=0) / 2**30,
        "peak_rss_gib": max((m["rss"] for m in measured.values()), default=0) / 2**30,
        "shards_with_memory_figures": len(measured),
        "shard_seconds": [t["seconds"] for t in timings],  # shards that shared the cores show here
    }  # fmt: skip
    (args.out / "encode.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--median-words", type=int, default=56, help="passage length (56: MS MARCO passage's median)")
    parser.add_argument("--out", type=Path, required=True, help="corpus, index and shards are kept here")
    parser.add_argument("--precision", default="int8", choices=["auto", "fp32", "bf16", "int8"])
    parser.add_argument("--num-shards", type=int, default=20, help="resumable units of the encoding")
    parser.add_argument("--batch-size", type=int, default=64)
    add_sweep_args(parser)
    args = parser.parse_args()
    dataset, index = args.out / f"spans-{args.passages}", args.out / "index"
    write_dataset(dataset, args.passages, args.median_words)
    if not (index / "meta.json").is_file():
        encode(dataset, index, args)
        memory = index_build(dataset, index, args)
        print(f"merge and FAISS build: peak RssAnon {memory.peak_anon / 2**30:.2f} GiB")
    figures = json.loads((args.out / "encode.json").read_text())
    meta = json.loads((index / "meta.json").read_text())
    print(f"encode: {figures['passages']:,} passages timed ({meta['count']:,} in the index, {meta['precision']}) "
          f"in {figures['seconds'] / 3600:.2f} h = {figures['passages'] / figures['seconds']:.1f} passages/s; peak "
          f"RssAnon of a shard process {figures['peak_anon_gib']:.2f} GiB (without the memory-mapped embeddings), "
          f"VmRSS {figures['peak_rss_gib']:.2f} GiB, over {figures['shards_with_memory_figures']} shard processes; "
          f"{meta['factory']} built in {meta['build_seconds']:.0f} s")  # fmt: skip
    set_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    encoder = BiEncoder.from_pretrained(meta["encoder"])
    texts = [json.loads(line)["text"] for line in open(dataset / "queries.jsonl")]
    queries = np.ascontiguousarray(encoder.encode(texts, "query", show_progress=False), dtype=np.float32)
    vectors = np.load(index / "embeddings.npy", mmap_mode="r")
    started = time.perf_counter()
    truth = exact_top(vectors, queries, 100)
    print(f"exact (numpy, streamed): {(time.perf_counter() - started) / len(queries) * 1000:.2f} ms/query batched")
    factories = args.factories or default_factories(len(vectors), args.train_sample)
    report(sweep(vectors, queries, truth, factories, args))


if __name__ == "__main__":
    main()
