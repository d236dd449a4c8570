"""Bi-encoder training with the DPR objective: in-batch negatives plus mined hard negatives.

A batch holds B groups (1 positive + N hard negatives each). Every query is scored against all
B*(1+N) passages of the batch (gathered from every process under torchrun) and the loss is the
listwise NLL with each query's own positive as target.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from core.atomic import publish_model
from core.data.groups import GroupBatch, TrainingGroup, groups_with_negatives
from core.errors import TandemError
from core.training.config import TrainingConfig
from core.training.distributed import gather_with_grad, setup_distributed
from core.training.loop import seed_everything, train_on_groups
from core.training.losses import ListwiseNLLLoss
from retrieval.encoder import BiEncoder, BiEncoderConfig


@dataclass
class RetrieverConfig(TrainingConfig):
    model: str | None = None
    encoder: BiEncoderConfig = field(default_factory=BiEncoderConfig)
    group_size: int = 2
    batch_queries: int = 32
    attention_dropout: float | None = None
    device: str | None = None


def in_batch_nll(
    model: torch.nn.Module, encoder: BiEncoder, batch: GroupBatch, temperature: float, world_size: int = 1
) -> torch.Tensor:
    """DPR loss for one batch. Query and passage embeddings are gathered across processes (gradient
    kept for the local slice); the loss is scaled by the world size so DDP's gradient average equals
    the gradient of a single process holding the global batch."""
    group_size = len(batch[0][1])
    queries = encoder.tokenize([query for query, _ in batch], "query")
    passages = encoder.tokenize([text for _, texts in batch for text in texts], "passage")
    query_vectors, passage_vectors = model(queries, passages)
    query_vectors, passage_vectors = gather_with_grad(query_vectors), gather_with_grad(passage_vectors)
    scores = query_vectors @ passage_vectors.T / temperature
    targets = torch.arange(scores.size(0), device=scores.device) * group_size
    return ListwiseNLLLoss()(scores, targets) * world_size


def train_retriever(
    groups: list[TrainingGroup], config: RetrieverConfig, out_dir: str | Path, resume: bool = False
) -> dict:
    """Fine-tune a bi-encoder on training groups and save it into `out_dir` (HF format)."""
    out_dir = Path(out_dir)
    without_negatives = 0
    if config.group_size > 1:
        groups, without_negatives = groups_with_negatives(groups)
    if not groups:
        raise TandemError("no training group has a negative passage")
    context = setup_distributed(config.device)
    seed_everything(config.seed)
    encoder = BiEncoder.from_pretrained(config.model, config.encoder, attention_dropout=config.attention_dropout)
    if config.gradient_checkpointing:
        encoder.passage_model.gradient_checkpointing_enable()
        encoder.query_model.gradient_checkpointing_enable()
    encoder.to(context.device)
    # BERT's pooler is unused by mean/CLS pooling of the last hidden state
    model = DistributedDataParallel(encoder, find_unused_parameters=True) if context.enabled else encoder
    summary = train_on_groups(
        model, groups, config, out_dir, context, encoder.save_pretrained,
        lambda batch: in_batch_nll(model, encoder, batch, config.encoder.temperature, context.world_size), resume,
    )  # fmt: skip
    if context.is_main:
        config_text = json.dumps(asdict(config), indent=2) + "\n"
        publish_model(out_dir, encoder.save_pretrained, "training_config.json", config_text)
    return {**summary, "groups": len(groups), "groups_without_negatives": without_negatives}
