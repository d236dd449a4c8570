"""The options every trainer has; each stage's trainer config extends this dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from core.options import BELOW_ONE, POSITIVE, Range, at_least, check_ranges


@dataclass
class TrainingConfig:
    """Options every trainer has (`core.options` turns each field into a flag and a config key). Each
    trainer's subclass sets the defaults of its own recipe."""

    epochs: float = 1.0
    """passes over the training groups (each pass samples every group's passages afresh)"""
    max_steps: int = 0
    """cap on optimiser steps (0: none); the schedule is laid out over the capped length"""
    min_steps: int = 0
    """floor on optimiser steps: a small training set gets more epochs than `epochs` (max_steps still caps)"""
    group_size: int = 8
    """passages per query in a step: its positive(s) first, then hard negatives"""
    batch_queries: int = 4
    """queries (groups) per optimiser step"""
    learning_rate: float = 2e-5
    """peak learning rate (linear warm-up, then linear decay to 0)"""
    head_learning_rate: float | None = None
    """peak learning rate of the parameters the start model lacks, e.g. a new one-logit head (null: learning_rate)"""
    warmup_ratio: float = 0.1
    """share of the steps spent warming the learning rate up"""
    weight_decay: float = 0.01
    """AdamW weight decay (not on biases and norms)"""
    grad_accumulation: int = 1
    """batches accumulated per optimiser step"""
    max_grad_norm: float = 1.0
    """gradient clipping norm"""
    seed: int = 42
    """seed for sampling and initialisation"""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """auto: bf16 autocast on CUDA and on CPUs with AMX or AVX512-BF16, else fp32"""
    gradient_checkpointing: bool = False
    """trade compute for activation memory"""
    save_every: int = 0
    """checkpoint every this many steps (0: only at the end); an interrupted run resumes from the last"""
    keep_checkpoints: int = 1
    """checkpoints kept in the output folder"""
    log_every: int = 10
    """steps per row of loss.csv"""
    eval_every: int = 0
    """evaluate on dev every this many steps (0: never; needs the trainer's dev evaluator) and finish with
    the weights of the best evaluation, not the last step's"""
    patience: int = 0
    """stop after this many evaluations in a row without a better dev figure (0: run every scheduled step)"""
    average_from: float = 0.0
    """finish with the mean of the weights at every `average_every`-th step from this share of the schedule on
    (tail averaging, `core.training.averaging`) instead of the best dev evaluation's or the last step's (0: off).
    Off for the cross-encoder: 0.5 ranked both dev splits below the best evaluation's weights
    (docs/experiments.md, "Averaging the tail of the training")"""
    average_every: int = 50
    """with `average_from`: steps between the points averaged"""

    RANGES: ClassVar[dict[str, Range]] = {
        "epochs": POSITIVE,
        "learning_rate": POSITIVE,
        "head_learning_rate": POSITIVE,
        "max_grad_norm": POSITIVE,
        "group_size": at_least(1),
        "batch_queries": at_least(1),
        "grad_accumulation": at_least(1),
        "keep_checkpoints": at_least(1),
        "log_every": at_least(1),
        "max_steps": at_least(0),
        "min_steps": at_least(0),
        "save_every": at_least(0),
        "eval_every": at_least(0),
        "patience": at_least(0),
        "weight_decay": at_least(0),
        "warmup_ratio": BELOW_ONE,
        "average_from": BELOW_ONE,
        "average_every": at_least(1),
    }
    """Each numeric option's range: checked when a flag is parsed and when a config is built."""

    def __post_init__(self) -> None:
        check_ranges(self)


def scheduled_steps(steps_per_epoch: int, epochs: float, min_steps: int = 0, max_steps: int = 0) -> int:
    """Optimiser steps of a training: `epochs` over the data, at least `min_steps`, at most `max_steps`
    (when set). The trainers and `tandem run`'s plan both count here."""
    steps = max(1, math.ceil(steps_per_epoch * epochs), min_steps)
    return min(steps, max_steps) if max_steps else steps
