"""The two training objectives, one per module, shared by the bi-encoder and the cross-encoder.

Both take a score matrix; what differs between the stages is only how that matrix is built. Imports only torch.
"""

from __future__ import annotations

import torch

from core.training.losses.listwise_nll import ListwiseNLLLoss
from core.training.losses.pointwise_bce import PointwiseBCELoss

LOSSES = {"nll": ListwiseNLLLoss, "bce": PointwiseBCELoss}

__all__ = ["LOSSES", "ListwiseNLLLoss", "PointwiseBCELoss", "make_loss"]


def make_loss(name: str) -> torch.nn.Module:
    """`nll` (listwise, default) or `bce` (pointwise baseline)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]()
