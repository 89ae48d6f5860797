"""seq2seq.vocab: word and sentencepiece vocabularies behind one interface, and the vocab stage."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_pairs
from seq2seq.corpus import CorpusError, normalize, write_split
from seq2seq.settings import VocabSettings
from seq2seq.vocab import (
    EOS_INDEX,
    PAD_INDEX,
    SOS_INDEX,
    SPECIALS,
    UNK_INDEX,
    SentencePieceVocabulary,
    WordVocabulary,
    build_vocabularies,
    load_vocabulary,
    vocabulary_from_dict,
    word_label,
    word_spans,
    write_vocabularies,
)

SENTENCES = ["b a c", "a c", "a d", "c e"]


def _id(vocab: WordVocabulary, word: str) -> int:
    return vocab.encode(word)[0]


def test_specials_are_fixed_and_distinct():
    vocab = WordVocabulary.build(SENTENCES)
    assert vocab.tokens[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"] == list(SPECIALS)
    assert (PAD_INDEX, SOS_INDEX, EOS_INDEX, UNK_INDEX) == (0, 1, 2, 3)
    # a special string in the data does not become a second entry
    assert WordVocabulary.build(["<unk> <pad> x"]).tokens == [*SPECIALS, "x"]


def test_order_is_frequency_then_alphabetical():
    vocab = WordVocabulary.build(SENTENCES)
    # a:3 c:3 then b:1 d:1 e:1
    assert vocab.tokens[4:] == ["a", "c", "b", "d", "e"]
    assert vocab.counts == {"a": 3, "c": 3, "b": 1, "d": 1, "e": 1}


def test_min_freq_cutoff():
    vocab = WordVocabulary.build(SENTENCES, min_freq=2)
    assert vocab.tokens[4:] == ["a", "c"] and vocab.min_freq == 2
    assert _id(vocab, "b") == UNK_INDEX


def test_encode_decode_labels_and_unseen_words():
    vocab = WordVocabulary.build(SENTENCES)
    ids = vocab.encode("a zebra c")
    assert ids == [_id(vocab, "a"), UNK_INDEX, _id(vocab, "c"), EOS_INDEX]
    assert vocab.decode([SOS_INDEX, *ids, PAD_INDEX, _id(vocab, "e")]) == "a <unk> c"
    assert vocab.labels(ids) == ["a", "<unk>", "c", "<eos>"]
    assert "zebra" not in vocab and "a" in vocab


def test_json_round_trip(tmp_path):
    vocab = WordVocabulary.build(SENTENCES, min_freq=1)
    vocab.save(tmp_path / "v.json")
    loaded = load_vocabulary(tmp_path / "v.json")
    assert loaded.tokens == vocab.tokens and loaded.counts == vocab.counts and loaded.min_freq == 1
    assert loaded.fingerprint() == vocab.fingerprint()
    data = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert data["specials"] == list(SPECIALS) and data["type"] == "word"

    (tmp_path / "bad.json").write_text('{"specials": ["<unk>"], "tokens": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not a valid vocabulary file"):
        load_vocabulary(tmp_path / "bad.json")


SPECIALS_JSON = '"specials": ["<pad>", "<sos>", "<eos>", "<unk>"]'


@pytest.mark.parametrize("text, reason", [
    ("[]", "expected a JSON object, found list"),
    ("null", "expected a JSON object, found NoneType"),
    ('{"type": "word", ' + SPECIALS_JSON + ', "tokens": "abc"}', "'tokens' is not a list of words"),
    ('{"type": "word", ' + SPECIALS_JSON + ', "tokens": [1, 2]}', "'tokens' is not a list of words"),
    ('{"type": "word", ' + SPECIALS_JSON + ', "tokens": ["a", ""]}', "'tokens' is not a list of words"),
    ('{"type": "sentencepiece", "model": ""}', "not a sentencepiece model"),
    ('{"type": "sentencepiece", "model": "bm90IGEgbW9kZWw="}', "not a sentencepiece model"),
    ('{"type": "sentencepiece", "model": "no base64!"}', "Only base64 data is allowed|Incorrect padding"),
    ('{"type": "sentencepiece", "model": 5}', "'model' is not base64 text"),
])
def test_a_vocabulary_file_of_the_wrong_shape_is_one_line(tmp_path, text, reason):
    """Valid JSON that is no vocabulary: a CorpusError naming the file, not an AttributeError or IndexError,
    and never a vocabulary of the characters of a string."""
    (tmp_path / "v.json").write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"v\.json: not a valid vocabulary file \(.*({reason})"):
        load_vocabulary(tmp_path / "v.json")


def test_build_vocabularies_uses_the_train_split_only(tmp_path):
    write_split(tmp_path / "train.tsv", [("je suis grand .", "i am tall ."), ("je suis petit .", "i am small .")])
    write_split(tmp_path / "test.tsv", [("il est triste .", "he is sad .")])
    source, target = build_vocabularies(tmp_path / "train.tsv", VocabSettings(min_freq=1))
    assert source.tokens[4:] == [".", "je", "suis", "grand", "petit"]
    assert target.counts == {"i": 2, "am": 2, ".": 2, "tall": 1, "small": 1}
    assert _id(source, "triste") == UNK_INDEX and _id(target, "sad") == UNK_INDEX

    source2, _ = build_vocabularies(tmp_path / "train.tsv", VocabSettings(min_freq=2))
    assert source2.tokens[4:] == [".", "je", "suis"]


def test_build_vocabularies_needs_pairs(tmp_path):
    write_split(tmp_path / "train.tsv", [])
    with pytest.raises(CorpusError, match="no pairs"):
        build_vocabularies(tmp_path / "train.tsv", VocabSettings())


# --------------------------------------------------------------------------- sentencepiece

def _tiny_split(path, normalization="unicode"):
    pairs = [(normalize(fr, normalization), normalize(en, normalization)) for en, fr in tiny_pairs()]
    write_split(path, pairs)
    return pairs


@pytest.fixture(scope="module")
def subword_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spm")
    pairs = _tiny_split(folder / "train.tsv")
    settings = VocabSettings(type="sentencepiece", size=60, model_type="unigram")
    write_vocabularies(folder / "train.tsv", folder / "source.json", folder / "target.json", settings)
    return folder, pairs, settings


def test_sentencepiece_encode_decode_gives_the_normalized_text_back(subword_files):
    folder, pairs, _ = subword_files
    source = load_vocabulary(folder / "source.json")
    assert isinstance(source, SentencePieceVocabulary) and len(source) <= 60
    for sentence, _ in pairs[:40]:
        ids = source.encode(sentence)
        assert ids[-1] == EOS_INDEX and UNK_INDEX not in ids
        assert source.decode(ids) == sentence
    labels = source.labels(source.encode("je suis très fatigué ."))
    assert labels[0].startswith("\u2581") and labels[-1] == "<eos>"
    assert source.decode([SOS_INDEX, *source.encode("il est grand ."), PAD_INDEX]) == "il est grand ."
    space = source.labels(range(len(source))).index("\u2581")  # a lone word start, as a cut output may end
    assert source.decode([*source.encode("il est")[:-1], space]) == "il est"


def test_sentencepiece_files_are_identical_across_runs(subword_files, tmp_path):
    folder, _, settings = subword_files
    write_vocabularies(folder / "train.tsv", tmp_path / "source.json", tmp_path / "target.json", settings)
    for name in ("source.json", "target.json", "source.model", "target.model"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name


def test_sentencepiece_is_trained_on_the_train_split_only(tmp_path):
    write_split(tmp_path / "train.tsv", [("aaa bbb .", "ccc ddd .")] * 20)
    for split in ("valid.tsv", "test.tsv"):  # beside it, as the prepare stage writes them
        write_split(tmp_path / split, [("zzz aaa .", "zzz ccc .")] * 20)
    source, target = build_vocabularies(tmp_path / "train.tsv", VocabSettings(type="sentencepiece", size=10))
    for vocabulary in (source, target):
        pieces = set(vocabulary.labels(range(len(vocabulary))))
        assert not {piece for piece in pieces if "z" in piece}  # nothing of the other splits' text
    assert vocabulary_from_dict(source.to_dict()).model == source.model


def test_a_sentencepiece_size_below_the_characters_is_one_line_naming_the_side(tmp_path):
    """The schema allows vocab.size 8; sentencepiece needs a piece per character seen (and ▁, and the 4
    specials), and said so in a 50-line traceback advising an option the pipeline does not have."""
    write_split(tmp_path / "train.tsv", [("ab ab .", "abcdefgh ijklmnop .")] * 20)
    assert len(SentencePieceVocabulary.train(["ab ab ."] * 20, 12, "unigram")) <= 12  # the source side fits
    with pytest.raises(CorpusError) as error:
        build_vocabularies(tmp_path / "train.tsv", VocabSettings(type="sentencepiece", size=12))
    assert str(error.value) == (
        f"{tmp_path / 'train.tsv'}: vocab.size=12 is too small for the target side: the sentences need at least 22 "
        f"pieces (every character and the 4 specials); set vocab.size to 22 or more")


def test_word_spans_group_pieces_into_words():
    labels = ["\u2581je", "\u2581tre", "s", "\u2581fat", "i", "gue", "\u2581.", "<eos>"]
    assert word_spans(labels) == [(0, 1), (1, 3), (3, 6), (6, 7), (7, 8)]
    assert [word_label(labels[a:b]) for a, b in word_spans(labels)] == ["je", "tres", "fatigue", ".", "<eos>"]
    assert word_spans(["je", "suis", "<eos>"]) == [(0, 1), (1, 2), (2, 3)]  # words: one each
    # a character sentencepiece never saw is <unk> inside its word (as the explorer's words view groups it)
    unknown = ["\u2581t", "u", "\u2581es", "\u2581", "<unk>", "g", "r", "a", "n", "d", "\u2581.", "<eos>"]
    assert [word_label(unknown[a:b]) for a, b in word_spans(unknown)] == ["tu", "es", "<unk>grand", ".", "<eos>"]
