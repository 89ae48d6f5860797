"""The batched searches decode exactly as the previous, simpler implementations below (kept here as references
only): every sentence kept to the last step, finished hypotheses in Python lists."""

from __future__ import annotations

import pytest
import torch

from helpers import model_config
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.search import beam_search, greedy, length_penalty
from seq2seq.tokens import EOS_INDEX, SOS_INDEX


@torch.no_grad()
def reference_greedy(model, src, src_lengths, max_len):
    model.eval()
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    prev = torch.full((src.size(0),), SOS_INDEX, dtype=torch.long)
    finished = torch.zeros(src.size(0), dtype=torch.bool)
    steps, step_scores, attentions = [], [], []
    for _ in range(max_len):
        log_probs, state, attn = model.decode_step(prev, state, enc)
        score, prev = log_probs.max(dim=-1)
        steps.append(prev)
        step_scores.append(torch.where(finished, torch.zeros_like(score), score))
        attentions.append(attn)
        finished |= prev == EOS_INDEX
        if bool(finished.all()):
            break
    produced, scores = torch.stack(steps, 1), torch.stack(step_scores, 1).sum(1)
    attention = torch.stack(attentions, 1).float()
    tokens, rows = [], []
    for b in range(src.size(0)):
        row = produced[b].tolist()
        length = row.index(EOS_INDEX) + 1 if EOS_INDEX in row else len(row)
        tokens.append(row[:length])
        rows.append(attention[b, :length, : int(src_lengths[b])])
    return tokens, scores.tolist(), rows


@torch.no_grad()
def reference_beam(model, src, src_lengths, k, alpha, max_len):
    model.eval()
    batch_size = src.size(0)
    rows = torch.arange(batch_size).repeat_interleave(k)
    enc = model.encode(src, src_lengths).select(rows)
    state = model.init_state(enc)
    scores = torch.full((batch_size, k), float("-inf"))
    scores[:, 0] = 0.0
    prev = torch.full((batch_size * k,), SOS_INDEX, dtype=torch.long)
    history = torch.empty(batch_size * k, 0, dtype=torch.long)
    attention = torch.empty(batch_size * k, 0, src.size(1))
    first_row = torch.arange(batch_size).unsqueeze(1) * k
    lengths = src_lengths.tolist()
    finished = [[] for _ in range(batch_size)]
    done = [False] * batch_size
    best_possible_lp = length_penalty(max_len, alpha)
    for step in range(max_len):
        log_probs, state, attn = model.decode_step(prev, state, enc)
        vocab_size = log_probs.size(-1)
        candidates = (scores.view(-1, 1) + log_probs.float()).view(batch_size, k * vocab_size)
        top_scores, top_ids = candidates.topk(k, dim=1)
        origin = (first_row + top_ids // vocab_size).view(-1)
        tokens = top_ids % vocab_size
        state = state.select(origin)
        history = torch.cat([history.index_select(0, origin), tokens.view(-1, 1)], dim=1)
        attention = torch.cat([attention.index_select(0, origin), attn.float().index_select(0, origin)[:, None]], 1)
        prev = tokens.view(-1)
        ended = tokens == EOS_INDEX if step < max_len - 1 else torch.ones_like(tokens, dtype=torch.bool)
        ended &= torch.isfinite(top_scores)
        for b, j in ended.nonzero().tolist():
            if done[b]:
                continue
            raw = float(top_scores[b, j])
            finished[b].append((raw / length_penalty(step + 1, alpha), raw, history[b * k + j].tolist(),
                                attention[b * k + j, :, : lengths[b]]))
        scores = top_scores.masked_fill(tokens == EOS_INDEX, float("-inf"))
        best_live = scores.max(dim=1).values.tolist()
        for b in range(batch_size):
            if not done[b] and (best_live[b] == float("-inf") or (
                    len(finished[b]) >= k and max(f[0] for f in finished[b]) >= best_live[b] / best_possible_lp)):
                done[b] = True
        if all(done):
            break
        scores[torch.tensor(done)] = float("-inf")
    best = [max(f, key=lambda hyp: hyp[0]) for f in finished]
    return [h[2] for h in best], [h[1] for h in best], [h[3] for h in best]


def _batch(seed: int, sizes=(3, 9, 1, 6, 12, 2, 7, 7, 4, 11)):
    generator = torch.Generator().manual_seed(seed)
    width = max(sizes)
    src = torch.zeros(len(sizes), width, dtype=torch.long)
    for i, n in enumerate(sizes):
        src[i, : n - 1] = torch.randint(4, 20, (n - 1,), generator=generator)
        src[i, n - 1] = EOS_INDEX
    return src, torch.tensor(sizes)


@pytest.mark.parametrize("attention", ["none", "tutorial", "bahdanau", "luong"])
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_and_beam_decode_as_the_reference_implementations(attention, seed) -> None:
    torch.manual_seed(seed)
    model = GRUSeq2Seq(model_config(20, 12, attention, max_length=12, tie_embeddings=True)).eval()
    src, lengths = _batch(seed)
    for max_len in (1, 4, 15):
        found = greedy(model, src, lengths, max_len)
        tokens, scores, rows = reference_greedy(model, src, lengths, max_len)
        assert found.tokens == tokens
        assert found.scores == pytest.approx(scores, abs=1e-5)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(found.attention, rows))
        for k, alpha in ((1, 0.0), (3, 0.6), (5, 1.0)):
            found = beam_search(model, src, lengths, k, alpha, max_len)
            tokens, scores, rows = reference_beam(model, src, lengths, k, alpha, max_len)
            assert found.tokens == tokens, (k, alpha, max_len)
            assert found.scores == pytest.approx(scores, abs=1e-5)
            assert all(a.shape == b.shape and torch.allclose(a, b, atol=1e-6) for a, b in zip(found.attention, rows))
