"""BiEncoder: query and passage towers over any Hugging Face encoder, with pooling, optional L2
normalisation and a temperature.

Saved layout (Hugging Face format, loadable without tandem):
- the passage tower at the folder's root, with sentence-transformers' module files (pooling,
  normalisation, max length), so `AutoModel` and `SentenceTransformer` load it unchanged;
- with separate towers, the query tower in `query/` (same layout);
- `tandem_bi_encoder.json` with pooling, normalisation, temperature, lengths and whether towers are shared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer, BatchEncoding

from core.batching import length_sorted_batches
from core.compiled import bf16_weights_forward
from core.int8 import Int8Model, calibration_sample, require_cpu
from core.models import (
    absolute,
    fit_max_length,
    loading_model,
    model_fingerprint,
    quiet_transformers,
    resolve_model,
)
from core.precision import autocast, pick_device
from core.progress import progress_bar

log = logging.getLogger(__name__)

CONFIG_FILE = "tandem_bi_encoder.json"
POOLINGS = ("mean", "cls", "lasttoken", "max")
POOLING_FLAGS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_max_tokens": "max",
}
"""sentence-transformers' pooling flags (1_Pooling/config.json before v6) and the pooling each means here:
what tandem writes, so that every version reads its folders."""


@dataclass
class BiEncoderConfig:
    pooling: str = "mean"
    """how token vectors become one: mean (over real tokens), cls (the first token), lasttoken, max"""
    normalize: bool = True
    """L2-normalise embeddings (dot product = cosine)"""
    temperature: float = 0.05
    """divides the query-passage scores in the training softmax (sentence-transformers' scale 20; not chosen
    on dev: docs/experiments.md, "Defaults not chosen on both dev splits")"""
    shared: bool = True
    """one tower for queries and passages"""
    query_max_length: int = 64
    """tokens per query"""
    passage_max_length: int = 256
    """tokens per passage"""
    query_prompt: str = ""
    """text put before every query (E5's 'query: ', BGE's instruction), as sentence-transformers' prompts"""
    passage_prompt: str = ""
    """text put before every passage"""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not '{self.pooling}'")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")


