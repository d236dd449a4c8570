"""The losses compute exactly what their docstrings say."""

from __future__ import annotations

import math

import pytest
import torch

from core.training.losses import ListwiseNLLLoss, PointwiseBCELoss, make_loss


def test_nll_is_softmax_cross_entropy_with_positive_first() -> None:
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.5, 1.5, -1.0]])
    expected = []
    for row in scores.tolist():
        expected.append(-math.log(math.exp(row[0]) / sum(math.exp(s) for s in row)))
    assert ListwiseNLLLoss()(scores).item() == pytest.approx(sum(expected) / 2, rel=1e-6)


def test_nll_with_explicit_targets_matches_in_batch_layout() -> None:
    # bi-encoder layout: 2 queries x 4 passages (1 positive + 1 negative each); positives at columns 0 and 2
    scores = torch.randn(2, 4)
    targets = torch.tensor([0, 2])
    by_hand = -(scores.log_softmax(-1)[0, 0] + scores.log_softmax(-1)[1, 2]) / 2
    assert ListwiseNLLLoss()(scores, targets).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_bce_is_the_pointwise_formula() -> None:
    scores = torch.tensor([[1.0, -2.0, 0.5]])

    def bce(x: float, y: float) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = (bce(1.0, 1) + bce(-2.0, 0) + bce(0.5, 0)) / 3
    assert PointwiseBCELoss()(scores).item() == pytest.approx(expected, rel=1e-6)


def test_losses_differ_where_they_should() -> None:
    # shifting every score of a group by a constant leaves the listwise loss unchanged, not the pointwise one
    scores = torch.tensor([[1.0, 0.0, -1.0]])
    nll, bce = make_loss("nll"), make_loss("bce")
    assert nll(scores + 5).item() == pytest.approx(nll(scores).item(), rel=1e-6)
    assert bce(scores + 5).item() != pytest.approx(bce(scores).item(), rel=1e-3)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge")


def test_auto_precision_uses_bf16_only_where_it_is_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from core import precision as training

    cpu = torch.device("cpu")
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: True)
    assert training.autocast_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: False)
    assert training.autocast_dtype("auto", cpu) is None
    assert training.autocast_dtype("bf16", cpu) == torch.bfloat16
    assert training.autocast_dtype("fp32", cpu) is None
    with pytest.raises(ValueError, match="unknown precision"):
        training.autocast_dtype("int4", cpu)


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "fast"), [(True, False, True), (False, True, True), (False, False, False)]
)
def test_fast_bf16_means_amx_or_avx512_bf16(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, fast: bool
) -> None:
    """AVX512-BF16 without AMX (AMD Zen 4) measured ~2x over fp32 too, so `auto` must pick bf16 there."""
    from core.precision import CPU_BF16_ENV, cpu_has_fast_bf16

    monkeypatch.delenv(CPU_BF16_ENV)  # detect, as outside the tests
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert cpu_has_fast_bf16() is fast
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert cpu_has_fast_bf16()  # the override wins over detection


def test_listwise_kl_is_the_kl_divergence_of_the_two_softmaxes() -> None:
    from core.training.losses import ListwiseKLLoss

    student, teacher = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[4.0, 1.0, 0.0]])
    p = [math.exp(t / 2) for t in teacher[0].tolist()]
    p = [x / sum(p) for x in p]
    q = [math.exp(s) for s in student[0].tolist()]
    q = [x / sum(q) for x in q]
    by_hand = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert ListwiseKLLoss(teacher_temperature=2.0)(student, teacher).item() == pytest.approx(by_hand, rel=1e-5)
    assert ListwiseKLLoss()(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    label_nll = -math.log(q[0])  # the positive is column 0
    with_labels = ListwiseKLLoss(teacher_temperature=2.0, label_weight=0.5)(student, teacher).item()
    assert with_labels == pytest.approx(by_hand + 0.5 * label_nll, rel=1e-5)


def test_margin_mse_compares_margins_not_scores() -> None:
    from core.training.losses import MarginMSELoss

    teacher = torch.tensor([[9.0, 7.0, 4.0]])  # margins 2 and 5
    assert MarginMSELoss()(teacher - 100, teacher).item() == pytest.approx(0.0, abs=1e-6)  # a shift costs nothing
    student = torch.tensor([[1.0, 0.0, 0.0]])  # margins 1 and 1
    assert MarginMSELoss()(student, teacher).item() == pytest.approx(((2 - 1) ** 2 + (5 - 1) ** 2) / 2)


def test_scheduled_steps_floor_and_cap() -> None:
    """Epochs over the data, raised to `min_steps` for a small training set, capped by `max_steps`."""
    from core.training.config import scheduled_steps

    assert scheduled_steps(22, 3.0) == 66
    assert scheduled_steps(22, 3.0, min_steps=176) == 176
    assert scheduled_steps(1000, 3.0, min_steps=176) == 3000
    assert scheduled_steps(22, 3.0, min_steps=176, max_steps=100) == 100
    assert scheduled_steps(22, 0.01) == 1
