"""Stage one of tandem: the data every stage shares, BM25 and the dense bi-encoder retriever."""
