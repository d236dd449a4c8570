"""Tail averaging: a training that finishes with the mean of the weights it passed through late in its
schedule (every `average_every` steps from `average_from` of the way on) instead of one point of it.

The mean of the points along one run's decaying tail sits nearer the centre of the region those points
wander in than any single one of them (Izmailov et al. 2018, "Averaging weights leads to wider optima
and better generalization"), and no dev split has to pick among them. The running sum is kept in
float32 and saved in every checkpoint, so a resumed training averages exactly the same points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from core.training.state import unwrap


class TailAverage:
    """The running sum of a model's floating-point tensors at every `every`-th step from `first_step` on."""

    def __init__(self, first_step: int, every: int) -> None:
        self.first_step = first_step
        self.every = every
        self.total: dict[str, Tensor] = {}
        self.count = 0

    @classmethod
    def of_schedule(cls, total_steps: int, share: float, every: int) -> TailAverage:
        """The points from `share` of `total_steps` on (the first multiple of `every` there or after)."""
        return cls(max(every, math.ceil(share * total_steps)), every)

    def due(self, step: int) -> bool:
        return step >= self.first_step and step % self.every == 0

    def add(self, state: Mapping[str, Tensor]) -> None:
        """Add one point: a model's `state_dict()` (or the same tensors loaded from its saved weights)."""
        for name, tensor in state.items():
            if tensor.is_floating_point():
                value = tensor.detach().to("cpu", torch.float32)
                self.total[name] = self.total[name] + value if name in self.total else value.clone()
        self.count += 1

    def apply(self, model: torch.nn.Module) -> None:
        """Load the mean into `model` (its other tensors, such as integer position ids, stay)."""
        if not self.count:
            return
        target = unwrap(model)
        state = target.state_dict()
        for name, total in self.total.items():
            state[name] = (total / self.count).to(state[name].dtype)
        target.load_state_dict(state)

    def state_dict(self) -> dict:
        """The sum so far; which steps it takes comes from the training's options, which a resume repeats."""
        return {"count": self.count, "total": self.total}

    def load_state_dict(self, saved: dict) -> None:
        self.count, self.total = saved["count"], dict(saved["total"])
