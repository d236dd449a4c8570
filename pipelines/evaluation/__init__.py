"""Judging runs: metrics (`metrics`, ir-measures), fusion of runs (`fusion`, the one min-max interpolation)
and the comparison report (`report`). Imports from `core` only."""

from pipelines.evaluation.metrics import MEASURES, Evaluation, evaluate

__all__ = ["MEASURES", "Evaluation", "evaluate"]
