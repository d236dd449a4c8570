"""Searching a built index folder, with its meta checked against the corpus and encoder used."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from core.errors import TandemError
from core.models import model_fingerprint
from core.optional import faiss
from retrieval.encoder import BiEncoder
from retrieval.index.meta import IndexMeta


class DenseIndex:
    """A built index folder: FAISS search over passage ids, with the meta checked against its users."""

    def __init__(
        self,
        index_dir: str | Path,
        use_gpu: bool | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        refine_factor: int | None = None,
    ) -> None:
        """`nprobe` (IVF: inverted lists visited, default min(64, nlist)), `ef_search` (HNSW: search
        breadth, default 128) and `refine_factor` (refine indexes such as `IVF...,PQ..,RFlat`: candidates
        re-scored exactly per hit wanted, default 4) trade speed for recall; FAISS's own defaults (1, 16
        and 1) lose most of it."""
        self.dir = Path(index_dir)
        if not (self.dir / "meta.json").is_file():
            raise TandemError(
                f"{self.dir}: not a tandem dense index (no meta.json); build one with `tandem index build`"
            )
        self.meta = read_meta(self.dir)
        self.ids = read_ids(self.dir / "docids.txt", self.meta.count)
        self.position = {doc_id: i for i, doc_id in enumerate(self.ids)}
        self.index = read_faiss(self.dir / "index.faiss", self.meta.count)
        self.search_parameters = set_search_parameters(self.index, nprobe, ef_search, refine_factor)
        if use_gpu is None:
            use_gpu = hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
        if use_gpu and "HNSW" not in self.meta.factory:  # FAISS has no GPU HNSW: it stays on the CPU
            self.index = faiss.index_cpu_to_all_gpus(self.index)

    def check(self, corpus_fingerprint: str | None = None, encoder_path: str | None = None) -> None:
        """Refuse to search with another corpus or encoder than the index was built with."""
        if corpus_fingerprint is not None and corpus_fingerprint != self.meta.corpus_fingerprint:
            raise TandemError(
                f"{self.dir} was built from {self.meta.corpus_path}: the corpus given differs (fingerprints differ)"
            )
        same_path = encoder_path is None or os.path.realpath(encoder_path) == os.path.realpath(self.meta.encoder)
        same_weights = encoder_path is not None and model_fingerprint(encoder_path) == self.meta.encoder_fingerprint
        if not same_path and not same_weights:  # a copy of the encoder's folder (same weights) is the same encoder
            raise TandemError(f"{self.dir} was built with encoder {self.meta.encoder}, not {encoder_path}")
        if same_weights and not same_path:
            return
        self.check_encoder_weights()

    def check_encoder_weights(self) -> None:
        """Refuse an encoder folder whose weights changed since the index was built."""
        recorded = self.meta.encoder_fingerprint
        if recorded is None and Path(self.meta.encoder).is_dir():
            raise TandemError(
                f"{self.dir}/meta.json records no fingerprint of its encoder's weights, so they cannot be checked: "
                "rebuild the index with `tandem index build`"
            )
        if recorded is not None and model_fingerprint(self.meta.encoder) != recorded:
            raise TandemError(
                f"{self.dir} was built with the weights then in {self.meta.encoder}; that folder now holds other "
                "weights (or is gone): rebuild the index with `tandem index build`"
            )

    def load_encoder(self, device: str | None = None) -> BiEncoder:
        self.check_encoder_weights()
        return BiEncoder.from_pretrained(self.meta.encoder).to_device(device)

    def search(self, query_embeddings: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """The top `k` passages per query (`k` above the number of passages asks for them all)."""
        k = min(k, self.meta.count)
        scores, rows = self.index.search(np.ascontiguousarray(query_embeddings, dtype=np.float32), k)
        return scores, [[self.ids[r] for r in row if r >= 0] for row in rows]

    def embeddings(self) -> np.ndarray:
        path = self.dir / "embeddings.npy"
        try:
            embeddings = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise _damaged(path, err) from None
        if embeddings.shape != (self.meta.count, self.meta.dim):
            raise _damaged(path, f"shape {embeddings.shape}, expected ({self.meta.count}, {self.meta.dim})")
        return embeddings


def read_meta(index_dir: Path) -> IndexMeta:
    path = index_dir / "meta.json"
    try:
        return IndexMeta(**json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise _damaged(path, err) from None


def read_ids(path: Path, count: int) -> list[str]:
    """docids.txt: one passage id per line, exactly `count` of them (a truncated file is refused)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _damaged(path, err) from None
    ids = text.split("\n")[:-1]
    if len(ids) != count or not text.endswith("\n"):
        raise _damaged(path, f"{len(ids)} complete lines, the index holds {count} passages")
    return ids


