"""Decoding as pure functions outside the model: greedy search and beam search.

Both work on any model with the decoding protocol of :class:`seq2seq.model.Seq2Seq`:

- ``model.encode(src[B,S], src_lengths[B]) -> enc`` where ``enc.index_select(idx[B'])`` picks/repeats
  batch entries;
- ``model.init_state(enc) -> state[L,B,H]``;
- ``model.decode_step(prev_tokens[B], state[L,B,H], enc) -> (log_probs[B,V], state[L,B,H], attn[B,S])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .batching import pad_sources
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
    """Batched greedy decoding. src: [B,S] long, src_lengths: [B] long. Stops at ``<eos>`` or ``max_len``.

    The model is put in eval mode for the search and given back in the mode it came in.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    was_training = model.training
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
    model.train(was_training)
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


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016); 1 when alpha is 0."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(model: torch.nn.Module, src: Tensor, src_lengths: Tensor, beam_size: int, alpha: float,
                max_len: int) -> Hypotheses:
    """Batched beam search. src: [B,S] long, src_lengths: [B] long.

    The B sentences are decoded together as B*K rows (K = ``beam_size``). Each step keeps the K best
    continuations of every sentence by summed log-probability; a continuation ending in ``<eos>`` is moved
    to that sentence's finished list and its row stops expanding (the next step refills the beam from the
    live rows). A sentence is done when it has K finished hypotheses and no live row can still beat the best
    of them, when no live row is left, or at ``max_len`` (live rows are then finished as they are). Finished
    hypotheses are ranked by score / lp(length) with the GNMT length penalty; the returned scores are the raw
    summed log-probabilities. ``beam_size`` 1 gives exactly :func:`greedy`'s tokens, for any ``alpha``.
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be at least 1, got {beam_size} and {max_len}")
    was_training = model.training
    model.eval()
    batch_size, k = src.size(0), beam_size
    device = src.device
    rows = torch.arange(batch_size, device=device).repeat_interleave(k)  # [B*K]: sentence of each row
    enc = model.encode(src, src_lengths).index_select(rows)  # rows of one sentence share its encoding
    state = model.init_state(enc)  # [L,B*K,H]
    scores = torch.full((batch_size, k), float("-inf"), device=device)  # [B,K]
    scores[:, 0] = 0.0  # the first step expands one row per sentence
    prev = torch.full((batch_size * k,), SOS_INDEX, dtype=torch.long, device=device)
    history = torch.empty(batch_size * k, 0, dtype=torch.long, device=device)  # [B*K,t]
    attention = torch.empty(batch_size * k, 0, src.size(1), device=device)  # [B*K,t,S]
    first_row = torch.arange(batch_size, device=device).unsqueeze(1) * k  # [B,1]
    lengths = src_lengths.tolist()
    finished: list[list[tuple[float, float, list[int], Tensor]]] = [[] for _ in range(batch_size)]
    done = [False] * batch_size
    best_possible_lp = length_penalty(max_len, alpha)  # scores only fall, lp only grows: the best case

    for step in range(max_len):
        log_probs, state, attn = model.decode_step(prev, state, enc)  # [B*K,V], [L,B*K,H], [B*K,S]
        vocab_size = log_probs.size(-1)
        candidates = (scores.view(-1, 1) + log_probs.float()).view(batch_size, k * vocab_size)
        top_scores, top_ids = candidates.topk(k, dim=1)  # [B,K]
        origin = (first_row + top_ids // vocab_size).view(-1)  # [B*K]: row each kept candidate extends
        tokens = top_ids % vocab_size  # [B,K]
        state = state.index_select(1, origin)
        history = torch.cat([history.index_select(0, origin), tokens.view(-1, 1)], dim=1)
        attention = torch.cat([attention.index_select(0, origin), attn.float().index_select(0, origin)[:, None]],
                              dim=1)
        prev = tokens.view(-1)

        ended = tokens == EOS_INDEX if step < max_len - 1 else torch.ones_like(tokens, dtype=torch.bool)
        ended &= torch.isfinite(top_scores)
        for b, j in ended.nonzero().tolist():
            if done[b]:
                continue
            raw = float(top_scores[b, j])
            row = b * k + j
            finished[b].append((raw / length_penalty(step + 1, alpha), raw, history[row].tolist(),
                                attention[row, :, : lengths[b]].cpu()))
        scores = top_scores.masked_fill(tokens == EOS_INDEX, float("-inf"))
        best_live = scores.max(dim=1).values.tolist()  # -inf where no live row is left
        for b in range(batch_size):
            if not done[b] and (best_live[b] == float("-inf") or (
                    len(finished[b]) >= k and max(f[0] for f in finished[b]) >= best_live[b] / best_possible_lp)):
                done[b] = True
        if all(done):
            break
        scores[torch.tensor(done, device=device)] = float("-inf")

    model.train(was_training)
    best = [max(f, key=lambda hyp: hyp[0]) for f in finished]
    return Hypotheses(tokens=[hyp[2] for hyp in best], scores=[hyp[1] for hyp in best],
                      attention=[hyp[3] for hyp in best])


def decode_in_batches(model: torch.nn.Module, sources: Sequence[list[int]], beam_size: int = 1, alpha: float = 0.0,
                      max_len: int = 30, batch_size: int = 64) -> Hypotheses:
    """Decode source id lists (each ending with ``<eos>``) in batches of similar length, longest first (little
    padding, and the first batch shows the peak memory); results come back in input order. ``beam_size`` 1 is
    :func:`greedy`, larger ones :func:`beam_search` with length-penalty exponent ``alpha``. Runs on the device of
    the model's parameters."""
    device = next(model.parameters()).device
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    tokens: list[list[int]] = [[] for _ in sources]
    scores: list[float] = [0.0] * len(sources)
    attention: list[Tensor] = [torch.empty(0)] * len(sources)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        src, lengths = pad_sources([sources[i] for i in index])
        src, lengths = src.to(device), lengths.to(device)
        found = (greedy(model, src, lengths, max_len) if beam_size == 1
                 else beam_search(model, src, lengths, beam_size, alpha, max_len))
        for row, i in enumerate(index):
            tokens[i], scores[i], attention[i] = found.tokens[row], found.scores[row], found.attention[row]
    return Hypotheses(tokens=tokens, scores=scores, attention=attention)
