"""How `tandem run` works on a dataset: which models it trains, transfers or leaves out.

- train: the dataset has a train split; both stages are fine-tuned on it.
- transfer: no training; the bi-encoder and/or cross-encoder come from another run (`--models-from`)
  or from the config (`retriever.model`; `reranker.model` when it is a trained one-logit cross-encoder:
  a stage with no training data uses its start model as it is).
- self-supervised: no labels; both stages train on title pseudo-queries (a document's title as the
  query, its text without the title as the positive).
- zero-shot: BM25, the start bi-encoder and their hybrid only.
`auto` picks train when the train split exists, else transfer when models are given, else zero-shot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.data.beir import BeirDataset
from core.errors import TandemError
from rerank.model import is_cross_encoder

MODES = ("auto", "train", "transfer", "self-supervised", "zero-shot")
TRAINED = ("train", "self-supervised")


@dataclass
class Models:
    """The models a run uses instead of training: a bi-encoder, and cross-encoders by label."""

    bi_encoder: str | None = None
    rerankers: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.bi_encoder or self.rerankers)


def transferred_models(config: dict) -> Models:
    """Models from `run.models_from` (another run's folder: retriever/model, reranker/<loss>/), overridden
    by `retriever.model` / `reranker.model`."""
    models = Models()
    source = config["run"]["models_from"]
    if source:
        root = Path(source)
        if not root.is_dir():
            raise TandemError(f"--models-from {root}: folder not found")
        if (root / "retriever" / "model" / "config.json").is_file():
            models.bi_encoder = str(root / "retriever" / "model")
        for folder in sorted((root / "reranker").glob("*")):
            if (folder / "config.json").is_file():
                models.rerankers[folder.name] = str(folder)
        if not models:
            raise TandemError(f"--models-from {root}: no retriever/model or reranker/<loss> model in it")
    if config["retriever"]["model"]:
        models.bi_encoder = str(config["retriever"]["model"])
    if config["reranker"]["model"] and is_cross_encoder(config["reranker"]["model"]):  # not a start model
        models.rerankers = {"transferred": str(config["reranker"]["model"])}
    return models


def has_titles(dataset: BeirDataset, min_words: int = 4) -> bool:
    return any(len(title.split()) >= min_words for title in dataset.corpus.titles)


def choose_mode(dataset: BeirDataset, config: dict) -> tuple[str, str, Models]:
    """(mode, why, the models transfer mode uses) for this dataset and configuration; an impossible
    explicit mode is an error."""
    asked = config["run"]["mode"]
    if asked not in MODES:
        raise TandemError(f"run.mode must be one of {', '.join(MODES)}, not {asked!r}")
    train_split = config["split"]["train"]
    has_train = train_split in dataset.splits()
    if asked == "train" or (asked == "auto" and has_train):
        if not has_train:
            raise TandemError(f"mode train needs qrels/{train_split}.tsv in {dataset.root}")
        return "train", f"fine-tuned on qrels/{train_split}.tsv", Models()
    transferred = transferred_models(config)
    if asked == "transfer" or (asked == "auto" and transferred):
        if not transferred:
            raise TandemError("mode transfer needs --models-from DIR, retriever.model or reranker.model")
        return (
            "transfer",
            f"no train split: models transferred ({_describe(transferred)}), nothing trained",
            transferred,
        )
    if asked == "self-supervised":
        if not has_titles(dataset):
            raise TandemError(f"mode self-supervised needs documents with titles; {dataset.root} has none")
        return "self-supervised", "trained on title pseudo-queries from the corpus, no labels", Models()
    why = "no train split and no models to transfer" if asked == "auto" else "asked for"
    return "zero-shot", f"{why}: BM25, the start bi-encoder and their hybrid", Models()


def _describe(models: Models) -> str:
    parts = [f"bi-encoder {models.bi_encoder}"] if models.bi_encoder else []
    parts += [f"cross-encoder {label} {path}" for label, path in models.rerankers.items()]
    return ", ".join(parts)
