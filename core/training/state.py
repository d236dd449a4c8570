"""Where a training run stands (saved in every checkpoint), shared by the loop and early stopping."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float | None = None
    """the best dev figure so far (with `eval_every`), and the step it was reached at"""
    best_step: int = 0
    stale_evaluations: int = 0
    """evaluations since the best one (training stops when this reaches `patience`)"""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model
