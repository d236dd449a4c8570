"""Pointwise binary cross-entropy: the baseline the listwise NLL is compared against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.training.losses.listwise_nll import positive_columns


class PointwiseBCELoss(torch.nn.Module):
    """Binary cross-entropy with logits on each (query, passage) score independently: label 1 for the
    positive, 0 for every negative. The pointwise baseline the listwise NLL is compared against.

    Inputs: `scores` (B, 1+N) raw logits laid out as groups with the positive in column 0 (the same
    layout ListwiseNLLLoss takes), or any shape with an explicit `labels` tensor of the same shape.
    With `positives` (B,) counts, the leading `positives[i]` columns of row i are positives (label 1).
    Returns the mean over all pairs.
    """

    def forward(self, scores: Tensor, labels: Tensor | None = None, positives: Tensor | None = None) -> Tensor:
        if labels is None and positives is not None:
            labels = positive_columns(scores, positives).float()
        if labels is None:
            labels = torch.zeros_like(scores, dtype=torch.float)
            labels[:, 0] = 1.0
        return F.binary_cross_entropy_with_logits(scores.float(), labels.float())
