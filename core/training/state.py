"""Where a training run stands (saved in every checkpoint), shared by the loop and early stopping, and where
its checkpoints are."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


def rng_state() -> dict:
    """Python, NumPy and torch RNG states in types `torch.load(weights_only=True)` accepts."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def saved_checkpoints(out_dir: Path) -> list[Path]:
    """A training folder's checkpoints (`checkpoint-STEP`, each with its training state), oldest first."""
    found = [p for p in Path(out_dir).glob("checkpoint-*") if (p / "training_state.pt").is_file()]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1])
