"""Stage two of tandem: the cross-encoder reranker."""
