"""The two training objectives, shared by the bi-encoder and the cross-encoder.

Both take a score matrix; what differs between the stages is only how that matrix is built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class ListwiseNLLLoss(torch.nn.Module):
    """Softmax cross-entropy over each row of scores, with the row's positive as target.

    For one query with scores s_0..s_N over its candidates and positive column t:
        L = -log( exp(s_t) / sum_j exp(s_j) )
    - Bi-encoder (DPR, Karpukhin et al. 2020): scores are query·passage / tau, shape (B, B*(1+N)); each
      row's target is the column of its own positive, so other queries' passages are in-batch negatives.
    - Cross-encoder (localized contrastive estimation, Gao et al. 2021): scores are the pair logits laid
      out as (B, 1+N), each group's positive first, so every target is 0.

    Inputs: `scores` (B, C) float; `targets` (B,) long column indices, or None for "column 0".
    Returns the mean loss over rows.
    """

    def forward(self, scores: Tensor, targets: Tensor | None = None) -> Tensor:
        if targets is None:
            targets = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
        return F.cross_entropy(scores.float(), targets)


class PointwiseBCELoss(torch.nn.Module):
    """Binary cross-entropy with logits on each (query, passage) score independently: label 1 for the
    positive, 0 for every negative. The pointwise baseline the listwise NLL is compared against.

    Inputs: `scores` (B, 1+N) raw logits laid out as groups with the positive in column 0 (the same
    layout ListwiseNLLLoss takes), or any shape with an explicit `labels` tensor of the same shape.
    Returns the mean over all pairs.
    """

    def forward(self, scores: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            labels = torch.zeros_like(scores, dtype=torch.float)
            labels[:, 0] = 1.0
        return F.binary_cross_entropy_with_logits(scores.float(), labels.float())


def make_loss(name: str) -> torch.nn.Module:
    """`nll` (listwise, default) or `bce` (pointwise baseline)."""
    losses = {"nll": ListwiseNLLLoss, "bce": PointwiseBCELoss}
    if name not in losses:
        raise ValueError(f"unknown loss '{name}'; choose one of {', '.join(losses)}")
    return losses[name]()
