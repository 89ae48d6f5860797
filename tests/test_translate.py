"""Translating sentences: source preparation, unknown words, cut inputs, input order (the seq2seq-translate
command is in test_translate_command.py)."""

from __future__ import annotations

import logging

import pytest
import torch

from helpers import model_config
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.tokens import EOS_INDEX, UNK_INDEX
from seq2seq.translate import prepare_sources, translate_sentences
from seq2seq.vocab import WordVocabulary

SOURCE = WordVocabulary.build(["je suis content .", "tu es grand ."])
TARGET = WordVocabulary.build(["i am happy .", "you are tall ."])


def test_prepare_sources_normalizes_pads_and_maps_unknown_words() -> None:
    sources, tokens = prepare_sources(["Je suis CONTENT.", "tu es xylophone !"], "ascii", SOURCE, None)
    assert tokens == [["je", "suis", "content", "."], ["tu", "es", "<unk>", "<unk>"]]
    assert [len(ids) for ids in sources] == [5, 5]
    assert sources[0] == SOURCE.encode("je suis content .")
    assert sources[1][2:] == [UNK_INDEX, UNK_INDEX, EOS_INDEX]


def test_too_long_input_is_cut_with_a_warning_for_tutorial_attention(caplog) -> None:
    model = GRUSeq2Seq(model_config(len(SOURCE), len(TARGET), "tutorial", hidden_size=8, max_length=5))
    sentence = "je suis content . tu es grand ."
    with caplog.at_level(logging.WARNING):
        [translation] = translate_sentences(model, [sentence], SOURCE, TARGET, "ascii", max_len=6, batch_size=1)
    assert translation.source_tokens == ["je", "suis", "content", "."]
    assert translation.attention.shape == (len(translation.output_tokens), 5)
    assert "sentence 1 has 8 tokens but this model reads at most 4 (plus <eos>): translating only " in caplog.text


@pytest.mark.parametrize("beam", [1, 3])
def test_unseen_words_translate_without_error_and_results_keep_input_order(beam: int) -> None:
    torch.manual_seed(0)
    model = GRUSeq2Seq(model_config(len(SOURCE), len(TARGET), "bahdanau", hidden_size=8)).eval()
    sentences = ["tu es grand .", "zorglub !", "je suis tres tres content aujourd hui ."]
    together = translate_sentences(model, sentences, SOURCE, TARGET, "ascii", beam_size=beam, max_len=7,
                                   batch_size=2)
    assert [t.source_tokens for t in together] == [SOURCE.labels(SOURCE.encode(s)[:-1]) for s in sentences]
    for sentence, translation in zip(sentences, together):
        [alone] = translate_sentences(model, [sentence], SOURCE, TARGET, "ascii", beam_size=beam, max_len=7,
                                      batch_size=1)
        assert alone.output_tokens == translation.output_tokens
        assert translation.attention.shape == (len(translation.output_tokens), len(sentence.split()) + 1)
        assert all(token in TARGET.tokens for token in translation.output_tokens)
