"""Listwise distillation: the student's score distribution over a group matched to the teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class ListwiseKLLoss(torch.nn.Module):
    """KL(teacher || student) between the softmax distributions of each row (RocketQAv2, Ren et al.
    2021; Tevatron's distillation): the bi-encoder learns the cross-encoder's ranking of the whole group,
    not only which passage is the positive, so unjudged relevant passages among the negatives stop
    being pushed down.

    Inputs: `student` (B, C) scores (query·passage / tau); `teacher` (B, C) scores of the same passages
    (cross-encoder logits), divided by `teacher_temperature` before the softmax. Returns the batch mean.

    `label_weight` > 0 adds that much of the listwise NLL with the judged positive (column 0) as target,
    so the labels keep anchoring the student where the teacher ranks a negative above the positive."""

    def __init__(self, teacher_temperature: float = 1.0, label_weight: float = 0.0) -> None:
        super().__init__()
        self.teacher_temperature = teacher_temperature
        self.label_weight = label_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        target = F.softmax(teacher.float() / self.teacher_temperature, dim=-1)
        log_probs = F.log_softmax(student.float(), dim=-1)
        loss = F.kl_div(log_probs, target, reduction="batchmean")
        if self.label_weight:
            loss = loss - self.label_weight * log_probs[:, 0].mean()
        return loss
