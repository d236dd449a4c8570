"""The options every trainer has; each stage's trainer config extends this dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import TandemError


@dataclass
class TrainingConfig:
    """Options every trainer has. `precision`: auto = bf16 autocast on CUDA (fp16 where bf16 is
    unsupported) and on CPUs with AMX or AVX512-BF16, fp32 elsewhere (see `autocast_dtype`)."""

    epochs: float = 1.0
    max_steps: int = 0
    """cap on optimiser steps (0: none); the schedule is laid out over the capped length"""
    min_steps: int = 0
    """floor on optimiser steps: a small training set gets more epochs than `epochs` (max_steps still caps)"""
    group_size: int = 8
    batch_queries: int = 4
    learning_rate: float = 2e-5
    head_learning_rate: float | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_accumulation: int = 1
    max_grad_norm: float = 1.0
    seed: int = 42
    precision: str = "auto"
    gradient_checkpointing: bool = False
    save_every: int = 0
    keep_checkpoints: int = 1
    log_every: int = 10

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs > 0, "max_steps": self.max_steps >= 0, "min_steps": self.min_steps >= 0,
            "group_size": self.group_size >= 1, "batch_queries": self.batch_queries >= 1, "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1, "grad_accumulation": self.grad_accumulation >= 1,
            "save_every": self.save_every >= 0, "keep_checkpoints": self.keep_checkpoints >= 1,
        }  # fmt: skip
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise TandemError("invalid training options: " + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))


def scheduled_steps(steps_per_epoch: int, epochs: float, min_steps: int = 0, max_steps: int = 0) -> int:
    """Optimiser steps of a training: `epochs` over the data, at least `min_steps`, at most `max_steps`
    (when set). The trainers and `tandem run`'s plan both count here."""
    steps = max(1, math.ceil(steps_per_epoch * epochs), min_steps)
    return min(steps, max_steps) if max_steps else steps
