"""Attention variants behind one contract.

``attend(query[B,Q], keys[B,S,H], values[B,S,H], mask[B,S]) -> (context[B,H], weights[B,S])``

``mask`` is True on real source tokens; masked positions get ``-inf`` before the softmax, so their
weights are exactly 0. The modules keep no state between calls: whatever depends only on the source
sentence (e.g. the projected keys ``Ua h_s``) is computed once per sentence by ``project_keys`` in
``Seq2Seq.encode`` and passed back in as ``keys``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

LUONG_SCORES = ("general", "dot")


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with ``-inf`` where ``mask`` is False. scores [...,S], mask broadcastable."""
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class Attention(nn.Module):
    """Base class: keys are the values unless a subclass projects them."""

    def project_keys(self, values: Tensor) -> Tensor:
        """values [B,S,H] -> keys [B,S,H] (computed once per source sentence)."""
        return values

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class NoAttention(Attention):
    """Plain encoder-decoder: its decoder never attends (and reports all-zero weights)."""


class TutorialAttention(Attention):
    """The 2017 PyTorch tutorial's attention: a Linear layer from ``[embedded; hidden]`` to a fixed
    number of source positions, softmax, weighted sum of the encoder outputs.

    query [B, E+H] (embedded previous token and previous decoder state). Scores beyond the real
    source length S are dropped; positions past each sentence's length are masked. The source may
    not be longer than ``max_length`` (the caller cuts it; see ``Seq2Seq.max_source_length``).
    """

    def __init__(self, query_size: int, max_length: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.attn = nn.Linear(query_size, max_length)

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        source_length = values.shape[1]
        if source_length > self.max_length:
            raise ValueError(f"source of {source_length} positions is longer than max_length={self.max_length}")
        scores = self.attn(query)[:, :source_length]  # [B,S]
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B,H]
        return context, weights


class BahdanauAttention(Attention):
    """Additive attention: score = Va^T tanh(Wa q + Ua h_s); query is the previous decoder state [B,H]."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def project_keys(self, values: Tensor) -> Tensor:
        return self.Ua(values)

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.Va(torch.tanh(self.Wa(query).unsqueeze(1) + keys)).squeeze(2)  # [B,S]
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B,H]
        return context, weights


class LuongAttention(Attention):
    """Multiplicative attention on the current decoder output h_t [B,H].

    ``general``: score = h_t^T W h_s (W h_s precomputed as the keys); ``dot``: score = h_t^T h_s.
    """

    def __init__(self, hidden_size: int, score: str = "general") -> None:
        super().__init__()
        if score not in LUONG_SCORES:
            raise ValueError(f"unknown luong_score {score!r}; expected one of {LUONG_SCORES}")
        self.score = score
        self.W = nn.Linear(hidden_size, hidden_size, bias=False) if score == "general" else None

    def project_keys(self, values: Tensor) -> Tensor:
        return self.W(values) if self.W is not None else values

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        context, weights = self.attend_all(query.unsqueeze(1), keys, values, mask)
        return context.squeeze(1), weights.squeeze(1)

    def attend_all(self, queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """All decoder steps at once: queries [B,T,H] -> (context [B,T,H], weights [B,T,S])."""
        scores = torch.bmm(queries, keys.transpose(1, 2))  # [B,T,S]
        weights = masked_softmax(scores, mask.unsqueeze(1))
        return torch.bmm(weights, values), weights