def read_faiss(path: Path, count: int) -> faiss.Index:
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as err:
        raise _damaged(path, str(err).strip().rsplit("failed: ", 1)[-1]) from None
    if index.ntotal != count:
        raise _damaged(path, f"{index.ntotal} vectors, the index holds {count} passages")
    return index


def _damaged(path: Path, reason: object) -> TandemError:
    return TandemError(f"{path}: missing or damaged ({str(reason)[:200]}); rebuild the index with `tandem index build`")


AUTO_FLAT_BELOW = 1_000_000
"""`--factory auto`: exact search below this many passages (1M x 384 float32 is 1.5 GiB and ~10 ms a
query batched on 2 cores), IVF above."""
AUTO_SQ8_FROM = 10_000_000
"""`--factory auto`: from this many passages the IVF lists hold 8-bit scalar-quantised vectors (4x less
memory than float32: 10M x 384 is 3.8 GiB instead of 15)."""


def auto_factory(count: int, train_sample: int = 200_000) -> str:
    """The FAISS factory `--factory auto` builds for `count` passages: Flat (exact) below 1M; else IVF with
    about 4 sqrt(count) lists (a power of two; at most train_sample / 39, FAISS's minimum of training points
    per list), `Flat` lists below 10M and `SQ8` lists from there. Searched at nprobe min(64, nlist)."""
    if count < AUTO_FLAT_BELOW:
        return "Flat"
    nlist = min(2 ** round(math.log2(4 * math.sqrt(count))), 2 ** int(math.log2(train_sample / 39)))
    return f"IVF{nlist},{'SQ8' if count >= AUTO_SQ8_FROM else 'Flat'}"


def set_search_parameters(
    index: faiss.Index, nprobe: int | None = None, ef_search: int | None = None, refine_factor: int | None = None
) -> dict:
    """Set IVF `nprobe`, HNSW `efSearch` and a refine stage's `k_factor` wherever they apply in `index`
    (through refine or pre-transform wrappers); returns what was set."""
    applied = {}
    refine = faiss.downcast_index(index)
    if hasattr(refine, "k_factor"):
        applied["k_factor"] = refine_factor or 4
        refine.k_factor = applied["k_factor"]
    ivf = _find(index, faiss.extract_index_ivf)
    if ivf is not None:
        applied["nprobe"] = min(nprobe or 64, ivf.nlist)
        ivf.nprobe = applied["nprobe"]
    hnsw = _find(index, lambda i: faiss.downcast_index(i) if hasattr(faiss.downcast_index(i), "hnsw") else None)
    if hnsw is not None:
        applied["efSearch"] = ef_search or 128
        hnsw.hnsw.efSearch = applied["efSearch"]
    return applied


def make_index(factory: str, dim: int) -> faiss.Index:
    """`faiss.index_factory` for inner product, without the polysemous training the factory turns on for
    IVF-PQ: that simulated annealing over the PQ codes only serves Hamming-threshold search, which tandem
    never uses, and it dominated IVF-PQ build time (training IVF512,PQ64 on 20,000 vectors, one thread:
    over 300 s with it, 60 s without)."""
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    ivf = _find(index, faiss.extract_index_ivf)
    if ivf is not None and hasattr(faiss.downcast_index(ivf), "do_polysemous_training"):
        faiss.downcast_index(ivf).do_polysemous_training = False
    return index


def _find(index: faiss.Index, probe):
    """The first sub-index (the index itself, or what a refine/pre-transform wrapper holds) `probe` accepts."""
    seen = index
    for _ in range(4):
        try:
            found = probe(seen)
        except RuntimeError:
            found = None
        if found is not None:
            return found
        inner = faiss.downcast_index(seen)
        seen = getattr(inner, "base_index", None) or getattr(inner, "index", None)
        if seen is None:
            return None
    return None
