"""FAISS index building: merge the encoded shards into one memory-mapped matrix and index it.

The index folder holds:

    index.faiss      the FAISS index (inner product)
    docids.txt       passage id of each index row
    embeddings.npy   the passage embeddings (memory-mapped; used to score positives when mining)
    meta.json        encoder, pooling, normalisation, dimension, max length, corpus fingerprint, factory
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from core.atomic import atomic_dir
from core.data.beir import file_fingerprint
from core.errors import TandemError
from core.models import absolute, resolve_model
from core.optional import faiss
from core.outputs import remove_owned
from core.progress import progress_bar
from retrieval.encoder import BiEncoder
from retrieval.index.encode import encode_corpus_shard
from retrieval.index.meta import IndexMeta
from retrieval.index.search import auto_factory, make_index
from retrieval.index.shards import encoded_marker, shard_dir

log = logging.getLogger(__name__)


def build_index(
    encoder_path: str,
    encoder: BiEncoder,
    corpus_path: str | Path,
    shards_dir: str | Path,
    out_dir: str | Path,
    num_shards: int = 1,
    factory: str = "auto",
    train_sample: int = 200_000,
    seed: int = 0,
    encode_seconds: float = 0.0,
) -> IndexMeta:
    """Merge the shards' embeddings into one memmap and build a FAISS index from `factory`
    (inner product; IVF/PQ indexes are trained on a random sample; `auto` chooses by corpus size)."""
    shards = [shard_dir(shards_dir, i) for i in range(num_shards)]
    missing = [s for s in shards if not encoded_marker(s).is_file()]
    if missing:
        raise TandemError(f"shards not encoded yet: {', '.join(str(m) for m in missing)}")
    precisions = {json.loads((s / "shard.json").read_text()).get("precision") for s in shards}
    if len(precisions) > 1:
        raise TandemError(
            f"the shards in {shards_dir} were encoded in different precisions ({sorted(map(str, precisions))})"
        )
    started = time.perf_counter()
    corpus_path = Path(corpus_path).resolve()
    with atomic_dir(out_dir, "dense-index") as staging:
        ids: list[str] = []
        for shard in shards:
            ids += (shard / "docids.txt").read_text().split("\n")[:-1]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            duplicate = next(doc_id for doc_id in ids if doc_id in seen or seen.add(doc_id))
            raise TandemError(f"{corpus_path}: passage id '{duplicate}' occurs more than once; ids must be unique")
        merged = np.lib.format.open_memmap(
            staging / "embeddings.npy", mode="w+", dtype=np.float32, shape=(len(ids), encoder.dim)
        )
        offset = 0
        for shard in shards:
            part = np.load(shard / "embeddings.npy", mmap_mode="r")
            merged[offset : offset + len(part)] = part
            offset += len(part)
        merged.flush()
        if factory == "auto":
            factory = auto_factory(len(ids), train_sample)
            log.info("--factory auto: %s for %d passages", factory, len(ids))
        index = index_vectors(factory, merged, train_sample, seed)
        faiss.write_index(index, str(staging / "index.faiss"))
        (staging / "docids.txt").write_text("\n".join(ids) + "\n")
        meta = IndexMeta(
            encoder=absolute(encoder_path),
            encoder_fingerprint=encoder.fingerprint,
            pooling=encoder.config.pooling,
            normalize=encoder.config.normalize,
            dim=encoder.dim,
            passage_max_length=encoder.config.passage_max_length,
            query_max_length=encoder.config.query_max_length,
            corpus_path=str(corpus_path),
            corpus_fingerprint=file_fingerprint(corpus_path),
            factory=factory,
            count=len(ids),
            encode_seconds=encode_seconds,
            build_seconds=time.perf_counter() - started,
            precision=precisions.pop(),
        )
        (staging / "meta.json").write_text(json.dumps(asdict(meta), indent=2) + "\n")
    return meta


def index_vectors(factory: str, vectors: np.ndarray, train_sample: int = 200_000, seed: int = 0) -> faiss.Index:
    """A FAISS index from `factory` over `vectors` (a memmap is fine): trained, when it needs training, on
    a seeded sample of at most `train_sample` rows, then filled in chunks of 100,000, so memory stays
    bounded by the sample and one chunk."""
    index = make_index(factory, vectors.shape[1])
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(vectors), size=min(train_sample, len(vectors)), replace=False))
        log.info("training %s on %d vectors", factory, len(sample))
        try:
            index.train(np.ascontiguousarray(vectors[sample]))
        except RuntimeError as err:  # e.g. more IVF lists than passages
            reason = str(err).strip().splitlines()[-1]
            raise TandemError(f"FAISS could not train '{factory}' on {len(sample)} passages: {reason}") from None
    for start in progress_bar(range(0, len(vectors), 100_000), desc="adding to index", unit=" chunks", disable=None):
        index.add(np.ascontiguousarray(vectors[start : start + 100_000]))
    return index


def check_factory(factory: str, dim: int) -> None:
    """Fail before hours of encoding on a FAISS factory string FAISS cannot build at this dimension (an
    empty index is made and dropped: no vectors, no training). `auto` is always fine."""
    if factory == "auto":
        return
    try:
        faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise TandemError(
            f"--factory '{factory}' is not a FAISS index_factory string FAISS can build ({reason})"
        ) from None


def build_dense_index(
    encoder_path: str | Path | None,
    corpus_path: str | Path,
    out_dir: str | Path,
    factory: str = "auto",
    batch_size: int = 64,
    precision: str = "auto",
    device: str | None = None,
) -> IndexMeta:
    """Encode a whole corpus in this process and index it: the one-call path."""
    resolved = resolve_model(encoder_path)
    encoder = BiEncoder.from_pretrained(resolved).to_device(device)
    check_factory(factory, encoder.dim)
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
    remove_owned(shards_dir, "index-shards")
    return meta
