"""experiments/checkpoint_average.py: the mean of a training's checkpoints, the question it measures."""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.checkpoint_average import averaged_model, checkpoints_within
from rerank.model import CrossEncoder


def test_the_averaged_model_holds_the_mean_of_the_checkpoints_in_the_range(tiny_bert: Path, tmp_path: Path) -> None:
    training = tmp_path / "training"
    for step, seed in ((50, 1), (100, 2), (150, 3)):
        torch.manual_seed(seed)
        model = CrossEncoder.from_pretrained(tiny_bert)  # a new head, drawn from the seed
        with torch.no_grad():
            for parameter in model.model.parameters():
                parameter.add_(torch.randn_like(parameter))
        model.save_pretrained(training / f"checkpoint-{step}")
        (training / f"checkpoint-{step}" / "training_state.pt").touch()  # what makes a folder a checkpoint
    (training / "checkpoint-200").mkdir()  # not a checkpoint: no training state

    chosen = checkpoints_within(training, 100, 200)
    assert [path.name for path in chosen] == ["checkpoint-100", "checkpoint-150"]

    states = [CrossEncoder.from_pretrained(path).model.state_dict() for path in chosen]
    averaged = averaged_model(chosen, last_window=True)
    assert averaged.last_window
    for name, tensor in averaged.model.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (states[0][name] + states[1][name]) / 2), name
        else:
            assert torch.equal(tensor, states[0][name]), name
