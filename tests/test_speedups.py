"""The CPU dropout: keep rate, scaling, uniform 16-bit lanes, train/eval, seeding, gradient."""

from __future__ import annotations

import pytest
import torch
from seq2seq.speedups import Dropout, dropout, dropout_mask
from torch.nn import functional as F


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_mask_keeps_the_right_share_and_preserves_the_mean(p: float) -> None:
    torch.manual_seed(0)
    mask = dropout_mask((1000, 1001), p)  # odd size: the last 64-bit word is only partly used
    kept = mask > 0
    n = mask.numel()
    tolerance = 5 * (p * (1 - p) / n) ** 0.5  # five standard deviations
    assert abs(1 - kept.float().mean().item() - p) < tolerance
    assert torch.allclose(mask[kept], torch.tensor(1 / (1 - round(p * 65536) / 65536)))
    assert abs(mask.mean().item() - 1.0) < 5 * tolerance


def test_each_of_the_four_16_bit_lanes_of_a_random_word_is_unbiased() -> None:
    torch.manual_seed(1)
    kept = dropout_mask((400_000,), 0.5) > 0
    for lane in range(4):
        share = kept[lane::4].float().mean().item()
        assert abs(share - 0.5) < 5 * (0.25 / 100_000) ** 0.5, lane


def test_eval_mode_p_zero_and_other_dtypes_behave_like_f_dropout() -> None:
    x = torch.randn(4, 5)
    layer = Dropout(0.3).eval()
    assert layer(x) is x
    assert dropout(x, 0.0, training=True) is x
    torch.manual_seed(2)
    expected = F.dropout(x.double(), 0.3, True)
    torch.manual_seed(2)
    assert torch.equal(dropout(x.double(), 0.3, training=True), expected)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_seeded_masks_repeat_and_gradient_is_the_mask() -> None:
    x = torch.randn(3, 7, 16, requires_grad=True)
    torch.manual_seed(3)
    y = dropout(x, 0.25, training=True)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.25, training=True), y)
    y.sum().backward()
    mask = y.detach() / torch.where(x.detach() == 0, 1.0, x.detach())
    assert torch.allclose(x.grad, mask, atol=1e-5)
    scale = 1 / (1 - round(0.25 * 65536) / 65536)
    assert all(value == 0.0 or value == pytest.approx(scale) for value in torch.unique(x.grad).tolist())