def saved_config(path: str | Path) -> BiEncoderConfig | None:
    """The configuration a model folder says it encodes with: tandem's own file, else sentence-transformers'
    (`sentence_transformers_config`); None for a folder with neither (or a hub name)."""
    saved = Path(path) / CONFIG_FILE
    if saved.is_file():
        return BiEncoderConfig(**json.loads(saved.read_text()))
    from retrieval.sentence_transformers_format import sentence_transformers_config

    return sentence_transformers_config(Path(path))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean over real (unpadded) tokens, or the [CLS] vector; in float32 even under bf16 autocast,
    so that summing hundreds of token vectors does not round away the differences between passages."""
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "lasttoken":  # the last real token of each row (padding may be on either side)
        if bool(attention_mask[:, -1].all()):
            return hidden[:, -1]
        last = attention_mask.sum(1) - 1
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(mask == 0, -1e9).max(1).values
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class BiEncoder(torch.nn.Module):
    def __init__(
        self, query_model: torch.nn.Module, passage_model: torch.nn.Module, tokenizer, config: BiEncoderConfig
    ):
        super().__init__()
        self.passage_model = passage_model
        self.query_model = passage_model if config.shared else query_model
        self.tokenizer = tokenizer
        self.config = config
        self.source = ""  # where it was loaded from, absolute (recorded in indexes)
        self._fingerprint: str | None = None
        self._inference: dict[tuple[str, str], Callable] = {}  # (kind, int8|bf16) -> forward, built on first use

    @property
    def fingerprint(self) -> str | None:
        """Content hash of the weights it was loaded from (recorded in indexes and shards); computed on
        first use only, since hashing a large model is not free and most loads never need it."""
        if self._fingerprint is None and self.source:
            self._fingerprint = model_fingerprint(self.source)
        return self._fingerprint

    # -- loading and saving -------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = None,
        config: BiEncoderConfig | None = None,
        attention_dropout: float | None = None,
    ) -> BiEncoder:
        """Load a saved bi-encoder (its own config wins unless `config` is given), or start one from
        any encoder. `attention_dropout=0.0` lets PyTorch use its fast SDPA kernel when training."""
        path = resolve_model(name_or_path)
        if config is None:
            config = saved_config(path)
        if config is None:
            config = BiEncoderConfig()
            log.warning(
                "%s has no tandem or sentence-transformers encoder config: assuming mean pooling, normalised "
                "embeddings, %d-token passages, no prompts", path, config.passage_max_length,
            )  # fmt: skip
        kwargs = {} if attention_dropout is None else {"attention_probs_dropout_prob": attention_dropout}
        query_path = Path(path) / "query"
        with loading_model(path):
            passage_model = AutoModel.from_pretrained(path, **kwargs)
            if config.shared:
                query_model = passage_model
            else:
                query_model = AutoModel.from_pretrained(query_path if query_path.is_dir() else path, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path)
        config = replace(
            config,
            passage_max_length=fit_max_length(
                config.passage_max_length, passage_model, tokenizer, f"passages of {path}"
            ),
            query_max_length=fit_max_length(config.query_max_length, query_model, tokenizer, f"queries of {path}"),
        )
        encoder = cls(query_model, passage_model, tokenizer, config)
        encoder.source = absolute(path)
        return encoder

    def save_pretrained(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        towers = [(out_dir, self.passage_model, self.config.passage_max_length)]
        if not self.config.shared:
            towers.append((out_dir / "query", self.query_model, self.config.query_max_length))
        for folder, model, max_length in towers:
            with quiet_transformers():
                model.save_pretrained(folder)
                self.tokenizer.save_pretrained(folder)
            self._write_sentence_transformers_files(folder, model.config.hidden_size, max_length)
        (out_dir / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    def _write_sentence_transformers_files(self, folder: Path, dim: int, max_length: int) -> None:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if self.config.normalize:
            modules.append(
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            )
            (folder / "2_Normalize").mkdir(exist_ok=True)
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = {
            "word_embedding_dimension": dim,
            **{key: self.config.pooling == name for key, name in POOLING_FLAGS.items()},
            "pooling_mode_mean_sqrt_len_tokens": False,
        }
        prompts = {"query": self.config.query_prompt, "passage": self.config.passage_prompt}
        if any(prompts.values()):
            (folder / "config_sentence_transformers.json").write_text(
                json.dumps({"prompts": prompts, "default_prompt_name": None}, indent=2) + "\n"
            )
        (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_length, "do_lower_case": False}) + "\n"
        )

    # -- encoding -------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.passage_model.parameters()).device

    @property
    def dim(self) -> int:
        return self.passage_model.config.hidden_size

    def tokenize(self, texts: Sequence[str], kind: str) -> BatchEncoding:
        """Each text after its kind's prompt, padded to the batch's longest and cut at its kind's max length."""
        query = kind == "query"
        max_length = self.config.query_max_length if query else self.config.passage_max_length
        prompt = self.config.query_prompt if query else self.config.passage_prompt
        texts = [prompt + text for text in texts] if prompt else list(texts)
        return self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(
            self.device
        )

    def embed(
        self, batch: BatchEncoding, kind: str, forward: Callable[[BatchEncoding], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Pooled (and, if configured, L2-normalised) embeddings of a tokenised batch; `forward` (from
        `inference_forward`) replaces the tower's own pass."""
        if forward is not None:
            hidden = forward(batch)
        else:
            model = self.query_model if kind == "query" else self.passage_model
            hidden = model(**batch).last_hidden_state
        vectors = pool(hidden, batch["attention_mask"], self.config.pooling)
        return F.normalize(vectors, dim=-1) if self.config.normalize else vectors

    def forward(self, queries: BatchEncoding, passages: BatchEncoding) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(queries, "query"), self.embed(passages, "passage")

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        kind: str = "passage",
        batch_size: int = 64,
        precision: str = "auto",
        show_progress: bool = True,
        on_batch: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """float32 embeddings (n, dim), batched longest-first with dynamic padding. `on_batch(n)` is
        called after each batch of n texts (e.g. an outer progress bar's `update`). `precision="int8"`
        quantises the tower on first use, calibrated on these texts (see `prepare_int8`)."""
        self.eval()
        forward, context = self.inference_forward(kind, precision, texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches = length_sorted_batches([len(t) for t in texts], batch_size)
        for batch in progress_bar(
            batches, desc=f"encoding {kind}s", unit=" batches", disable=None if show_progress else True
        ):
            with autocast(context, self.device):
                vectors = self.embed(self.tokenize([texts[i] for i in batch], kind), kind, forward)
            out[batch] = vectors.float().cpu().numpy()
            if on_batch is not None:
                on_batch(len(batch))
        return out

    def inference_forward(self, kind: str, precision: str, texts: Sequence[str]) -> tuple[Callable | None, str]:
        """(the tower's forward pass for `precision`, the autocast precision to run it under): int8 through
        OpenVINO, bf16 on a CPU through a bf16 copy of the weights (`casts_weights`; compiled for
        bf16-compiled), else the tower itself under autocast (None)."""
        if precision == "int8":
            return self.prepare_int8(kind, texts), "fp32"
        tower_kind = "query" if kind == "query" and not self.config.shared else "passage"  # one copy if shared
        tower = self.query_model if tower_kind == "query" else self.passage_model
        forward = bf16_weights_forward(
            self._inference, tower_kind, tower, precision, self.device, lambda output: output.last_hidden_state
        )
        return (forward, "fp32") if forward else (None, precision)

    def prepare_int8(self, kind: str, calibration_texts: Sequence[str]) -> Int8Model:
        """The tower's int8 (OpenVINO) model, quantised on first use with activation ranges from a
        length-spread sample of `calibration_texts`; later calls reuse it. Call it first with a fixed
        sample (e.g. the corpus's first passages) to make sharded encodes calibrate alike."""
        if (kind, "int8") not in self._inference:
            require_cpu(self.device)
            model = self.query_model if kind == "query" else self.passage_model
            sample = calibration_sample([len(t) for t in calibration_texts])
            calibration = [self.tokenize([calibration_texts[i]], kind) for i in sample]
            example = self.tokenize([calibration_texts[sample[0]], calibration_texts[sample[-1]]], kind)
            self._inference[kind, "int8"] = Int8Model(model, calibration, example)
        return self._inference[kind, "int8"]

    def train(self, mode: bool = True) -> BiEncoder:
        if mode:
            self._inference.clear()  # trained weights make quantised and bf16 copies stale
        return super().train(mode)

    def to_device(self, device: str | None = None) -> BiEncoder:
        return self.to(pick_device(device))
