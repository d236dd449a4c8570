"""The training objectives, one per module. The listwise NLL and the pointwise BCE baseline are shared
by the bi-encoder and the cross-encoder (both take a score matrix; the stages differ only in how it is
built); the distillation losses (listwise KL, Margin-MSE) take the student's and a teacher's scores of
the same passages. Imports only torch.
"""

from __future__ import annotations

from typing import Literal

import torch

from core.training.losses.listwise_kl import ListwiseKLLoss
from core.training.losses.listwise_nll import ListwiseNLLLoss
from core.training.losses.margin_mse import MarginMSELoss
from core.training.losses.pointwise_bce import PointwiseBCELoss

LOSSES = {"nll": ListwiseNLLLoss, "bce": PointwiseBCELoss}
LossName = Literal["nll", "bce"]
"""A name in LOSSES, as an option's type."""
DISTILLATION_LOSSES = {"kl": ListwiseKLLoss, "margin-mse": MarginMSELoss}

__all__ = [
    "DISTILLATION_LOSSES",
    "LOSSES",
    "LossName",
    "ListwiseKLLoss",
    "ListwiseNLLLoss",
    "MarginMSELoss",
    "PointwiseBCELoss",
    "make_loss",
]


def make_loss(name: str) -> torch.nn.Module:
    """`nll` (listwise, default) or `bce` (pointwise baseline)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]()
