"""Ensembles decode as one model; checkpoint averaging."""

from __future__ import annotations

import pytest
import torch

from helpers import model_config, tiny_trained_model
from seq2seq.checkpoint import CheckpointError, cpu_state, save_model
from seq2seq.ensemble import Ensemble, load_system
from seq2seq.metadata import Metadata
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.training import average_states
from seq2seq.translate import translate_sentences
from seq2seq.vocab import WordVocabulary

SENTENCES = ["je suis content .", "tu es grand .", "il est tres fatigue aujourd hui ."]


@pytest.fixture(scope="module")
def trained():
    return tiny_trained_model()


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_of_one_translates_exactly_as_its_member(trained, beam) -> None:
    model, source_vocab, target_vocab, _ = trained
    alone = translate_sentences(model, SENTENCES, source_vocab, target_vocab, "ascii", beam_size=beam, max_len=10,
                                batch_size=64)
    together = translate_sentences(Ensemble([model]).eval(), SENTENCES, source_vocab, target_vocab, "ascii",
                                   beam_size=beam, max_len=10, batch_size=64)
    assert [t.output_tokens for t in together] == [t.output_tokens for t in alone]
    assert [t.score for t in together] == pytest.approx([t.score for t in alone], abs=1e-5)
    for a, b in zip(alone, together):
        assert torch.allclose(a.attention, b.attention, atol=1e-6)


def test_an_ensemble_averages_its_members_log_probabilities(trained) -> None:
    model, source_vocab, target_vocab, _ = trained
    torch.manual_seed(5)
    other = GRUSeq2Seq(model_config(len(source_vocab), len(target_vocab), "luong", tie_embeddings=True)).eval()
    ensemble = Ensemble([model, other]).eval()
    src = torch.tensor([source_vocab.encode(SENTENCES[0])])
    lengths = torch.tensor([src.size(1)])
    enc = ensemble.encode(src, lengths)
    state = ensemble.init_state(enc)
    assert [member.hidden.shape for member in state.members] == [(1, 1, 32), (1, 1, 16)]
    prev = torch.tensor([1])
    log_probs, new_state, attention = ensemble.decode_step(prev, state, enc)
    first = model.decode_step(prev, model.init_state(model.encode(src, lengths)), model.encode(src, lengths))
    second = other.decode_step(prev, other.init_state(other.encode(src, lengths)), other.encode(src, lengths))
    assert torch.allclose(log_probs, (first[0] + second[0]) / 2, atol=1e-6)
    assert torch.allclose(attention, (first[2] + second[2]) / 2, atol=1e-6)
    assert torch.allclose(new_state.members[0].hidden, first[1].hidden, atol=1e-6)
    assert torch.allclose(new_state.members[1].hidden, second[1].hidden, atol=1e-6)


def test_a_member_without_attention_does_not_dilute_the_ensembles_attention(trained) -> None:
    """A `none` member reports all-zero rows: the ensemble's rows are the attending members' mean and sum to 1
    (a plain mean over [bahdanau, none] summed to 0.5, drawn at half intensity on the fixed 0-1 scale)."""
    model, source_vocab, target_vocab, _ = trained
    torch.manual_seed(7)
    blind = GRUSeq2Seq(model_config(len(source_vocab), len(target_vocab), "none", tie_embeddings=True)).eval()
    src = torch.tensor([source_vocab.encode(s) for s in ["je suis content .", "tu es grand ."]])
    lengths = torch.tensor([src.size(1)] * 2)
    prev = torch.tensor([1, 1])

    def attention(system):
        enc = system.encode(src, lengths)
        return system.decode_step(prev, system.init_state(enc), enc)[2]

    alone = attention(model)
    assert torch.allclose(alone.sum(-1), torch.ones(2), atol=1e-6)
    assert torch.equal(attention(Ensemble([model, blind]).eval()), alone)
    assert torch.equal(attention(Ensemble([blind, model, blind]).eval()), alone)
    assert torch.count_nonzero(attention(Ensemble([blind, blind]).eval())) == 0
    translations = translate_sentences(Ensemble([blind, model]).eval(), SENTENCES, source_vocab, target_vocab,
                                       "ascii", beam_size=3, max_len=10, batch_size=64)
    for translation in translations:
        assert torch.allclose(translation.attention.sum(-1), torch.ones(len(translation.output_tokens)), atol=1e-5)


def test_load_system_refuses_members_with_other_vocabularies(trained, tmp_path) -> None:
    model, source_vocab, target_vocab, _ = trained
    save_model(tmp_path / "a.pt", model.config, cpu_state(model), source_vocab, target_vocab, Metadata(parameters=7))
    save_model(tmp_path / "b.pt", model.config, cpu_state(model), source_vocab, target_vocab, Metadata(parameters=7))
    system, _, _, metadata = load_system([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert isinstance(system, Ensemble) and metadata.parameters == 14
    other_target = WordVocabulary(target_vocab.tokens[:-1] + ["zzz"])
    save_model(tmp_path / "c.pt", model.config, cpu_state(model), source_vocab, other_target, Metadata())
    with pytest.raises(CheckpointError, match=r"c\.pt: other vocabularies than .*a\.pt"):
        load_system([tmp_path / "a.pt", tmp_path / "c.pt"])


def test_averaging_identical_checkpoints_gives_the_same_weights(trained) -> None:
    model, _, _, _ = trained
    state = cpu_state(model)
    averaged = average_states([state, state, state])
    assert averaged.keys() == state.keys()
    assert all(torch.allclose(averaged[k], state[k]) and averaged[k].dtype == state[k].dtype for k in state)
    halves = average_states([{"w": torch.zeros(3)}, {"w": torch.ones(3)}])
    assert halves["w"].tolist() == [0.5, 0.5, 0.5]
