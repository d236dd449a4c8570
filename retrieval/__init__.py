"""Stage one: BM25 (`bm25`, `jvm`), the bi-encoder (`encoder`) and its trainer (`train`), the FAISS index
(`index/`), dense search, hard-negative mining and pseudo-queries. Imports only from `core`."""
