"""Bi-encoder training with the DPR objective: in-batch negatives plus mined hard negatives; or
distillation from a cross-encoder's scores of the same groups.

A batch holds B groups (1 positive + N hard negatives each). With `loss="nll"` every query is scored
against all B*(1+N) passages of the batch (gathered from every process under torchrun) and the loss is
the listwise NLL with each query's own positive as target. With `loss="kl"` or `"margin-mse"` each
query is scored against its own group's passages and the scores are matched to the teacher's (stored
in the groups by `tandem reranker score-groups`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch.nn.parallel import DistributedDataParallel

from core.data.groups import GroupBatch, TrainingGroup, groups_with_found_positives, groups_with_negatives
from core.errors import TandemError
from core.training.config import TrainingConfig
from core.training.distributed import gather_objects, gather_with_grad, setup_distributed
from core.training.loop import seed_everything, train_on_groups
from core.training.losses import DISTILLATION_LOSSES, ListwiseKLLoss, ListwiseNLLLoss, MarginMSELoss
from core.training.output import finish_training, finished_summary, model_card
from retrieval.encoder import BiEncoder, BiEncoderConfig


@dataclass
class RetrieverConfig(TrainingConfig):
    """The bi-encoder's recipe: `RetrieverConfig()` is what `tandem run` and `tandem retriever train`
    train (the distill stage changes the options its section names). Why: docs/experiments.md."""

    model: str | None = None
    """start model: a Hugging Face name or folder (null: all-MiniLM-L6-v2, offline copy)"""
    encoder: BiEncoderConfig = field(default_factory=BiEncoderConfig)
    group_size: int = 2
    """a positive and one mined negative a query, the rest of the batch's passages as in-batch negatives
    (DPR's recipe; not chosen on dev: docs/experiments.md, "Defaults not chosen on both dev splits")"""
    batch_queries: int = 32
    """queries a step, each one's passages the others' in-batch negatives (not chosen on dev: see
    `group_size`)"""
    epochs: float = 3.0
    """passes over the train queries, at least `min_steps`: a collection of more than ~1,900 train queries
    trains 3 epochs, a smaller one the floor. Chosen on SciFact's dev split alone (docs/log.md, "the default
    run, round by round": dev rose with every epoch up to 8 and flattened after 6); NFCorpus's fine-tuned
    bi-encoder beats its zero-shot start on dev with it, but no other length was compared there
    (docs/experiments.md, "Defaults not chosen on both dev splits")"""
    min_steps: int = 176
    """see `epochs`: 8 of SciFact's epochs, the best of 1-8 epochs on its dev split"""
    attention_dropout: float | None = 0.0
    """attention-probability dropout; 0 lets PyTorch use its fast SDPA attention kernel (null: the model's)"""
    device: str | None = None
    """cpu, cuda, cuda:1 (null: cuda when there is one)"""
    loss: Literal["nll", "kl", "margin-mse"] = "nll"
    """nll (in-batch DPR), or distillation from the groups' teacher scores: kl (listwise) or margin-mse"""
    positive_depth: int = 0
    """train on the positives the mining sources ranked within this depth (0: every judged positive)"""
    mask_false_negatives: bool = True
    """nll: leave out of each query's softmax the in-batch passages its qrels judge relevant (another query's
    positive or negative that is also this query's positive): they are not negatives"""
    teacher_temperature: float = 4.0
    """kl only: divides the teacher's scores before its softmax (a teacher scoring its own training queries
    is near one-hot at 1)"""
    label_weight: float = 2.0
    """kl only: weight of the judged positive's NLL added to the KL term (0: the teacher's scores alone)"""


def in_batch_nll(
    model: torch.nn.Module,
    encoder: BiEncoder,
    batch: GroupBatch,
    temperature: float,
    world_size: int = 1,
    mask_false_negatives: bool = True,
) -> torch.Tensor:
    """DPR loss for one batch. Query and passage embeddings are gathered across processes (gradient
    kept for the local slice); the loss is scaled by the world size so DDP's gradient average equals
    the gradient of a single process holding the global batch."""
    group_size = len(batch[0].texts)
    queries = encoder.tokenize([sample.query for sample in batch], "query")
    passages = encoder.tokenize([text for sample in batch for text in sample.texts], "passage")
    query_vectors, passage_vectors = model(queries, passages)
    query_vectors, passage_vectors = gather_with_grad(query_vectors), gather_with_grad(passage_vectors)
    scores = query_vectors @ passage_vectors.T / temperature
    targets = torch.arange(scores.size(0), device=scores.device) * group_size
    if mask_false_negatives:
        scores = scores.masked_fill(false_negative_mask(batch, targets, world_size, scores.device), float("-inf"))
    return ListwiseNLLLoss()(scores, targets) * world_size


def false_negative_mask(
    batch: GroupBatch, targets: torch.Tensor, world_size: int, device: torch.device
) -> torch.Tensor:
    """(queries, passages) True where a passage of the (gathered) batch is judged relevant to the query
    but is not its target: another group's positive or negative that this query's qrels call relevant,
    or a copy of its own positive. Scoring those as negatives would teach the model to push relevant
    passages down (NFCorpus's queries share many judged passages)."""
    samples = gather_objects([(sorted(s.judged), s.ids) for s in batch], world_size)
    ids = [doc_id for _, sample_ids in samples for doc_id in sample_ids]
    judged_sets = [set(judged) for judged, _ in samples]
    mask = torch.tensor([[doc_id in judged for doc_id in ids] for judged in judged_sets], device=device)
    mask[torch.arange(len(samples), device=device), targets] = False
    return mask


def group_distillation(
    model: torch.nn.Module, encoder: BiEncoder, batch: GroupBatch, temperature: float, loss: torch.nn.Module
) -> torch.Tensor:
    """Distillation loss for one batch of (query, texts, teacher scores): each query against its own
    group's passages (B x (1+N) student scores) matched to the teacher's scores of the same passages."""
    queries = encoder.tokenize([sample.query for sample in batch], "query")
    passages = encoder.tokenize([text for sample in batch for text in sample.texts], "passage")
    query_vectors, passage_vectors = model(queries, passages)
    grouped = passage_vectors.view(len(batch), len(batch[0].texts), -1)
    student = torch.einsum("bd,bcd->bc", query_vectors, grouped) / temperature
    teacher = torch.tensor([sample.teacher for sample in batch], dtype=torch.float32, device=student.device)
    return loss(student, teacher)


def check_teacher_scores(groups: list[TrainingGroup]) -> None:
    """Distillation needs a teacher score on every passage of every group."""
    for group in groups:
        if any(p.teacher is None for p in [*group.positives, *group.negatives]):
            raise TandemError(
                f"group '{group.query_id}' has passages without a teacher score: distillation needs groups "
                "scored by a cross-encoder (`tandem reranker score-groups`)"
            )


def train_retriever(
    groups: list[TrainingGroup], config: RetrieverConfig, out_dir: str | Path, resume: bool = False
) -> dict:
    """Fine-tune a bi-encoder on training groups and save it into `out_dir` (HF format)."""
    out_dir = Path(out_dir)
    if resume and (finished := finished_summary(out_dir, config, len(groups))):
        return finished
    if config.loss not in ("nll", *DISTILLATION_LOSSES):
        raise TandemError(f"unknown retriever loss '{config.loss}'; choose nll, {', '.join(DISTILLATION_LOSSES)}")
    if config.loss != "nll":
        if config.group_size < 2:
            raise TandemError("distillation needs --group-size of at least 2 (a positive and a negative)")
        check_teacher_scores(groups)
    groups, without_found_positives = groups_with_found_positives(groups, config.positive_depth)
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
    temperature = config.encoder.temperature
    if config.loss == "nll":

        def loss_fn(batch: GroupBatch) -> torch.Tensor:
            return in_batch_nll(model, encoder, batch, temperature, context.world_size, config.mask_false_negatives)
    else:
        distill = (
            ListwiseKLLoss(config.teacher_temperature, config.label_weight) if config.loss == "kl" else MarginMSELoss()
        )

        def loss_fn(batch: GroupBatch) -> torch.Tensor:
            return group_distillation(model, encoder, batch, temperature, distill)

    summary = train_on_groups(
        model,
        groups,
        config,
        out_dir,
        context,
        encoder.save_pretrained,
        loss_fn,
        resume,
        with_teacher=config.loss != "nll",
    )
    if context.is_main:
        finish_training(
            out_dir, encoder.save_pretrained, config, model_card("bi-encoder", config, summary, len(groups))
        )
    return {
        **summary,
        "groups": len(groups),
        "groups_without_negatives": without_negatives,
        "groups_without_found_positives": without_found_positives,
    }
