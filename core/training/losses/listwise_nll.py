"""The listwise negative log-likelihood: the objective tandem exists for, shared by both stages."""

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

    With `positives` P > 1 (cross-encoder groups laid out P positives first), the target is the set of
    the first P columns: L = -log( sum_{j<P} exp(s_j) / sum_j exp(s_j) ), the probability of ranking
    some judged passage first (the multi-positive NLL of Tevatron and of RocketQA's denoised groups).

    Inputs: `scores` (B, C) float; `targets` (B,) long column indices, or None for "column 0" (or the
    first `positives` columns). Returns the mean loss over rows.
    """

    def __init__(self, positives: int = 1) -> None:
        super().__init__()
        self.positives = positives

    def forward(self, scores: Tensor, targets: Tensor | None = None) -> Tensor:
        if targets is None and self.positives > 1:
            scores = scores.float()
            return (scores.logsumexp(dim=1) - scores[:, : self.positives].logsumexp(dim=1)).mean()
        if targets is None:
            targets = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
        return F.cross_entropy(scores.float(), targets)
