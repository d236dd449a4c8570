"""Cross-encoder training over N+1 groups: listwise NLL (default) or the pointwise BCE baseline.

Each step takes B groups; for each, one positive and N negatives sampled afresh every epoch, and
scores all B*(N+1) pairs in one forward pass. The logits are laid out (B, N+1) with the positive in
column 0, which is exactly what ListwiseNLLLoss and PointwiseBCELoss take, so the two losses see
identical data, steps and seed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from core.atomic import publish_model
from core.data.groups import GroupBatch, TrainingGroup, groups_with_negatives
from core.errors import TandemError
from core.training.config import TrainingConfig
from core.training.distributed import setup_distributed
from core.training.loop import seed_everything, train_on_groups
from core.training.losses import make_loss
from rerank.model import CrossEncoder

log = logging.getLogger(__name__)


@dataclass
class RerankerConfig(TrainingConfig):
    model: str | None = None
    loss: str = "nll"
    max_length: int = 256
    attention_dropout: float = 0.0
    device: str | None = None


def train_reranker(
    groups: list[TrainingGroup], config: RerankerConfig, out_dir: str | Path, resume: bool = False
) -> dict:
    """Train and save a cross-encoder into `out_dir` (HF format); returns a summary."""
    out_dir = Path(out_dir)
    groups, without_negatives = groups_with_negatives(groups)
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
    loss_function = make_loss(config.loss)

    def loss_fn(batch: GroupBatch) -> torch.Tensor:
        queries = [query for query, texts in batch for _ in texts]
        passages = [text for _, texts in batch for text in texts]
        logits = trainable(model.tokenize(queries, passages)).view(len(batch), config.group_size)
        return loss_function(logits)

    summary = train_on_groups(trainable, groups, config, out_dir, context, model.save_pretrained, loss_fn, resume)
    if context.is_main:
        config_text = json.dumps(asdict(config), indent=2) + "\n"
        publish_model(out_dir, model.save_pretrained, "training_config.json", config_text)
    return {
        **summary,
        "groups": len(groups),
        "groups_without_negatives": without_negatives,
        "pairs_per_step": config.batch_queries * config.group_size * context.world_size,
    }
