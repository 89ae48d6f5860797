"""Attention variants: the attend() contract, masking, no state between calls."""

import pytest
import torch

from seq2seq.attention import BahdanauAttention, LuongAttention, TutorialAttention


def _inputs(batch=3, length=5, hidden=8, query=8):
    torch.manual_seed(0)
    values = torch.randn(batch, length, hidden)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor([5, 3, 1]).unsqueeze(1)
    return torch.randn(batch, query), values, mask


@pytest.mark.parametrize("make", [
    lambda: BahdanauAttention(8),
    lambda: LuongAttention(8, "general"),
    lambda: LuongAttention(8, "dot"),
    lambda: TutorialAttention(8, max_length=7),
])
def test_weights_sum_to_one_over_real_positions_and_zero_on_padding(make):
    attention = make()
    query, values, mask = _inputs()
    keys = attention.project_keys(values)
    context, weights = attention.attend(query, keys, values, mask)
    assert context.shape == (3, 8) and weights.shape == (3, 5)
    assert torch.allclose(weights.sum(1), torch.ones(3))
    assert torch.all(weights[~mask] == 0)
    assert torch.allclose(context, torch.bmm(weights.unsqueeze(1), values).squeeze(1), atol=1e-6)
    # stateless: the same call gives the same result
    again, _ = attention.attend(query, keys, values, mask)
    assert torch.equal(context, again)


def test_padding_values_do_not_change_the_result():
    attention = BahdanauAttention(8)
    query, values, mask = _inputs()
    changed = values.clone()
    changed[~mask] = 100.0
    a, _ = attention.attend(query, attention.project_keys(values), values, mask)
    b, _ = attention.attend(query, attention.project_keys(changed), changed, mask)
    assert torch.allclose(a, b, atol=1e-6)


def test_tutorial_attention_rejects_sources_longer_than_max_length():
    attention = TutorialAttention(8, max_length=4)
    query, values, mask = _inputs()
    with pytest.raises(ValueError, match="max_length"):
        attention.attend(query, values, values, mask)


def test_luong_attend_all_matches_attend_per_step():
    attention = LuongAttention(8, "general")
    _, values, mask = _inputs()
    queries = torch.randn(3, 4, 8)
    keys = attention.project_keys(values)
    context, weights = attention.attend_all(queries, keys, values, mask)
    for t in range(4):
        c, w = attention.attend(queries[:, t], keys, values, mask)
        assert torch.allclose(c, context[:, t], atol=1e-6) and torch.allclose(w, weights[:, t], atol=1e-6)


def test_unknown_luong_score():
    with pytest.raises(ValueError, match="luong_score"):
        LuongAttention(8, "concat")
