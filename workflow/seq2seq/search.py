"""Decoding as pure functions outside the model: greedy search and beam search.

Both work on any model with the decoding protocol of :class:`seq2seq.model.Seq2Seq`:

- ``model.encode(src[B,S], src_lengths[B]) -> enc`` where ``enc.index_select(idx[B'])`` picks/repeats
  batch entries;
- ``model.init_state(enc) -> state[L,B,H]``;
- ``model.decode_step(prev_tokens[B], state[L,B,H], enc) -> (log_probs[B,V], state[L,B,H], attn[B,S])``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .vocab import EOS_INDEX, SOS_INDEX


@dataclass
class Hypotheses:
    """Search output for a batch of B sentences.

    tokens[b]: produced indices, without ``<sos>``, ending with ``<eos>`` unless cut at ``max_len``.
    scores[b]: summed log-probability of ``tokens[b]`` under the model.
    attention[b]: float tensor [len(tokens[b]), src_lengths[b]], one row per produced token.
    """

    tokens: list[list[int]]
    scores: list[float]
    attention: list[Tensor]


@torch.no_grad()
def greedy(model: torch.nn.Module, src: Tensor, src_lengths: Tensor, max_len: int) -> Hypotheses:
    """Batched greedy decoding. src: [B,S] long, src_lengths: [B] long. Stops at ``<eos>`` or ``max_len``."""
    model.eval()
    batch_size = src.size(0)
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    prev = torch.full((batch_size,), SOS_INDEX, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=src.device)
    steps: list[Tensor] = []  # each [B]
    step_scores: list[Tensor] = []  # each [B]
    attentions: list[Tensor] = []  # each [B,S]
    for _ in range(max_len):
        log_probs, state, attn = model.decode_step(prev, state, enc)
        score, prev = log_probs.max(dim=-1)
        steps.append(prev)
        step_scores.append(torch.where(finished, torch.zeros_like(score), score))
        attentions.append(attn)
        finished |= prev == EOS_INDEX
        if bool(finished.all()):
            break
    produced = torch.stack(steps, dim=1).cpu()  # [B,T]
    scores = torch.stack(step_scores, dim=1).sum(dim=1).cpu()  # [B]
    attention = torch.stack(attentions, dim=1).float().cpu()  # [B,T,S]
    lengths = src_lengths.cpu()
    tokens: list[list[int]] = []
    attention_rows: list[Tensor] = []
    for b in range(batch_size):
        row = produced[b].tolist()
        length = row.index(EOS_INDEX) + 1 if EOS_INDEX in row else len(row)
        tokens.append(row[:length])
        attention_rows.append(attention[b, :length, : int(lengths[b])])
    return Hypotheses(tokens=tokens, scores=scores.tolist(), attention=attention_rows)
