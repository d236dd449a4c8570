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

    With several positives per group (cross-encoder groups laid out positives first, `positives[i]` of them
    in row i), the target is the set of them: L = -log( sum_{j<P_i} exp(s_j) / sum_j exp(s_j) ), the
    probability of ranking some judged passage first (a multi-positive NLL, for collections with tens of
    judged passages per query).

    Inputs: `scores` (B, C) float; `targets` (B,) long column indices, or None for "column 0"; or
    `positives` (B,) long counts of leading positive columns. Returns the mean loss over rows.
    """

    def forward(self, scores: Tensor, targets: Tensor | None = None, positives: Tensor | None = None) -> Tensor:
        if positives is not None and bool((positives > 1).any()):
            scores = scores.float()
            judged = scores.masked_fill(~positive_columns(scores, positives), float("-inf"))
            return (scores.logsumexp(dim=1) - judged.logsumexp(dim=1)).mean()
        if targets is None:
            targets = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
        return F.cross_entropy(scores.float(), targets)


def positive_columns(scores: Tensor, positives: Tensor) -> Tensor:
    """(B, C) bool: True where a column of `scores` is a positive, the groups being laid out positives
    first with `positives[i]` of them in row i (what both group losses read)."""
    columns = torch.arange(scores.size(1), device=scores.device)
    return columns[None, :] < positives[:, None]
