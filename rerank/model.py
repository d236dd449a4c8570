"""CrossEncoder: one transformer reads `[CLS] query [SEP] passage [SEP]` and emits one raw logit.

It is a plain `AutoModelForSequenceClassification` with `num_labels=1`, so a saved folder loads
unchanged in `transformers` and as a `sentence_transformers.CrossEncoder`. Scoring may also read a long
passage's last window (`last_window`), which is how it is scored, not what is saved."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BatchEncoding

from core.batching import length_sorted_batches
from core.compiled import bf16_weights_forward
from core.int8 import Int8Model, calibration_sample, require_cpu
from core.models import fit_max_length, loading_model, quiet_transformers, resolve_model
from core.precision import autocast, pick_device
from core.progress import progress_bar

log = logging.getLogger(__name__)

CONFIG_FILE = "tandem_cross_encoder.json"


class Float32Forward(torch.nn.Module):
    """A module kind whose forward runs in float32 with autocast off, used for a cross-encoder's
    classification head: under bf16 autocast a logit rounded to bf16 keeps ~3 significant digits, so
    close candidates tie and the ranking degrades, while the (tiny) head costs nothing in float32. Mixed
    into the head's own class (`float32_head`), so its parameters, their names in the state dict and
    what `transformers` saves and loads are unchanged."""

    def forward(self, hidden: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return super().forward(hidden.float(), *args, **kwargs)


@functools.cache
def _float32_kind(kind: type) -> type:
    return type(f"Float32{kind.__name__}", (Float32Forward, kind), {})


def float32_head(model: torch.nn.Module) -> None:
    """Make `model`'s classification head (`classifier`, e.g. BERT's Linear or RoBERTa's head module) a
    `Float32Forward` of its own kind."""
    head = getattr(model, "classifier", None)
    if head is not None and not isinstance(head, Float32Forward):
        head.__class__ = _float32_kind(type(head))


def _float32_head_weights(model: torch.nn.Module) -> None:
    """A bf16 weight copy's head weights back in float32 (the copy keeps the head's `Float32Forward` kind)."""
    head = getattr(model, "classifier", None)
    if head is not None:
        head.float()


def is_cross_encoder(name_or_path: str | Path) -> bool:
    """Whether a model is a trained one-logit reranker (a sequence-classification head with one label),
    not a plain encoder whose head would be random."""
    from transformers import AutoConfig

    try:
        with loading_model(str(name_or_path)):  # an unknown or unreachable model is its own error
            config = AutoConfig.from_pretrained(resolve_model(name_or_path))
    except ValueError:
        return False
    architectures = getattr(config, "architectures", None) or []
    return config.num_labels == 1 and any(a.endswith("ForSequenceClassification") for a in architectures)


def last_windows(tokenizer, queries: Sequence[str], passages: Sequence[str], max_length: int) -> list[str | None]:
    """Each passage's last window: the text of its last whole words whose tokens fit beside the query in
    `max_length` tokens with the pair's special tokens (None where the whole passage fits, which is then
    read in full by the pair's first window)."""
    if not passages:
        return []
    distinct = list(dict.fromkeys(queries))
    encoded = tokenizer(distinct, add_special_tokens=False, verbose=False)["input_ids"]
    query_tokens = {query: len(ids) for query, ids in zip(distinct, encoded, strict=True)}
    special_tokens = tokenizer.num_special_tokens_to_add(pair=True)  # BERT: [CLS] query [SEP] passage [SEP]
    offsets = tokenizer(list(passages), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    windows: list[str | None] = []
    for query, passage, tokens in zip(queries, passages, offsets["offset_mapping"], strict=True):
        budget = max_length - query_tokens[query] - special_tokens  # tokens = each one's (start, end) characters
        if budget <= 0 or len(tokens) <= budget:
            windows.append(None)
            continue
        start = tokens[-budget][0]
        while 0 < start < len(passage) and not passage[start - 1].isspace():  # from the next whole word
            start += 1
        windows.append(passage[start:] if start < len(passage) else None)  # None: one word longer than the window
    return windows


class CrossEncoder(torch.nn.Module):
    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        max_length: int = 256,
        new_parameter_names: Sequence[str] = (),
        last_window: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.last_window = last_window
        """score a passage too long for one window on its last window too and keep the higher logit (MaxP
        over the first and last windows, Dai and Callan 2019): the model then reads the end of the passage,
        which the cut drops, at the length it trained at; it scores up to twice the pairs"""
        # parameters the start checkpoint lacked (the one-logit head of an encoder-only start)
        self.new_parameter_names = tuple(new_parameter_names)
        self._inference: dict[str, Callable] = {}  # int8|bf16 -> forward to logits, built on first use
        float32_head(model)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = None,
        max_length: int | None = None,
        attention_dropout: float | None = None,
        dtype: torch.dtype | None = None,
        last_window: bool = False,
    ) -> CrossEncoder:
        """Load a cross-encoder, or start one from any encoder (its one-logit head is then new).

        `attention_dropout=0.0` lets PyTorch's fast SDPA attention kernel run during training;
        `last_window`: see the attribute."""
        path = resolve_model(name_or_path)
        kwargs = {"num_labels": 1}
        if attention_dropout is not None:
            kwargs["attention_probs_dropout_prob"] = attention_dropout
        if dtype is not None:
            kwargs["dtype"] = dtype
        with loading_model(path):
            model, loading = AutoModelForSequenceClassification.from_pretrained(
                path, output_loading_info=True, **kwargs
            )
            tokenizer = AutoTokenizer.from_pretrained(path)
        saved = Path(path) / CONFIG_FILE
        if max_length is None:
            max_length = json.loads(saved.read_text())["max_length"] if saved.is_file() else 256
        new_names = [f"model.{name}" for name in loading["missing_keys"]]
        if new_names:
            log.info("%s has no one-logit head: a new one is trained (%s)", path, ", ".join(loading["missing_keys"]))
        max_length = fit_max_length(max_length, model, tokenizer, f"cross-encoder {path}")
        return cls(model, tokenizer, max_length, new_names, last_window)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """A Hugging Face folder; the tokenizer records `max_length` as its model_max_length, which is where
        sentence-transformers' CrossEncoder reads the length it scores at."""
        out_dir = Path(out_dir)
        kept = self.tokenizer.model_max_length
        self.tokenizer.model_max_length = self.max_length
        try:
            with quiet_transformers():
                self.model.save_pretrained(out_dir)
                self.tokenizer.save_pretrained(out_dir)
        finally:
            self.tokenizer.model_max_length = kept
        (out_dir / CONFIG_FILE).write_text(json.dumps({"max_length": self.max_length}, indent=2) + "\n")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokenize(self, queries: Sequence[str], passages: Sequence[str]) -> BatchEncoding:
        """Pairs padded to the longest in the batch. Over `max_length`, tokens come off the longer side
        first (`longest_first`): a short query keeps all its tokens and the passage is cut, while a query
        longer than the budget is cut too instead of failing (as `only_second` would)."""
        return self.tokenizer(
            list(queries),
            list(passages),
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)

    def forward(self, batch: BatchEncoding) -> torch.Tensor:
        """Raw logits, shape (pairs,)."""
        return self.model(**batch).logits.squeeze(-1)

    @torch.inference_mode()
    def score(
        self,
        queries: Sequence[str],
        passages: Sequence[str],
        batch_size: int = 64,
        precision: str = "auto",
        show_progress: bool = True,
    ) -> np.ndarray:
        """Logits for each (query, passage) pair; pairs are batched longest-first to pad little. With
        `last_window`, a pair whose passage does not fit keeps the higher of its first and last window's
        logits. `precision="int8"` quantises the model on first use, calibrated on these pairs (see
        `prepare_int8`)."""
        if len(queries) != len(passages):
            raise ValueError("queries and passages must have the same length")
        if not self.last_window:
            return self._score_windows(queries, passages, batch_size, precision, show_progress)
        windows = last_windows(self.tokenizer, queries, passages, self.max_length)
        long_pairs = [i for i, window in enumerate(windows) if window is not None]
        scores = self._score_windows(
            [*queries, *(queries[i] for i in long_pairs)], [*passages, *(windows[i] for i in long_pairs)],
            batch_size, precision, show_progress,
        )  # fmt: skip
        first, last = scores[: len(queries)], scores[len(queries) :]
        first[long_pairs] = np.maximum(first[long_pairs], last)
        return first

    def _score_windows(
        self, queries: Sequence[str], passages: Sequence[str], batch_size: int, precision: str, show_progress: bool
    ) -> np.ndarray:
        """Logits for each pair as the tokenizer cuts it (the passage's first window)."""
        self.model.eval()
        lengths = [len(q) + len(p) for q, p in zip(queries, passages, strict=True)]
        forward, context = self.inference_forward(precision, queries, passages)
        scores = np.empty(len(queries), dtype=np.float32)
        batches = length_sorted_batches(lengths, batch_size)
        for batch in progress_bar(
            batches, desc="scoring pairs", unit=" batches", disable=None if show_progress else True
        ):
            encoded = self.tokenize([queries[i] for i in batch], [passages[i] for i in batch])
            with autocast(context, self.device):
                logits = forward(encoded).squeeze(-1) if forward else self.forward(encoded)
            scores[batch] = logits.float().cpu().numpy()
        return scores

    def rank(self, query: str, passages: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        """(index into `passages`, score) of the best `top_k` passages for `query` (all when None), best
        first: the one-query call of rerankers' `rank` and sentence-transformers' `CrossEncoder.rank`."""
        scores = self.score([query] * len(passages), list(passages), show_progress=False)
        order = sorted(range(len(passages)), key=lambda i: (-float(scores[i]), i))
        return [(i, float(scores[i])) for i in order[:top_k]]

    def inference_forward(
        self, precision: str, queries: Sequence[str], passages: Sequence[str]
    ) -> tuple[Callable | None, str]:
        """(the forward pass to logits for `precision`, the autocast precision to run it under): int8 through
        OpenVINO, bf16 on a CPU through a bf16 copy of the weights with the head in float32
        (`casts_weights`; compiled for bf16-compiled), else the model itself under autocast (None)."""
        if precision == "int8":
            return self.prepare_int8(queries, passages), "fp32"
        forward = bf16_weights_forward(
            self._inference,
            "model",
            self.model,
            precision,
            self.device,
            lambda output: output.logits,
            adapt=_float32_head_weights,
        )
        return (forward, "fp32") if forward else (None, precision)

    def prepare_int8(self, queries: Sequence[str], passages: Sequence[str]) -> Int8Model:
        """The int8 (OpenVINO) model, quantised on first use with activation ranges from a length-spread
        sample of these pairs; later calls reuse it."""
        if "int8" not in self._inference:
            require_cpu(self.device)
            sample = calibration_sample([len(q) + len(p) for q, p in zip(queries, passages, strict=True)])
            calibration = [self.tokenize([queries[i]], [passages[i]]) for i in sample]
            shortest, longest = sample[0], sample[-1]
            example = self.tokenize([queries[shortest], queries[longest]], [passages[shortest], passages[longest]])
            self._inference["int8"] = Int8Model(self.model, calibration, example)
        return self._inference["int8"]

    def train(self, mode: bool = True) -> CrossEncoder:
        if mode:
            self._inference.clear()  # trained weights make quantised and bf16 copies stale
        return super().train(mode)

    def to_device(self, device: str | None = None) -> CrossEncoder:
        return self.to(pick_device(device))
