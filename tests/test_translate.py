"""Translating sentences: source preparation, unknown words, cut inputs, and the seq2seq-translate command."""

from __future__ import annotations

import logging

import pytest
import torch

from seq2seq.model import Seq2Seq
from seq2seq.settings import ModelConfig
from seq2seq.translate import prepare_sources, translate_sentences
from seq2seq.vocab import EOS_INDEX, UNK_INDEX, Vocabulary

SOURCE = Vocabulary.build([["je", "suis", "content", "."], ["tu", "es", "grand", "."]])
TARGET = Vocabulary.build([["i", "am", "happy", "."], ["you", "are", "tall", "."]])


def test_prepare_sources_normalizes_pads_and_maps_unknown_words() -> None:
    src, lengths, tokens = prepare_sources(["Je suis CONTENT.", "tu es xylophone !"], "ascii", SOURCE, None)
    assert tokens == [["je", "suis", "content", "."], ["tu", "es", "xylophone", "!"]]
    assert lengths.tolist() == [5, 5]
    assert src[0].tolist() == SOURCE.encode(["je", "suis", "content", "."])
    assert src[1, 2] == UNK_INDEX and src[1, 3] == UNK_INDEX and src[1, 4] == EOS_INDEX


def test_too_long_input_is_cut_with_a_warning_for_tutorial_attention(caplog) -> None:
    model = Seq2Seq(ModelConfig(len(SOURCE), len(TARGET), "tutorial", hidden_size=8, max_length=5))
    sentence = "je suis content . tu es grand ."
    with caplog.at_level(logging.WARNING):
        [translation] = translate_sentences(model, [sentence], SOURCE, TARGET, "ascii", max_len=6)
    assert translation.source_tokens == ["je", "suis", "content", "."]
    assert translation.attention.shape == (len(translation.output_tokens), 5)
    assert "has 8 words but this model reads at most 4" in caplog.text


@pytest.mark.parametrize("beam", [1, 3])
def test_unseen_words_translate_without_error_and_results_keep_input_order(beam: int) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(len(SOURCE), len(TARGET), "bahdanau", hidden_size=8)).eval()
    sentences = ["tu es grand .", "zorglub !", "je suis tres tres content aujourd hui ."]
    together = translate_sentences(model, sentences, SOURCE, TARGET, "ascii", beam_size=beam, max_len=7,
                                   batch_size=2)
    assert [t.source_tokens for t in together] == [s.split() for s in sentences]
    for sentence, translation in zip(sentences, together):
        [alone] = translate_sentences(model, [sentence], SOURCE, TARGET, "ascii", beam_size=beam, max_len=7)
        assert alone.output_tokens == translation.output_tokens
        assert translation.attention.shape == (len(translation.output_tokens), len(sentence.split()) + 1)
        assert all(token in TARGET.tokens for token in translation.output_tokens)


# --------------------------------------------------------------------------- the seq2seq-translate command

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from test_search import save_tiny_checkpoint

    path, _ = save_tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")
    return path


def test_command_translates_arguments(checkpoint, capsys) -> None:
    from seq2seq.translate import main

    assert main(["--model", str(checkpoint), "Je suis content.", "tu es grand ."]) == 0
    assert capsys.readouterr().out.splitlines() == ["i am happy .", "you are tall ."]


def test_command_reads_stdin_with_beam_search_and_saves_a_plot(checkpoint, capsys, monkeypatch, tmp_path) -> None:
    import io

    from seq2seq.translate import main

    monkeypatch.setattr("sys.stdin", io.StringIO("Nous sommes très fatigué.\nelle est zorglub .\n"))
    plot = tmp_path / "attention.svg"
    assert main(["--model", str(checkpoint), "--beam", "3", "--alpha", "0.6", "--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "we are very tired ."
    assert len(lines) == 2 and lines[1].startswith("she is")
    assert plot.read_bytes().startswith(b"<?xml")


def test_missing_or_broken_checkpoint_is_one_clear_error(tmp_path, capsys) -> None:
    from seq2seq.translate import main

    missing = tmp_path / "nowhere" / "model.pt"
    assert main(["--model", str(missing), "je suis content ."]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "not found" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["--model", str(broken), "je suis content ."]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "Traceback" not in err
