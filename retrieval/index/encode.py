"""Corpus encoding into memory-mapped shards.

Encoding streams the corpus in chunks (each sorted by length, dynamically padded) into a memory-mapped
float32 file, so memory stays bounded whatever the corpus size. `shard_id/num_shards` split the corpus
into contiguous ranges that separate processes (or machines) encode; `build.py` merges them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from core.atomic import atomic_dir
from core.data.beir import file_fingerprint, iter_jsonl_records, join_title
from core.errors import TandemError
from core.outputs import claim_folder
from core.parts import shard_range
from core.precision import bulk_encode_precision, resolved_precision
from core.progress import progress_bar
from retrieval.encoder import BiEncoder
from retrieval.index.shards import encoded_marker, shard_dir

log = logging.getLogger(__name__)

INT8_CALIBRATION_POOL = 1000
"""int8 calibrates on a length-spread sample of the corpus's first passages, the same for every shard."""


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
    claim_folder(out_dir, "index-shards")
    shard = shard_dir(out_dir, shard_id)
    start, stop = shard_range(count_lines(corpus_path), shard_id, num_shards)
    precision = bulk_encode_precision(precision, encoder.device, stop - start)
    made_with = {
        "encoder": encoder.source,
        "weights": encoder.fingerprint,
        "config": asdict(encoder.config),
        "corpus": str(corpus_path.resolve()),
        "corpus_fingerprint": file_fingerprint(corpus_path),  # a corpus edited in place is not the same corpus
        "range": [start, stop],
        "precision": resolved_precision(precision, encoder.device),  # fp32, bf16 and int8 vectors differ
    }
    if encoded_marker(shard).is_file():
        previous = json.loads((shard / "shard.json").read_text()) if (shard / "shard.json").is_file() else None
        if previous != made_with:
            raise TandemError(f"{shard} was encoded differently ({previous}); delete it or use another --out")
        log.info("%s already encoded", shard)
        return shard
    if precision == "int8":  # every shard calibrates on the same passages: the corpus's first ones
        encoder.prepare_int8("passage", [text for _, text in iter_passages(corpus_path, 0, INT8_CALIBRATION_POOL)])
    started = time.perf_counter()
    with atomic_dir(shard, "index-shard") as staging:
        (staging / "shard.json").write_text(json.dumps(made_with, indent=2) + "\n")
        embeddings = np.lib.format.open_memmap(
            staging / "embeddings.npy", mode="w+", dtype=np.float32, shape=(stop - start, encoder.dim)
        )
        ids: list[str] = []
        chunk: list[tuple[str, str]] = []
        with progress_bar(total=stop - start, desc=f"encoding shard {shard_id}", unit=" passages", disable=None) as bar:
            for item in iter_passages(corpus_path, start, stop):
                chunk.append(item)
                if len(chunk) == chunk_size:
                    _encode_chunk(encoder, chunk, embeddings, len(ids), batch_size, precision, bar.update)
                    ids += [doc_id for doc_id, _ in chunk]
                    chunk = []
            if chunk:
                _encode_chunk(encoder, chunk, embeddings, len(ids), batch_size, precision, bar.update)
                ids += [doc_id for doc_id, _ in chunk]
        embeddings.flush()
        del embeddings
        (staging / "docids.txt").write_text("\n".join(ids) + "\n")
        timing = {"passages": len(ids), "seconds": round(time.perf_counter() - started, 3)}
        (staging / "timing.json").write_text(json.dumps(timing) + "\n")  # what it cost, apart from shard.json
    return shard


def _encode_chunk(
    encoder: BiEncoder, chunk, embeddings: np.ndarray, offset: int, batch_size: int, precision: str, on_batch
) -> None:
    texts = [text for _, text in chunk]
    embeddings[offset : offset + len(chunk)] = encoder.encode(
        texts, "passage", batch_size, precision, show_progress=False, on_batch=on_batch
    )
