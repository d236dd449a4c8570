"""A tiny randomly initialised BERT (2 layers, 32 wide) with a word-level vocabulary, saved as a Hugging
Face folder: real code paths, no download, a second per training step."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_bert(out_dir: Path, texts: list[str], seed: int = 0, vocab_file: Path | None = None) -> Path:
    """With `vocab_file` (e.g. MiniLM's WordPiece vocabulary) the tokenizer is real and `texts` unused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = out_dir / "vocab.txt"
    if vocab_file is not None:
        vocab.write_text(vocab_file.read_text())
    else:
        words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())})
        vocab.write_text("\n".join(SPECIAL + words) + "\n")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab.read_text().splitlines()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(out_dir)
    BertTokenizer(vocab=str(vocab)).save_pretrained(out_dir)
    return out_dir


def tiny_texts(dataset_dir: Path) -> list[str]:
    texts = []
    for name in ("corpus.jsonl", "queries.jsonl"):
        for line in (dataset_dir / name).read_text().splitlines():
            record = json.loads(line)
            texts += [record.get("title", ""), record["text"]]
    return texts
