"""Cross-encoder training over N+1 groups: listwise NLL (default) or the pointwise BCE baseline.

Each step takes B groups; for each, one positive and N negatives sampled afresh every epoch, and
scores all B*(N+1) pairs in one forward pass. The logits are laid out (B, N+1) with the positive in
column 0, which is exactly what ListwiseNLLLoss and PointwiseBCELoss take, so the two losses see
identical data, steps and seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from core.data.groups import (
    GroupBatch,
    TrainingGroup,
    groups_with_found_positives,
    groups_with_near_negatives,
    groups_with_negatives,
)
from core.errors import TandemError
from core.training.config import TrainingConfig
from core.training.distributed import setup_distributed
from core.training.loop import seed_everything, train_on_groups
from core.training.losses import LossName, make_loss
from core.training.output import finish_training, finished_summary, model_card
from rerank.model import CrossEncoder, last_windows


@dataclass
class RerankerConfig(TrainingConfig):
    """The cross-encoder's recipe: `RerankerConfig()` is exactly what `tandem run` and `tandem reranker
    train` train (their defaults are these). Why each value is what it is: docs/experiments.md."""

    model: str | None = None
    """start model: a Hugging Face name or folder (null: all-MiniLM-L6-v2, offline copy)"""
    loss: LossName = "nll"
    """nll: softmax cross-entropy over each group (listwise, localized contrastive estimation); bce: the
    pointwise baseline on the same pairs. NLL ranked above BCE at every dev evaluation on both collections
    (docs/experiments.md, "NLL against BCE, both collections")"""
    positives: int = 4
    """positives in each sampled group, at most (as many as the query has, and fewer than `group_size`);
    the rest of the group are hard negatives. Above 1 the NLL's target is the set of them
    (`ListwiseNLLLoss`): collections with many judged passages per query teach more per step. Chosen with
    `group_size` on both dev splits against 1 positive in groups of 8 (docs/experiments.md, "Several
    positives per group")"""
    positive_depth: int = 100
    """train on the positives the mining sources ranked within this depth (0: every judged positive). A
    reranker only ever sees its first stage's top hits; judged passages no first stage finds (most of
    NFCorpus's citation-derived positives) teach it features that do not rank what it is shown. Chosen on
    both dev splits against every judged positive (docs/experiments.md, "How the cross-encoder learns on a
    collection like NFCorpus")"""
    negative_depth: int = 30
    """train the judged queries on the negatives their mining source ranked within this depth (0: all the
    mined ones); title pseudo-query groups keep all of theirs. The reranker is shown its first stage's top
    `rerank.depth`: the near misses there are the distinctions it must make, negatives from further down
    are mostly easy. Chosen on both collections' dev splits (docs/experiments.md, "Where the
    cross-encoder's negatives come from")"""
    max_length: int = 256
    """tokens per (query, passage) pair, in training and in scoring; the longer side is cut first. Chosen
    on both collections' dev splits against scoring at 384 and 512 and against training at 384
    (docs/experiments.md, "How many tokens the cross-encoder reads")"""
    last_window_share: float = 0.0
    """the chance that a training passage too long for one window is read on its last window instead of
    its first (`CrossEncoder.last_window`), drawn for every pair each step, positives and negatives
    alike, so that a model scored on both windows (`rerank.last_window`) learns to rank windows that start
    mid-text, without their title. 0 on both dev splits against 0.5 (docs/experiments.md, "How many tokens
    the cross-encoder reads"): 0.5 lowered the cross-encoder alone on both"""
    attention_dropout: float = 0.0
    """attention-probability dropout; 0 lets PyTorch use its fast SDPA attention kernel"""
    device: str | None = None
    """cpu, cuda, cuda:1 (null: cuda when there is one)"""
    group_size: int = 11
    """passages a group: up to `positives` positives, the rest hard negatives (docs/experiments.md, "Several
    positives per group")"""
    min_steps: int = 600
    """the shortest training: a collection whose groups fill fewer steps than this (SciFact's) trains this
    many, more than one epoch (docs/experiments.md, "How long the cross-encoder trains")"""
    max_steps: int = 0
    """no cap: a collection with more groups trains one epoch of them (`epochs`), the learning rate decaying
    over that length. Chosen on both dev splits against a cap at 600, which stopped NFCorpus halfway through
    its groups (docs/experiments.md, "How long the cross-encoder trains"). A `--budget` or
    `reranker.max_steps` caps it where time is short"""
    learning_rate: float = 1e-4
    """the encoder's peak learning rate (linear warm-up, then linear decay to 0 at the last step). Chosen on
    both collections' dev splits against 7e-5 at the same steps (docs/experiments.md, "The cross-encoder's
    learning rate")"""
    head_learning_rate: float | None = 1.4e-3
    """the new one-logit head's peak learning rate. Chosen on SciFact's dev split alone, against the
    encoder's rate, in an earlier round (docs/log.md, "the default run, round by round"); not re-chosen on
    both collections (docs/experiments.md, "Defaults not chosen on both dev splits")"""
    save_every: int = 50
    """checkpoint this often, so an interrupted run resumes near where it stopped; it does not change the
    model"""
    eval_every: int = 150
    """a dev evaluation every this many steps, the best one's weights kept (docs/experiments.md, "How long
    the cross-encoder trains")"""


def train_reranker(
    groups: list[TrainingGroup],
    config: RerankerConfig,
    out_dir: str | Path,
    resume: bool = False,
    dev_score: Callable[[CrossEncoder], float] | None = None,
) -> dict:
    """Train and save a cross-encoder into `out_dir` (HF format); returns a summary. With `dev_score` (a
    dev figure of a model, e.g. nDCG@10 of reranking dev queries) and `config.eval_every`, training keeps
    the best-scoring weights and stops after `config.patience` evaluations without improvement."""
    out_dir = Path(out_dir)
    if resume and (finished := finished_summary(out_dir, config, len(groups))):
        return finished
    groups, without_found_positives = groups_with_found_positives(groups, config.positive_depth)
    groups, without_negatives = groups_with_negatives(groups_with_near_negatives(groups, config.negative_depth))
    if not groups:
        raise TandemError("no training group has a negative passage")
    context = setup_distributed(config.device)
    seed_everything(config.seed)
    model = CrossEncoder.from_pretrained(
        config.model, max_length=config.max_length, attention_dropout=config.attention_dropout
    )
    if config.gradient_checkpointing:
        model.model.gradient_checkpointing_enable()
    model.to(context.device)
    trainable = DistributedDataParallel(model) if context.enabled else model
    if config.positives < 1:
        raise TandemError(f"positives must be at least 1, not {config.positives}")
    positives = min(config.positives, config.group_size - 1)  # every group keeps a negative
    loss_function = make_loss(config.loss)

    def loss_fn(batch: GroupBatch) -> torch.Tensor:
        queries = [sample.query for sample in batch for _ in sample.texts]
        passages = [text for sample in batch for text in sample.texts]
        if config.last_window_share:
            passages = sampled_windows(model, queries, passages, config.last_window_share)
        logits = trainable(model.tokenize(queries, passages)).view(len(batch), config.group_size)
        if positives == 1:
            return loss_function(logits)
        counts = torch.tensor([sample.positives for sample in batch], device=logits.device)
        return loss_function(logits, positives=counts)

    evaluate = (lambda: dev_score(model)) if dev_score is not None else None
    summary = train_on_groups(
        trainable,
        groups,
        config,
        out_dir,
        context,
        model.save_pretrained,
        loss_fn,
        resume,
        evaluate=evaluate,
        positives=positives,
    )
    if context.is_main:
        card = model_card("cross-encoder", config, summary, len(groups))
        finish_training(out_dir, model.save_pretrained, config, card)
    return {
        **summary,
        "groups": len(groups),
        "groups_without_negatives": without_negatives,
        "groups_without_found_positives": without_found_positives,
        "pairs_per_step": config.batch_queries * config.group_size * context.world_size,
    }


def sampled_windows(model: CrossEncoder, queries: list[str], passages: list[str], share: float) -> list[str]:
    """`passages` with each one too long to fit beside its query replaced by its last window with chance
    `share` (drawn from `random`, whose state a resumed training restores)."""
    windows = last_windows(model.tokenizer, queries, passages, model.max_length)
    return [
        window if window is not None and random.random() < share else passage
        for passage, window in zip(passages, windows, strict=True)
    ]
