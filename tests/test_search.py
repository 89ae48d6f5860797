"""Greedy and beam search, on a fake bigram model with known scores and on a tiny trained GRU model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from helpers import model_config, tiny_trained_model
from seq2seq.search import beam_search, greedy, length_penalty
from seq2seq.tokens import EOS_INDEX, SOS_INDEX


@dataclass
class FakeEncoding:
    mask: Tensor  # [B,S] bool

    def select(self, index: Tensor) -> "FakeEncoding":
        return FakeEncoding(self.mask.index_select(0, index))


@dataclass
class FakeState:
    steps: Tensor  # [B] the steps taken

    def select(self, index: Tensor) -> "FakeState":
        return FakeState(self.steps.index_select(0, index))


class BigramModel(torch.nn.Module):
    """The decoding part of the model contract (seq2seq.models.base) with log p(next | prev) = table[prev];
    attention is uniform over the real tokens."""

    def __init__(self, table: Tensor):
        super().__init__()
        self.table = table.log_softmax(dim=-1)  # [V,V]

    def encode(self, src: Tensor, src_lengths: Tensor) -> FakeEncoding:
        return FakeEncoding(torch.arange(src.size(1))[None, :] < src_lengths[:, None])

    def init_state(self, enc: FakeEncoding) -> FakeState:
        return FakeState(torch.zeros(enc.mask.size(0)))

    def decode_step(self, prev: Tensor, state: FakeState, enc: FakeEncoding):
        attn = enc.mask.float() / enc.mask.float().sum(dim=1, keepdim=True)
        return self.table[prev], FakeState(state.steps + 1), attn


def random_model(vocab_size: int = 9, seed: int = 0) -> BigramModel:
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(vocab_size, vocab_size, generator=generator) * 2
    table[:, 0] = -1e4  # never <pad>
    table[:, SOS_INDEX] = -1e4  # never <sos>
    return BigramModel(table)


def trap_model() -> BigramModel:
    """Greedy takes A (p=.5) then must spread over C/D/E; beam search finds B <eos> (p=.4*.9)."""
    pad, sos, eos, a, b, c, d, e = range(8)
    probs = torch.full((8, 8), 1e-6)
    probs[sos, [a, b, eos]] = torch.tensor([0.5, 0.4, 0.1])
    probs[a, [c, d, e, eos]] = torch.tensor([0.35, 0.33, 0.31, 0.01])
    probs[b, [eos, c]] = torch.tensor([0.9, 0.1])
    probs[c, eos] = probs[d, eos] = probs[e, eos] = probs[eos, eos] = 1.0
    return BigramModel(probs.log())


def source(lengths: list[int]) -> tuple[Tensor, Tensor]:
    src = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        src[i, :n] = 4
        src[i, n - 1] = EOS_INDEX
    return src, torch.tensor(lengths)


def sequence_log_prob(model: BigramModel, tokens: list[int]) -> float:
    prev = [SOS_INDEX, *tokens[:-1]]
    return float(sum(model.table[p, t] for p, t in zip(prev, tokens)))


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("seed", range(5))
def test_beam_size_one_is_greedy(alpha: float, seed: int) -> None:
    model = random_model(seed=seed)
    src, lengths = source([3, 5, 1, 4])
    expected = greedy(model, src, lengths, max_len=12)
    got = beam_search(model, src, lengths, beam_size=1, alpha=alpha, max_len=12)
    assert got.tokens == expected.tokens
    assert got.scores == pytest.approx(expected.scores, abs=1e-4)
    for a, b in zip(got.attention, expected.attention):
        assert torch.allclose(a, b)


def test_beam_finds_the_better_sentence_greedy_misses() -> None:
    model = trap_model()
    src, lengths = source([2])
    assert greedy(model, src, lengths, max_len=5).tokens == [[3, 5, EOS_INDEX]]
    beam = beam_search(model, src, lengths, beam_size=2, alpha=0.0, max_len=5)
    assert beam.tokens == [[4, EOS_INDEX]]
    assert beam.scores[0] == pytest.approx(math.log(0.4 * 0.9), abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_beam_scores_are_the_model_log_probs_and_batching_changes_nothing(seed: int) -> None:
    model = random_model(seed=seed)
    src, lengths = source([4, 2, 6])
    together = beam_search(model, src, lengths, beam_size=3, alpha=0.6, max_len=10)
    for b in range(3):
        alone = beam_search(model, src[b: b + 1, : lengths[b]], lengths[b: b + 1], 3, 0.6, 10)
        assert alone.tokens[0] == together.tokens[b]
        assert together.scores[b] == pytest.approx(sequence_log_prob(model, together.tokens[b]), abs=1e-4)
        assert together.attention[b].shape == (len(together.tokens[b]), int(lengths[b]))


def test_length_penalty_prefers_longer_sentences() -> None:
    # [<eos>] has p=.45; [a <eos>] and [a b <eos>] both .55 * .5 = .275
    pad, sos, eos, a, b = range(5)
    probs = torch.full((5, 5), 1e-9)
    probs[sos, [eos, a]] = torch.tensor([0.45, 0.55])
    probs[a, [eos, b]] = torch.tensor([0.5, 0.5])
    probs[b, eos] = probs[eos, eos] = 1.0
    model = BigramModel(probs.log())
    src, lengths = source([2])
    assert beam_search(model, src, lengths, 2, alpha=0.0, max_len=6).tokens == [[eos]]
    # alpha 2: log(.45) / lp(1) = -0.80 < log(.275) / lp(3) = -0.73
    assert beam_search(model, src, lengths, 2, alpha=2.0, max_len=6).tokens == [[a, b, eos]]
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(7, 1.0) == 2.0


def exhaustive_best(model: BigramModel, alpha: float, max_len: int, words: range) -> tuple[list[int], float]:
    """The output beam search should find when its beam holds every prefix: the best of all outputs (ending with
    <eos>, or cut at max_len) by log p / lp(length), lp = ((5 + length) / 6) ** alpha, written out here."""
    import itertools

    best, best_norm = [], float("-inf")
    for length in range(1, max_len + 1):
        for prefix in itertools.product(words, repeat=length - 1):
            endings = [EOS_INDEX, *words] if length == max_len else [EOS_INDEX]  # cut at max_len: any last word
            for tokens in ([*prefix, last] for last in endings):
                norm = sequence_log_prob(model, tokens) / ((5 + length) / 6) ** alpha
                if norm > best_norm:
                    best, best_norm = list(tokens), norm
    return best, best_norm


@pytest.mark.parametrize("alpha", [0.6, 2.0])
@pytest.mark.parametrize("seed", range(6))
def test_a_beam_wide_enough_finds_the_best_length_normalized_output(alpha: float, seed: int) -> None:
    """With a beam that holds every prefix, beam search is exhaustive: it returns the output of the best
    length-normalized score, each finished output normalized by the GNMT penalty of its own length."""
    model = random_model(vocab_size=6, seed=seed)  # <eos> and three words; <pad> and <sos> never come
    src, lengths = source([3])
    found = beam_search(model, src, lengths, beam_size=64, alpha=alpha, max_len=4)
    tokens, _ = exhaustive_best(model, alpha, 4, range(3, 6))
    assert found.tokens[0] == tokens
    assert found.scores[0] == pytest.approx(sequence_log_prob(model, tokens), abs=1e-4)


def test_each_finished_output_is_normalized_by_the_penalty_of_its_own_length() -> None:
    """[<eos>] (p = .558, 1 token) against [a <eos>] (p = .442, 2 tokens, <eos> counted), alpha 2: by
    log p / lp(length) the short one wins, -0.583 / 1 > -0.816 / (7/6)^2 = -0.600; normalizing by the penalty of
    one token fewer would pick the long one (-0.583 / (5/6)^2 = -0.84 < -0.816 / 1)."""
    pad, sos, eos, a = range(4)
    probs = torch.full((4, 4), 1e-9)
    probs[sos, [eos, a]] = torch.tensor([0.558, 0.442])
    probs[a, eos] = probs[eos, eos] = 1.0
    model = BigramModel(probs.log())
    src, lengths = source([2])
    short, long = math.log(0.558) / length_penalty(1, 2.0), math.log(0.442) / length_penalty(2, 2.0)
    assert short > long and length_penalty(2, 2.0) == pytest.approx((7 / 6) ** 2)
    assert beam_search(model, src, lengths, 2, alpha=2.0, max_len=6).tokens == [[eos]]


def test_output_cut_at_max_len_has_no_eos() -> None:
    pad, sos, eos, a = range(4)
    probs = torch.full((4, 4), 1e-9)
    probs[sos, a] = probs[a, a] = probs[eos, eos] = 1.0
    model = BigramModel(probs.log())
    src, lengths = source([3])
    assert beam_search(model, src, lengths, 3, 0.6, max_len=5).tokens == [[a] * 5]
    assert greedy(model, src, lengths, max_len=5).tokens == [[a] * 5]


def test_search_restores_training_mode_and_rejects_bad_sizes() -> None:
    model = random_model()
    model.train()
    src, lengths = source([3])
    beam_search(model, src, lengths, 2, 0.0, 5)
    greedy(model, src, lengths, 5)
    assert model.training
    with pytest.raises(ValueError):
        beam_search(model, src, lengths, 0, 0.0, 5)
    with pytest.raises(ValueError):
        greedy(model, src, lengths, 0)


# --------------------------------------------------------------------------- a tiny trained GRU model

@pytest.fixture(scope="module")
def trained():
    return tiny_trained_model()  # shared with other test modules: trained once per session


@pytest.mark.parametrize("attention", ["none", "tutorial", "bahdanau", "luong"])
def test_beam_one_is_greedy_on_every_attention_variant(attention: str) -> None:
    from seq2seq.batching import pad_sources
    from seq2seq.models.gru import GRUSeq2Seq

    torch.manual_seed(1)
    model = GRUSeq2Seq(model_config(20, 15, attention, tie_embeddings=True, max_length=11)).eval()
    src, lengths = pad_sources([[5, 6, 7, EOS_INDEX], [8, EOS_INDEX], [9, 4, 4, 4, 10, EOS_INDEX]])
    expected = greedy(model, src, lengths, max_len=8)
    for alpha in (0.0, 0.6):
        got = beam_search(model, src, lengths, 1, alpha, max_len=8)
        assert got.tokens == expected.tokens
        assert got.scores == pytest.approx(expected.scores, abs=1e-4)


def test_beam_never_scores_below_greedy_on_a_trained_model(trained) -> None:
    from seq2seq.translate import prepare_sources

    from seq2seq.batching import pad_sources

    model, source_vocab, target_vocab, pairs = trained
    sources, _ = prepare_sources([s for s, _ in pairs], None, source_vocab, model.max_source_length)
    src, lengths = pad_sources(sources)
    greedy_hyps = greedy(model, src, lengths, max_len=12)
    beam_hyps = beam_search(model, src, lengths, beam_size=4, alpha=0.0, max_len=12)
    for g, b in zip(greedy_hyps.scores, beam_hyps.scores):
        assert b >= g - 1e-4
    # the model learned something: greedy output matches most references
    correct = sum(target_vocab.decode(t) == ref for t, (_, ref) in zip(greedy_hyps.tokens, pairs))
    assert correct > len(pairs) // 2


def test_beam_one_is_greedy_where_two_tokens_tie_exactly() -> None:
    """Greedy takes the first of equal log-probabilities (max); beam search's topk may take another: a model whose
    output layer cannot tell two tokens apart made beam 1 produce [5, 6, 6, 6] where greedy produced [5, 5, 5, 5]."""
    from helpers import seeded_model
    from seq2seq.batching import pad_sources

    model = seeded_model("bahdanau", seed=0)
    with torch.no_grad():  # tokens 5 and 6: identical rows of the output layer, and the likeliest
        model.decoder.out.weight[6] = model.decoder.out.weight[5]
        model.decoder.out.bias[5] = model.decoder.out.bias[6] = 10.0
    src, lengths = pad_sources([[4, 7, 9, 2], [5, 2]])
    expected = greedy(model, src, lengths, max_len=4)
    assert expected.tokens[0] == [5, 5, 5, 5]
    for alpha in (0.0, 0.6):
        found = beam_search(model, src, lengths, beam_size=1, alpha=alpha, max_len=4)
        assert found.tokens == expected.tokens and found.scores == expected.scores
