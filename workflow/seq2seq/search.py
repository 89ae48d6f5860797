"""Decoding as pure functions outside the model: greedy search and beam search.

Both work on any model with the decoding part of the contract of :mod:`seq2seq.models.base` (an ensemble
too):

- ``model.encode(src[B,S], src_lengths[B]) -> enc``;
- ``model.init_state(enc) -> state``;
- ``model.decode_step(prev_tokens[B], state, enc) -> (log_probs[B,V], state, attn[B,S])``;

where ``enc.select(idx[B'])`` and ``state.select(idx[B'])`` pick, repeat or reorder batch rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .batching import pad_sources
from .tokens import EOS_INDEX, SOS_INDEX


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

    Sentences that have produced ``<eos>`` leave the batch once they are a quarter of it (their rows are dropped
    from the decoder state and the encoding), so the last steps of a batch cost what its longest outputs need.
    The model is put in eval mode for the search and given back in the mode it came in.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    was_training = model.training
    model.eval()
    batch_size, device = src.size(0), src.device
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    prev = torch.full((batch_size,), SOS_INDEX, dtype=torch.long, device=device)
    rows = torch.arange(batch_size, device=device)  # [R]: the sentence of each row still in the batch
    ended = torch.zeros(batch_size, dtype=torch.bool, device=device)  # [R]: rows that produced <eos>
    tokens = torch.full((batch_size, max_len), EOS_INDEX, dtype=torch.long, device=device)  # [B,T]
    scores = torch.zeros(batch_size, device=device)  # [B]
    attention = torch.zeros(batch_size, max_len, src.size(1), device=device)  # [B,T,S]
    lengths = torch.full((batch_size,), max_len, dtype=torch.long, device=device)  # [B]
    for step in range(max_len):
        log_probs, state, attn = model.decode_step(prev, state, enc)  # [R,V], R rows, [R,S]
        score, prev = log_probs.max(dim=-1)
        live = rows[~ended]
        tokens[live, step] = prev[~ended]
        scores[live] += score[~ended]
        attention[live, step] = attn[~ended].float()
        now = (prev == EOS_INDEX) & ~ended
        lengths[rows[now]] = step + 1
        ended |= now
        finished = int(ended.sum())
        if finished == rows.numel():
            break
        if 4 * finished >= rows.numel():  # drop the finished rows
            keep = (~ended).nonzero().squeeze(1)
            rows, prev, ended = rows[keep], prev[keep], ended[keep]
            state, enc = state.select(keep), enc.select(keep)
    model.train(was_training)
    lengths_cpu, sources = lengths.tolist(), src_lengths.tolist()
    tokens, attention = tokens.cpu(), attention.cpu()
    return Hypotheses(tokens=[tokens[b, :n].tolist() for b, n in enumerate(lengths_cpu)],
                      scores=scores.tolist(),
                      attention=[attention[b, :n, :s] for b, (n, s) in enumerate(zip(lengths_cpu, sources))])


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016); 1 when alpha is 0."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(model: torch.nn.Module, src: Tensor, src_lengths: Tensor, beam_size: int, alpha: float,
                max_len: int) -> Hypotheses:
    """Batched beam search. src: [B,S] long, src_lengths: [B] long.

    The B sentences are decoded together as B*K rows (K = ``beam_size``). Each step keeps the K best
    continuations of every sentence by summed log-probability; a continuation ending in ``<eos>`` is finished
    and its row stops expanding (the next step refills the beam from the live rows). A sentence is done when it
    has K finished hypotheses and no live row can still beat the best of them, when no live row is left, or at
    ``max_len`` (live rows are then finished as they are). Finished hypotheses are ranked by score / lp(length)
    with the GNMT length penalty (the first of equal ones wins); the returned scores are the raw summed
    log-probabilities. ``beam_size`` 1 gives exactly :func:`greedy`'s tokens, for any ``alpha``.
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be at least 1, got {beam_size} and {max_len}")
    if beam_size == 1:  # one hypothesis: greedy's, also where two tokens tie (topk may pick either; max the first)
        return greedy(model, src, src_lengths, max_len)
    was_training = model.training
    model.eval()
    batch_size, k = src.size(0), beam_size
    device = src.device
    rows = torch.arange(batch_size, device=device).repeat_interleave(k)  # [B*K]: sentence of each row
    enc = model.encode(src, src_lengths).select(rows)  # rows of one sentence share its encoding
    state = model.init_state(enc)  # B*K rows
    scores = torch.full((batch_size, k), float("-inf"), device=device)  # [B,K]
    scores[:, 0] = 0.0  # the first step expands one row per sentence
    prev = torch.full((batch_size * k,), SOS_INDEX, dtype=torch.long, device=device)
    history = torch.empty(batch_size * k, 0, dtype=torch.long, device=device)  # [B*K,t]
    attention = torch.empty(batch_size * k, 0, src.size(1), device=device)  # [B*K,t,S]
    alive = torch.arange(batch_size, device=device)  # [B']: the sentences still in the batch
    offsets = torch.arange(k, device=device)
    # Per sentence: the best finished hypothesis so far (normalized and raw score, tokens, attention, length):
    best_norm = torch.full((batch_size,), float("-inf"), dtype=torch.float64, device=device)
    best_raw = torch.zeros(batch_size, device=device)
    best_tokens = torch.zeros(batch_size, max_len, dtype=torch.long, device=device)
    best_attention = torch.zeros(batch_size, max_len, src.size(1), device=device)
    best_length = torch.zeros(batch_size, dtype=torch.long, device=device)
    finished_count = torch.zeros(batch_size, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    best_possible_lp = length_penalty(max_len, alpha)  # scores only fall, lp only grows: the best case

    for step in range(max_len):
        live = alive.numel()
        log_probs, state, attn = model.decode_step(prev, state, enc)  # [B'K,V], B'K rows, [B'K,S]
        # The K best of a sentence's K*V continuations are among the K best of each of its rows: pick those
        # first (a row's score does not change the order within it), then the K best of the K*K.
        per_row = min(k, log_probs.size(-1))
        row_scores, row_tokens = log_probs.float().topk(per_row, dim=1)  # [B'K,K']
        candidates = (scores.view(-1, 1) + row_scores).view(live, k * per_row)
        top_scores, top_ids = candidates.topk(k, dim=1)  # [B',K]
        origin = (torch.arange(live, device=device).unsqueeze(1) * k + top_ids // per_row).view(-1)  # [B'K]
        tokens = row_tokens.view(live, k * per_row).gather(1, top_ids)  # [B',K]
        state = state.select(origin)
        history = torch.cat([history.index_select(0, origin), tokens.view(-1, 1)], dim=1)
        attention = torch.cat([attention.index_select(0, origin), attn.float().index_select(0, origin)[:, None]],
                              dim=1)
        prev = tokens.view(-1)

        ended = tokens == EOS_INDEX if step < max_len - 1 else torch.ones_like(tokens, dtype=torch.bool)
        ended &= torch.isfinite(top_scores) & ~done[alive].unsqueeze(1)
        norm = torch.where(ended, top_scores.double() / length_penalty(step + 1, alpha), float("-inf"))
        step_best, step_j = norm.max(dim=1)  # the first of equal ones
        better = (step_best > best_norm[alive]).nonzero().squeeze(1)  # [n]: positions in the live batch
        if better.numel():
            improved, row = alive[better], better * k + step_j[better]
            best_norm[improved], best_raw[improved] = step_best[better], top_scores[better, step_j[better]]
            best_tokens[improved, : step + 1] = history[row]
            best_attention[improved, : step + 1] = attention[row]
            best_length[improved] = step + 1
        finished_count[alive] += ended.sum(dim=1)
        scores = top_scores.masked_fill(tokens == EOS_INDEX, float("-inf"))
        best_live = scores.max(dim=1).values.double()  # -inf where no live row is left
        done[alive] |= (best_live == float("-inf")) | (
            (finished_count[alive] >= k) & (best_norm[alive] >= best_live / best_possible_lp))
        ended_sentences = done[alive]
        finished = int(ended_sentences.sum())
        if finished == live:
            break
        scores[ended_sentences] = float("-inf")
        if 4 * finished >= live:  # drop the done sentences' rows
            keep = (~ended_sentences).nonzero().squeeze(1)
            rows = (keep.unsqueeze(1) * k + offsets).view(-1)
            alive, scores, prev = alive[keep], scores[keep], prev[rows]
            state, enc = state.select(rows), enc.select(rows)
            history, attention = history[rows], attention[rows]

    model.train(was_training)
    lengths, sources = best_length.tolist(), src_lengths.tolist()
    best_tokens, best_attention = best_tokens.cpu(), best_attention.cpu()
    return Hypotheses(tokens=[best_tokens[b, :n].tolist() for b, n in enumerate(lengths)],
                      scores=best_raw.tolist(),
                      attention=[best_attention[b, :n, :s] for b, (n, s) in enumerate(zip(lengths, sources))])


def decode_in_batches(model: torch.nn.Module, sources: Sequence[list[int]], *, max_len: int, batch_size: int,
                      beam_size: int = 1, alpha: float = 0.0) -> Hypotheses:
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
