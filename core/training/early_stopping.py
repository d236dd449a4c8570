"""Early stopping on dev: what a training run records of its dev evaluations, and the weights of the best.

With `TrainingConfig.eval_every` the loop asks a `DevEvaluator` for a dev figure every K steps; this
module keeps the curve (`dev-curve.csv`), the best weights so far (`best-weights.pt`, kept across
resumes) and the rule that stops after `patience` evaluations without a better figure. The run then
finishes with the best evaluation's weights, so a recipe's step count is an upper bound chosen per
collection by its own dev queries, not a number fixed on one collection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch

from core.training.state import TrainState, unwrap

log = logging.getLogger(__name__)

DevEvaluator = Callable[[], float]
"""Scores the model being trained on a dev split (higher is better; e.g. nDCG@10 of a dev rerank). It
may switch the model to eval mode: the loop switches it back."""


class DevCurve:
    """Early stopping on dev: `dev-curve.csv` (`step,score,best`), the best weights so far in
    `best-weights.pt` (kept across resumes), and the rule that stops training after `patience` evaluations
    without improvement."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.path = out_dir / "dev-curve.csv"
        self.best_path = out_dir / "best-weights.pt"
        self.enabled = enabled

    def keep_until(self, step: int) -> None:
        if self.enabled and self.path.is_file():
            header, *rows = self.path.read_text().splitlines()
            kept = [row for row in rows if int(row.split(",", 1)[0]) <= step]
            self.path.write_text("\n".join([header, *kept]) + "\n")

    def record(self, state: TrainState, score: float, model: torch.nn.Module) -> None:
        """Note an evaluation; a new best saves the weights (on the main process)."""
        improved = state.best_score is None or score > state.best_score
        if improved:
            state.best_score, state.best_step, state.stale_evaluations = score, state.step, 0
            if self.enabled:
                staging = self.best_path.with_name(".best-weights.pt.tmp")
                torch.save({k: v.detach().cpu().clone() for k, v in unwrap(model).state_dict().items()}, staging)
                os.replace(staging, self.best_path)
        else:
            state.stale_evaluations += 1
        if self.enabled:
            if not self.path.is_file():
                self.path.write_text("step,score,best\n")
            with open(self.path, "a") as out:
                out.write(f"{state.step},{score:.6f},{int(improved)}\n")

    def restore_best(self, state: TrainState, model: torch.nn.Module) -> None:
        """Load the best evaluation's weights into `model` (when it was not the last step)."""
        if state.best_score is None or state.best_step == state.step or not self.best_path.is_file():
            return
        unwrap(model).load_state_dict(torch.load(self.best_path, map_location="cpu", weights_only=True))
        log.info(
            "finished with the weights of step %d (dev %.4f), not of step %d",
            state.best_step,
            state.best_score,
            state.step,
        )

    def curve(self) -> list[tuple[int, float]]:
        if not self.path.is_file():
            return []
        rows = [row.split(",") for row in self.path.read_text().splitlines()[1:]]
        return [(int(step), float(score)) for step, score, _ in rows]
