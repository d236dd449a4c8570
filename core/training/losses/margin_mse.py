"""Margin-MSE distillation (Hofstätter et al. 2020): match score margins, not scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class MarginMSELoss(torch.nn.Module):
    """Mean squared error between the student's and the teacher's margins s(q, p+) - s(q, p-_j) for
    every negative j of a row (column 0 is the positive). Margins make the two models' score scales
    irrelevant up to their spread, which is why a dot-product student can learn from a cross-encoder.

    Inputs: `student`, `teacher` (B, C) with the positive in column 0. Returns the mean over B x (C-1)."""

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        student, teacher = student.float(), teacher.float()
        return F.mse_loss(student[:, :1] - student[:, 1:], teacher[:, :1] - teacher[:, 1:])
