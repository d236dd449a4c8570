"""Index sweep for large corpora: recall@100 against exact search, and latency, of FAISS factories at
several search settings, built the way `tandem index build` builds them (trained on a sample, vectors
added in chunks from a memory-mapped file, `nprobe`/`efSearch`/refine `k_factor` set by
`set_search_parameters`). By default the factories are `--factory auto`'s choice for this many vectors
and its neighbours (SQ8 and PQ lists, PQ with an exact refine stage, HNSW).

The vectors are synthetic and clustered (a mixture of Gaussians, L2-normalised, MiniLM's 384 dimensions)
unless `--embeddings FILE.npy` gives real ones (then queries are held-out rows with noise); encoding a
million real passages takes this 2-core machine ~17 h in fp32, which is what this benchmark avoids.

    .venv/bin/python -m bench.index_sweep --vectors 1000000 --factories "IVF4096,Flat" "IVF4096,PQ64,RFlat"
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from retrieval.index.build import index_vectors
from retrieval.index.search import auto_factory, make_index, set_search_parameters

CHUNK = 100_000


def synthetic(path: Path, count: int, dim: int, clusters: int, seed: int, spread: float) -> np.ndarray:
    """`count` clustered unit vectors written to a memmap in chunks (bounded memory): a random cluster
    centre plus Gaussian noise `spread` times as long as the centre, normalised."""
    centers = np.random.default_rng(0).standard_normal((clusters, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        noise = spread * rng.standard_normal((size, dim), dtype=np.float32)
        block = centers[rng.integers(0, clusters, size)] + noise
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    out.flush()
    return np.load(path, mmap_mode="r")


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-k, streamed over the memmap in chunks."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), CHUNK):
        scores = queries @ np.asarray(vectors[start : start + CHUNK]).T
        ids = np.arange(start, start + scores.shape[1])[None, :].repeat(len(queries), 0)
        scores, ids = np.concatenate([best_scores, scores], 1), np.concatenate([best_ids, ids], 1)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
    return best_ids


def build(factory: str, vectors: np.ndarray, train_sample: int) -> tuple[faiss.Index, float]:
    """The index `tandem index build` makes (`index_vectors`), and its build seconds."""
    started = time.perf_counter()
    index = index_vectors(factory, vectors, train_sample)
    return index, time.perf_counter() - started


def default_factories(count: int, train_sample: int) -> list[str]:
    """`--factory auto`'s choice at `count` vectors and its neighbours: SQ8 and PQ lists, PQ with an exact
    refine stage, HNSW."""
    auto = auto_factory(count, train_sample)
    nlist = faiss.extract_index_ivf(make_index(auto, 8)).nlist if "IVF" in auto else 4096
    print(f"--factory auto at {count:,} passages: {auto}")
    return list(dict.fromkeys(
        [auto, f"IVF{nlist},Flat", f"IVF{nlist},SQ8", f"IVF{nlist},PQ64", f"IVF{nlist},PQ64,RFlat", "HNSW32"]
    ))  # fmt: skip


def add_sweep_args(parser) -> None:
    """The search settings and build options both sweeps (this one and bench.scale's) take."""
    parser.add_argument("--factories", nargs="+", default=None, help="FAISS factory strings (default: by size)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 64, 128, 256])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--refine-factor", type=int, nargs="+", default=[1, 4, 16],
                        help="refine indexes (...,RFlat): candidates re-scored exactly per hit")  # fmt: skip
    parser.add_argument("--train-sample", type=int, default=200_000, help="as `tandem index build` (default 200k)")
    parser.add_argument("--threads", type=int, default=2)


def recall(reference: np.ndarray, found: np.ndarray, k: int = 100) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(reference, found, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=10_000, help="mixture components of the synthetic vectors")
    parser.add_argument("--spread", type=float, default=0.5, help="noise / centre length of the synthetic vectors")
    parser.add_argument("--embeddings", type=Path, help="a real embeddings.npy instead of synthetic vectors")
    parser.add_argument("--queries", type=int, default=1000)
    add_sweep_args(parser)
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    factories = args.factories or default_factories(args.vectors, args.train_sample)
    with tempfile.TemporaryDirectory(prefix="tandem-sweep-") as tmp:
        started = time.perf_counter()
        if args.embeddings:
            vectors = np.load(args.embeddings, mmap_mode="r")
            rows = np.random.default_rng(1).choice(len(vectors), args.queries, replace=False)
            queries = np.asarray(vectors[rows]) + 0.05 * np.random.default_rng(2).standard_normal(
                (args.queries, vectors.shape[1]), dtype=np.float32
            )
        else:
            vectors = synthetic(Path(tmp) / "vectors.npy", args.vectors, args.dim, args.clusters, 1, args.spread)
            queries = np.asarray(
                synthetic(Path(tmp) / "queries.npy", args.queries, args.dim, args.clusters, 2, args.spread)
            )
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        print(f"{len(vectors):,} x {vectors.shape[1]} vectors ready in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        truth = exact_top(vectors, queries, 100)
        exact_ms = (time.perf_counter() - started) / len(queries) * 1000
        print(f"exact (numpy, streamed): {exact_ms:.2f} ms/query batched")
        best = sweep(vectors, queries, truth, factories, args)
    report(best)


def search_settings(factory: str, args) -> list[dict]:
    """The search parameters swept for `factory`: nprobe for IVF, efSearch for HNSW, k_factor for a refine
    stage (crossed with nprobe)."""
    settings = [{"nprobe": n} for n in args.nprobe] if "IVF" in factory else []
    if "RFlat" in factory or "Refine" in factory:
        settings = [{**setting, "refine_factor": r} for setting in settings or [{}] for r in args.refine_factor]
    settings += [{"ef_search": e} for e in args.ef_search] if "HNSW" in factory else []
    return settings or [{}]


def sweep(vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, factories: list[str], args) -> tuple | None:
    """Build each factory as `tandem index build` does, search `queries` at each setting and print a row
    (build s, recall@100 against `truth`, ms/query batched and single); returns the fastest setting with
    recall@100 >= 0.95 as (factory, setting, ms/query, recall), or None."""
    print(f"{'factory':<26} {'build s':>8} {'setting':>24} {'recall@100':>11} {'ms/q batched':>13} {'ms/q single':>12}")
    best = None
    for factory in factories:
        index, seconds = build(factory, vectors, args.train_sample)
        for setting in search_settings(factory, args):
            applied = set_search_parameters(index, **setting)
            tick = time.perf_counter()
            _, found = index.search(queries, 100)
            batched = (time.perf_counter() - tick) / len(queries) * 1000
            tick = time.perf_counter()
            for q in queries[:50]:
                index.search(q[None], 100)
            single = (time.perf_counter() - tick) / 50 * 1000
            value = recall(truth, found)
            label = ",".join(f"{k} {v}" for k, v in applied.items()) or "-"
            print(
                f"{factory:<26} {seconds:>8.1f} {label:>24} {value:>11.3f} {batched:>13.3f} {single:>12.2f}", flush=True
            )
            if value >= 0.95 and (best is None or batched < best[2]):
                best = (factory, label, batched, value)
        del index
    return best


def report(best: tuple | None) -> None:
    if best:
        print(
            f"RESULT index_sweep: fastest with recall@100 >= 0.95: {best[0]} ({best[1]}) {best[2]:.3f} ms/query, recall {best[3]:.3f}"
        )
    else:
        print("RESULT index_sweep: no factory/setting reached recall@100 0.95")


if __name__ == "__main__":
    main()
