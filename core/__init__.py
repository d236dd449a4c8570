"""What both stages share: data formats (`data/`), the training loop and losses (`training/`), device and
precision choice, model resolution, errors and atomic writes. Imports nothing from retrieval, rerank or pipelines."""
