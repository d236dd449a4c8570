"""The options every trainer has; each stage's trainer config extends this dataclass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainingConfig:
    """Options every trainer has. `precision`: auto = bf16 autocast on CUDA (fp16 where bf16 is
    unsupported) and on CPUs with AMX, fp32 elsewhere (see `autocast_dtype`)."""

    epochs: float = 1.0
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
