"""experiments.distill: the control's one-hot teacher turns the distillation loss into the group's NLL; a grid's
schedule changes reach the distill options and name the grid's folder."""

import torch
import torch.nn.functional as F

from core.data.groups import Passage, TrainingGroup
from core.training.losses import ListwiseKLLoss
from experiments.distill import apply_schedule, labels_only


def test_labels_only_teacher_makes_the_kl_the_group_nll() -> None:
    groups = [
        TrainingGroup(
            "q1", "a query", [Passage("p", teacher=1.0)], [Passage("n1", teacher=4.0), Passage("n2", teacher=-2.0)]
        ),
        TrainingGroup(
            "q2", "another", [Passage("p2", teacher=0.5)], [Passage("n3", teacher=0.6), Passage("n4", teacher=9.0)]
        ),
    ]
    labels_only(groups)
    teacher = torch.tensor([[p.teacher for p in [*g.positives, *g.negatives]] for g in groups])
    student = torch.tensor([[0.3, 1.2, -0.4], [2.0, 0.1, 0.7]])
    distilled = ListwiseKLLoss(label_weight=0.0)(student, teacher)
    group_nll = -F.log_softmax(student, dim=-1)[:, 0].mean()
    assert torch.allclose(distilled, group_nll, atol=1e-5)
    assert not torch.allclose(ListwiseKLLoss()(student, torch.tensor([[1.0, 4.0, -2.0], [0.5, 0.6, 9.0]])), group_nll)


def test_schedule_changes_set_the_distill_options_and_name_the_folder() -> None:
    config = {"distill": {"teacher_temperature": 1.0, "batch_queries": 32, "epochs": 1.0}}
    suffix = apply_schedule(config, {"teacher_temperature": 2.0, "batch_queries": 8, "epochs": None})
    assert config["distill"] == {"teacher_temperature": 2.0, "batch_queries": 8, "epochs": 1.0}
    assert suffix == "-teacher_temperature2-batch_queries8"
    assert apply_schedule(config, {"epochs": None}) == ""
