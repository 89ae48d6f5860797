"""Attention variants: each score checked against its formula written out here with the module's own weights,
the attend() contract (rows sum to 1, padding gets 0, no state between calls) and weights that follow the query."""

import math

import pytest
import torch

from helpers import model_config
from seq2seq.attention import BahdanauAttention, LuongAttention, TutorialAttention

LENGTHS = [5, 3, 1]


def _inputs(batch=3, length=5, hidden=8, query=8, seed=0):
    torch.manual_seed(seed)
    values = torch.randn(batch, length, hidden)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(LENGTHS[:batch]).unsqueeze(1)
    return torch.randn(batch, query), values, mask


def softmax_over_real(scores: list[float], real: int) -> list[float]:
    """exp(e_s) / sum of exp(e_j) over the ``real`` first positions; 0 on the positions after them."""
    top = max(scores[:real])
    exps = [math.exp(e - top) for e in scores[:real]]
    return [x / sum(exps) for x in exps] + [0.0] * (len(scores) - real)


def bahdanau_scores(attention: BahdanauAttention, q: torch.Tensor, values: torch.Tensor) -> list[float]:
    """e_s = v^T tanh(W q + b_W + U h_s + b_U) + b_v for one sentence: q [H], values [S,H]."""
    v, W, U = attention.Va, attention.Wa, attention.Ua
    return [float(v.weight[0] @ torch.tanh(W.weight @ q + W.bias + U.weight @ h + U.bias) + v.bias[0])
            for h in values]


def luong_scores(attention: LuongAttention, q: torch.Tensor, values: torch.Tensor) -> list[float]:
    """general: e_s = q^T W h_s; dot: e_s = q^T h_s."""
    if attention.score == "general":
        return [float(q @ (attention.W.weight @ h)) for h in values]
    return [float(q @ h) for h in values]


def tutorial_scores(attention: TutorialAttention, q: torch.Tensor, values: torch.Tensor) -> list[float]:
    """e = A q + b over the fixed max_length positions, of which the first S are the source's."""
    scores = attention.attn.weight @ q + attention.attn.bias
    return [float(e) for e in scores[: values.shape[0]]]


def _config(attention: str, **settings):
    """A GRU config of hidden size 8 (the tutorial's: embedded 4 + hidden 4, a query of size 8)."""
    return model_config(attention=attention, **{"hidden_size": 8, **settings})


def _tutorial(max_length: int) -> TutorialAttention:
    return TutorialAttention(_config("tutorial", hidden_size=4, embedding_size=4, max_length=max_length))


VARIANTS = {
    "bahdanau": (lambda: BahdanauAttention(_config("bahdanau")), bahdanau_scores),
    "luong-general": (lambda: LuongAttention(_config("luong", luong_score="general")), luong_scores),
    "luong-dot": (lambda: LuongAttention(_config("luong", luong_score="dot")), luong_scores),
    "tutorial": (lambda: _tutorial(max_length=7), tutorial_scores),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", [0, 1])
@torch.no_grad()
def test_each_variant_computes_its_formula(variant, seed):
    make, formula = VARIANTS[variant]
    torch.manual_seed(10 + seed)
    attention = make()
    query, values, mask = _inputs(seed=seed)
    context, weights = attention.attend(query, attention.project_keys(values), values, mask)
    for b, real in enumerate(LENGTHS):
        expected = softmax_over_real(formula(attention, query[b], values[b]), real)
        assert weights[b].tolist() == pytest.approx(expected, abs=1e-5)
        expected_context = sum(w * values[b, s] for s, w in enumerate(expected))
        assert torch.allclose(context[b], expected_context, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_weights_follow_the_query(variant):
    """Another decoder state (the query), other weights, on every sentence with more than one real position."""
    attention = VARIANTS[variant][0]()
    query, values, mask = _inputs()
    keys = attention.project_keys(values)
    _, first = attention.attend(query, keys, values, mask)
    _, second = attention.attend(query + torch.randn_like(query), keys, values, mask)
    for b, real in enumerate(LENGTHS):
        if real > 1:
            assert (first[b, :real] - second[b, :real]).abs().max() > 1e-3, (variant, b)


@pytest.mark.parametrize("make", [make for make, _ in VARIANTS.values()], ids=list(VARIANTS))
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
    attention = BahdanauAttention(_config("bahdanau"))
    query, values, mask = _inputs()
    changed = values.clone()
    changed[~mask] = 100.0
    a, _ = attention.attend(query, attention.project_keys(values), values, mask)
    b, _ = attention.attend(query, attention.project_keys(changed), changed, mask)
    assert torch.allclose(a, b, atol=1e-6)


def test_tutorial_attention_rejects_sources_longer_than_max_length():
    attention = _tutorial(max_length=4)
    query, values, mask = _inputs()
    with pytest.raises(ValueError, match="max_length"):
        attention.attend(query, values, values, mask)


@pytest.mark.parametrize("score", ["general", "dot"])
def test_luong_attend_all_matches_attend_per_step(score):
    attention = LuongAttention(_config("luong", luong_score=score))
    _, values, mask = _inputs()
    queries = torch.randn(3, 4, 8)
    keys = attention.project_keys(values)
    context, weights = attention.attend_all(queries, keys, values, mask)
    for t in range(4):
        c, w = attention.attend(queries[:, t], keys, values, mask)
        assert torch.allclose(c, context[:, t], atol=1e-6) and torch.allclose(w, weights[:, t], atol=1e-6)


def test_unknown_luong_score():
    with pytest.raises(ValueError, match="luong_score"):
        LuongAttention(_config("luong", luong_score="concat"))
