"""experiments/scoring_length.py: the last window of a passage too long for its pair, which the tail-window
scoring rescores (MaxP over the first and the last window)."""

from __future__ import annotations

from pathlib import Path

from experiments.scoring_length import tail_window
from rerank.model import CrossEncoder


def test_the_tail_window_is_the_passages_end_that_fits_from_a_whole_word(tiny_bert: Path) -> None:
    model = CrossEncoder.from_pretrained(tiny_bert, max_length=32)
    query = "aspirin heart"
    words = [f"w{i}" for i in range(60)]  # one token each here: the tiny vocabulary has no word pieces
    passage = " ".join(words)
    tail = tail_window(model, query, passage)
    assert tail is not None and passage.endswith(tail) and tail.split()[0] in words
    assert len(model.tokenizer(query, tail)["input_ids"]) <= 32 < len(model.tokenizer(query, passage)["input_ids"])
    assert tail_window(model, query, "aspirin") is None  # the whole passage fits
