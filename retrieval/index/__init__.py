"""The dense index: encode a corpus into memory-mapped shards (`encode`), build a FAISS index from them
(`build`), search it (`search`); `meta.json` (`meta`) ties an index to its corpus and encoder. Imports from
`core` and `retrieval.encoder` only."""

from retrieval.index.build import build_dense_index, build_index, check_factory
from retrieval.index.encode import encode_corpus_shard
from retrieval.index.meta import IndexMeta
from retrieval.index.search import DenseIndex

__all__ = ["DenseIndex", "IndexMeta", "build_dense_index", "build_index", "check_factory", "encode_corpus_shard"]
