"""seq2seq.vocab.Vocabulary and seq2seq.corpus.build_vocabularies."""

from __future__ import annotations

import json

import pytest

from seq2seq.corpus import CorpusError, build_vocabularies, write_split
from seq2seq.vocab import EOS_INDEX, PAD_INDEX, SOS_INDEX, SPECIALS, UNK_INDEX, Vocabulary

SENTENCES = [["b", "a", "c"], ["a", "c"], ["a", "d"], ["c", "e"]]


def test_specials_are_fixed_and_distinct():
    vocab = Vocabulary.build(SENTENCES)
    assert vocab.tokens[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"] == list(SPECIALS)
    assert (PAD_INDEX, SOS_INDEX, EOS_INDEX, UNK_INDEX) == (0, 1, 2, 3)
    assert len({PAD_INDEX, SOS_INDEX, EOS_INDEX, UNK_INDEX}) == 4
    # a special string in the data does not become a second entry
    assert Vocabulary.build([["<unk>", "<pad>", "x"]]).tokens == [*SPECIALS, "x"]


def test_order_is_frequency_then_alphabetical():
    vocab = Vocabulary.build(SENTENCES)
    # a:3 c:3 then b:1 d:1 e:1
    assert vocab.tokens[4:] == ["a", "c", "b", "d", "e"]
    assert vocab.counts == {"a": 3, "c": 3, "b": 1, "d": 1, "e": 1}


def test_min_freq_cutoff():
    vocab = Vocabulary.build(SENTENCES, min_freq=2)
    assert vocab.tokens[4:] == ["a", "c"] and vocab.min_freq == 2
    assert vocab.index("b") == UNK_INDEX


def test_encode_decode_and_unseen_words():
    vocab = Vocabulary.build(SENTENCES)
    ids = vocab.encode(["a", "zebra", "c"])
    assert ids == [vocab.index("a"), UNK_INDEX, vocab.index("c"), EOS_INDEX]
    assert vocab.encode(["a"], add_eos=False, add_sos=True) == [SOS_INDEX, vocab.index("a")]
    assert vocab.decode([SOS_INDEX, *ids, PAD_INDEX, vocab.index("e")]) == ["a", "<unk>", "c"]
    assert "zebra" not in vocab and "a" in vocab


def test_json_round_trip(tmp_path):
    vocab = Vocabulary.build(SENTENCES, min_freq=1)
    vocab.save(tmp_path / "v.json")
    loaded = Vocabulary.load(tmp_path / "v.json")
    assert loaded.tokens == vocab.tokens and loaded.counts == vocab.counts and loaded.min_freq == 1
    assert loaded.fingerprint() == vocab.fingerprint()
    data = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert data["specials"] == list(SPECIALS)

    (tmp_path / "bad.json").write_text('{"specials": ["<unk>"], "tokens": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not a valid vocabulary file"):
        Vocabulary.load(tmp_path / "bad.json")


def test_build_vocabularies_uses_the_train_split_only(tmp_path):
    write_split(tmp_path / "train.tsv", [("je suis grand .", "i am tall ."), ("je suis petit .", "i am small .")])
    write_split(tmp_path / "test.tsv", [("il est triste .", "he is sad .")])
    source, target = build_vocabularies(tmp_path / "train.tsv", min_freq=1)
    assert source.tokens[4:] == [".", "je", "suis", "grand", "petit"]
    assert target.counts == {"i": 2, "am": 2, ".": 2, "tall": 1, "small": 1}
    assert source.index("triste") == UNK_INDEX and target.index("sad") == UNK_INDEX

    source2, _ = build_vocabularies(tmp_path / "train.tsv", min_freq=2)
    assert source2.tokens[4:] == [".", "je", "suis"]


def test_build_vocabularies_needs_pairs(tmp_path):
    write_split(tmp_path / "train.tsv", [])
    with pytest.raises(CorpusError, match="no pairs"):
        build_vocabularies(tmp_path / "train.tsv")

