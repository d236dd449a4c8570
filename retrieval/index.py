"""Corpus encoding and FAISS indexes.

Encoding streams the corpus in chunks (each sorted by length, dynamically padded) into a
memory-mapped float32 file, so memory stays bounded whatever the corpus size. `--shard-id/--num-shards`
split the corpus into contiguous ranges that separate processes (or machines) encode; building the
index then reads every shard's memmap. The index folder holds:

    index.faiss      the FAISS index (inner product)
    docids.txt       passage id of each index row
    embeddings.npy   the passage embeddings (memory-mapped; used to score positives when mining)
    meta.json        encoder, pooling, normalisation, dimension, max length, corpus fingerprint, factory
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from tqdm.auto import tqdm

from retrieval.atomic import atomic_dir
from retrieval.beir import file_fingerprint, iter_jsonl_records, join_title
from retrieval.encoder import BiEncoder
from retrieval.errors import TandemError

log = logging.getLogger(__name__)


@dataclass
class IndexMeta:
    encoder: str
    pooling: str
    normalize: bool
    dim: int
    passage_max_length: int
    query_max_length: int
    corpus_path: str
    corpus_fingerprint: str
    factory: str
    count: int
    encode_seconds: float = 0.0
    build_seconds: float = 0.0


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def iter_passages(corpus_path: Path, start: int, stop: int) -> Iterator[tuple[str, str]]:
    """(id, "title text") for records start..stop-1 of the corpus, streamed."""
    for position, (_, record) in enumerate(iter_jsonl_records(corpus_path, required=("_id", "text"))):
        if position >= stop:
            return
        if position >= start:
            yield record["_id"], join_title(record.get("title") or "", record["text"] or "")


def shard_range(total: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    if not 0 <= shard_id < num_shards:
        raise TandemError(f"--shard-id must be in 0..{num_shards - 1}")
    return total * shard_id // num_shards, total * (shard_id + 1) // num_shards


def encode_corpus_shard(
    encoder: BiEncoder,
    corpus_path: str | Path,
    out_dir: str | Path,
    shard_id: int = 0,
    num_shards: int = 1,
    batch_size: int = 64,
    chunk_size: int = 50_000,
    precision: str = "auto",
) -> Path:
    """Encode one contiguous shard into `out_dir/shard-<id>/` (embeddings.npy memmap + docids.txt).
    A finished shard is kept as it is (so a re-run resumes at the unfinished shards)."""
    corpus_path = Path(corpus_path)
    shard_dir = Path(out_dir) / f"shard-{shard_id}"
    start, stop = shard_range(count_lines(corpus_path), shard_id, num_shards)
    made_with = {
        "encoder": encoder.source,
        "config": asdict(encoder.config),
        "corpus": str(corpus_path.resolve()),
        "range": [start, stop],
    }
    if (shard_dir / "docids.txt").is_file():
        previous = json.loads((shard_dir / "shard.json").read_text()) if (shard_dir / "shard.json").is_file() else None
        if previous != made_with:
            raise TandemError(f"{shard_dir} was encoded differently ({previous}); delete it or use another --out")
        log.info("%s already encoded", shard_dir)
        return shard_dir
    with atomic_dir(shard_dir) as staging:
        (staging / "shard.json").write_text(json.dumps(made_with, indent=2) + "\n")
        embeddings = np.lib.format.open_memmap(
            staging / "embeddings.npy", mode="w+", dtype=np.float32, shape=(stop - start, encoder.dim)
        )
        ids: list[str] = []
        chunk: list[tuple[str, str]] = []
        with tqdm(total=stop - start, desc=f"encoding shard {shard_id}", unit=" passages", disable=None) as bar:
            for item in iter_passages(corpus_path, start, stop):
                chunk.append(item)
                if len(chunk) == chunk_size:
                    _encode_chunk(encoder, chunk, embeddings, len(ids), batch_size, precision)
                    ids += [doc_id for doc_id, _ in chunk]
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                _encode_chunk(encoder, chunk, embeddings, len(ids), batch_size, precision)
                ids += [doc_id for doc_id, _ in chunk]
                bar.update(len(chunk))
        embeddings.flush()
        del embeddings
        (staging / "docids.txt").write_text("\n".join(ids) + "\n")
    return shard_dir


def _encode_chunk(
    encoder: BiEncoder, chunk, embeddings: np.ndarray, offset: int, batch_size: int, precision: str
) -> None:
    texts = [text for _, text in chunk]
    embeddings[offset : offset + len(chunk)] = encoder.encode(
        texts, "passage", batch_size, precision, show_progress=False
    )


def build_index(
    encoder_path: str,
    encoder: BiEncoder,
    corpus_path: str | Path,
    shards_dir: str | Path,
    out_dir: str | Path,
    num_shards: int = 1,
    factory: str = "Flat",
    train_sample: int = 200_000,
    seed: int = 0,
    encode_seconds: float = 0.0,
) -> IndexMeta:
    """Merge the shards' embeddings into one memmap and build a FAISS index from `factory`
    (inner product; IVF/PQ indexes are trained on a random sample)."""
    shards = [Path(shards_dir) / f"shard-{i}" for i in range(num_shards)]
    missing = [s for s in shards if not (s / "docids.txt").is_file()]
    if missing:
        raise TandemError(f"shards not encoded yet: {', '.join(str(m) for m in missing)}")
    started = time.perf_counter()
    corpus_path = Path(corpus_path).resolve()
    with atomic_dir(out_dir) as staging:
        ids: list[str] = []
        for shard in shards:
            ids += (shard / "docids.txt").read_text().split("\n")[:-1]
        merged = np.lib.format.open_memmap(
            staging / "embeddings.npy", mode="w+", dtype=np.float32, shape=(len(ids), encoder.dim)
        )
        offset = 0
        for shard in shards:
            part = np.load(shard / "embeddings.npy", mmap_mode="r")
            merged[offset : offset + len(part)] = part
            offset += len(part)
        merged.flush()
        index = faiss.index_factory(encoder.dim, factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(ids), size=min(train_sample, len(ids)), replace=False))
            log.info("training %s on %d vectors", factory, len(sample))
            index.train(np.ascontiguousarray(merged[sample]))
        for start in tqdm(range(0, len(ids), 100_000), desc="adding to index", unit=" chunks", disable=None):
            index.add(np.ascontiguousarray(merged[start : start + 100_000]))
        faiss.write_index(index, str(staging / "index.faiss"))
        (staging / "docids.txt").write_text("\n".join(ids) + "\n")
        meta = IndexMeta(
            encoder=encoder_path, pooling=encoder.config.pooling, normalize=encoder.config.normalize, dim=encoder.dim,
            passage_max_length=encoder.config.passage_max_length, query_max_length=encoder.config.query_max_length,
            corpus_path=str(corpus_path), corpus_fingerprint=file_fingerprint(corpus_path), factory=factory, count=len(ids),
            encode_seconds=encode_seconds, build_seconds=time.perf_counter() - started,
        )  # fmt: skip
        (staging / "meta.json").write_text(json.dumps(asdict(meta), indent=2) + "\n")
    return meta


def build_dense_index(
    encoder_path: str | Path | None,
    corpus_path: str | Path,
    out_dir: str | Path,
    factory: str = "Flat",
    batch_size: int = 64,
    precision: str = "auto",
    device: str | None = None,
) -> IndexMeta:
    """Encode a whole corpus in this process and index it: the one-call path."""
    from retrieval.models import resolve_model

    resolved = resolve_model(encoder_path)
    encoder = BiEncoder.from_pretrained(resolved).to_device(device)
    out_dir = Path(out_dir)
    shards_dir = out_dir.with_name(out_dir.name + ".shards")
    started = time.perf_counter()
    encode_corpus_shard(encoder, corpus_path, shards_dir, batch_size=batch_size, precision=precision)
    meta = build_index(
        resolved,
        encoder,
        corpus_path,
        shards_dir,
        out_dir,
        factory=factory,
        encode_seconds=time.perf_counter() - started,
    )
    shutil.rmtree(shards_dir, ignore_errors=True)
    return meta


class DenseIndex:
    """A built index folder: FAISS search over passage ids, with the meta checked against its users."""

    def __init__(self, index_dir: str | Path, use_gpu: bool | None = None) -> None:
        self.dir = Path(index_dir)
        if not (self.dir / "meta.json").is_file():
            raise TandemError(
                f"{self.dir}: not a tandem dense index (no meta.json); build one with `tandem index build`"
            )
        self.meta = IndexMeta(**json.loads((self.dir / "meta.json").read_text()))
        self.ids = (self.dir / "docids.txt").read_text().split("\n")[:-1]
        self.position = {doc_id: i for i, doc_id in enumerate(self.ids)}
        self.index = faiss.read_index(str(self.dir / "index.faiss"))
        if use_gpu is None:
            use_gpu = hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
        if use_gpu:
            self.index = faiss.index_cpu_to_all_gpus(self.index)

    def check(self, corpus_fingerprint: str | None = None, encoder_path: str | None = None) -> None:
        """Refuse to search with another corpus or encoder than the index was built with."""
        if corpus_fingerprint is not None and corpus_fingerprint != self.meta.corpus_fingerprint:
            raise TandemError(
                f"{self.dir} was built from {self.meta.corpus_path}: the corpus given differs (fingerprints differ)"
            )
        if encoder_path is not None and os.path.realpath(encoder_path) != os.path.realpath(self.meta.encoder):
            raise TandemError(f"{self.dir} was built with encoder {self.meta.encoder}, not {encoder_path}")

    def load_encoder(self, device: str | None = None) -> BiEncoder:
        return BiEncoder.from_pretrained(self.meta.encoder).to_device(device)

    def search(self, query_embeddings: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        scores, rows = self.index.search(np.ascontiguousarray(query_embeddings, dtype=np.float32), k)
        return scores, [[self.ids[r] for r in row if r >= 0] for row in rows]

    def embeddings(self) -> np.ndarray:
        return np.load(self.dir / "embeddings.npy", mmap_mode="r")
