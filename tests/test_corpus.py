"""seq2seq.corpus: normalization, reading raw pairs, filtering, leak-free splits, the prepare stage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from seq2seq.corpus import (
    TUTORIAL_PREFIXES,
    CorpusError,
    keep_pair,
    normalize,
    prepare_corpus,
    read_raw_pairs,
    read_split,
    resolve_prefixes,
    split_by_source,
    write_split,
)
from seq2seq.settings import PrepareSettings


# ----------------------------------------------------------------- normalization

@pytest.mark.parametrize(
    ("raw", "ascii_form", "unicode_form"),
    [
        # examples printed by the tutorial
        ("Vous regardez tout le temps la télévision.", "vous regardez tout le temps la television .",
         "vous regardez tout le temps la télévision ."),
        ("You're always watching TV.", "you re always watching tv .", "you're always watching tv ."),
        ("I'm OK.", "i m ok .", "i'm ok ."),
        ("Je suis très content de vous voir.", "je suis tres content de vous voir .",
         "je suis très content de vous voir ."),
        ("Run!", "run !", "run !"),
        ("Cours\u202f!", "cours !", "cours !"),
        ("J'ai été", "j ai ete", "j'ai été"),
        ("  Qu’est-ce que c’est ? ", "qu est ce que c est ?", "qu'est ce que c'est ?"),
        ("Wait...", "wait . . .", "wait . . ."),
        ('He said "no" (twice), 2 times.', "he said no twice times .", "he said no twice times ."),
        ("'Quoted'", "quoted", "quoted"),
        ("Ça coûte 5€", "ca coute", "ça coûte"),
    ],
)
def test_normalize_examples(raw, ascii_form, unicode_form):
    assert normalize(raw, "ascii") == ascii_form
    assert normalize(raw, "unicode") == unicode_form


def test_unicode_mode_is_nfc_and_ascii_mode_is_ascii():
    decomposed = "te\u0301le\u0301"  # e + combining acute
    assert normalize(decomposed, "unicode") == "télé" and len(normalize(decomposed, "unicode")) == 4
    assert normalize("Grüße, Straße!", "ascii").isascii()


def test_normalize_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown normalization 'latin'"):
        normalize("x", "latin")


# ----------------------------------------------------------------- filtering

def test_tutorial_prefixes_are_the_tutorials():
    assert resolve_prefixes("tutorial") == TUTORIAL_PREFIXES
    assert TUTORIAL_PREFIXES[:4] == ("i am ", "i m ", "he is", "he s ")
    assert "she s" in TUTORIAL_PREFIXES and len(TUTORIAL_PREFIXES) == 12
    assert resolve_prefixes(None) is None and resolve_prefixes([]) is None
    assert resolve_prefixes(["we "]) == ("we ",)
    with pytest.raises(ValueError, match="unknown target_prefixes preset"):
        resolve_prefixes("tutorail")


def test_filter_by_length_and_prefix():
    prefixes = resolve_prefixes("tutorial")
    nine = "i am " + " ".join(["x"] * 7)  # 9 words: kept (fewer than 10)
    ten = nine + " y"
    assert keep_pair("je suis grand .", "i am tall .", 10, prefixes)
    assert keep_pair("a", nine, 10, prefixes)
    assert not keep_pair("a", ten, 10, prefixes)
    assert not keep_pair(" ".join(["x"] * 10), "i am tall .", 10, prefixes)
    assert not keep_pair("c est grand .", "it is big .", 10, prefixes)
    assert keep_pair("elle a dit", "she said .", 10, prefixes)  # 2017's "she s" has no trailing space
    assert not keep_pair("elle a dit", "she said .", 10, resolve_prefixes("tutorial2023"))
    assert keep_pair("c est grand .", "it is big .", 10, None)  # prefix filter switched off
    assert keep_pair("c est grand .", "it is big .", 10, ("it ",))
    assert not keep_pair("", "i am .", 10, None)  # nothing left after normalization
    assert keep_pair("je suis grand .", "i'm tall .", 10, prefixes)  # unicode mode keeps apostrophes
    assert keep_pair("il est grand .", "he's tall .", 10, prefixes)
    assert keep_pair("je suis grand .", "i'm tall .", 10, ("i'm ",))


# ----------------------------------------------------------------- reading raw files

def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_two_and_three_columns(tmp_path):
    raw = write(tmp_path / "r.txt", "Go.\tVa !\nI am tall.\tJe suis grand.\tCC-BY 2.0 #1\n\n")
    result = read_raw_pairs(raw, source_column=2, target_column=1)
    assert result.pairs == [("Va !", "Go."), ("Je suis grand.", "I am tall.")]
    assert (result.read, result.malformed) == (2, 0)
    assert read_raw_pairs(raw, 1, 2).pairs[0] == ("Go.", "Va !")


def test_malformed_lines_are_counted_and_logged(tmp_path, caplog):
    good = [f"I am {i}.\tJe suis {i}." for i in range(38)]
    lines = good[:5] + ["no tab here"] + good[5:] + ["\t lonely side"]
    raw = write(tmp_path / "r.txt", "\r\n".join(lines) + "\r\n")
    result = read_raw_pairs(raw, max_malformed_fraction=0.06)
    assert (result.read, result.malformed, len(result.pairs)) == (40, 2, 38)
    assert result.malformed_lines == [6, 40]
    assert "r.txt:6: malformed line skipped (no tab)" in caplog.text


def test_a_line_over_the_character_limit_is_malformed(tmp_path, caplog):
    """One garbage line (a 100,000-character 'word') is skipped and counted, so it cannot land in a split."""
    lines = [f"I am {i}.\tJe suis {i}." for i in range(40)]
    lines[7] = "I am " + "a" * 100_000 + ".\tJe suis."
    raw = write(tmp_path / "r.txt", "\n".join(lines) + "\n")
    result = read_raw_pairs(raw, max_line_chars=1000)
    assert (result.read, result.malformed, len(result.pairs)) == (40, 1, 39)
    assert all(len(source) < 100 for source, _ in result.pairs)
    assert "r.txt:8: malformed line skipped (100015 characters, more than max_line_chars=1000)" in caplog.text


def test_too_many_malformed_lines_is_an_error(tmp_path):
    lines = [f"I am {i}.\tJe suis {i}." for i in range(18)] + ["bad", "worse"]
    raw = write(tmp_path / "r.txt", "\n".join(lines))
    with pytest.raises(CorpusError, match=r"r\.txt:19: 2 of 20 lines are malformed \(10\.0%, more than 5\.0%\)"):
        read_raw_pairs(raw)
    with pytest.raises(CorpusError, match=r"s\.txt:1: .*need 3"):
        read_raw_pairs(write(tmp_path / "s.txt", "a\tb\n"), source_column=3, target_column=1)


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match=r"e\.txt:1: the file is empty"):
        read_raw_pairs(write(tmp_path / "e.txt", "\n\n"))


@pytest.mark.parametrize("read", [read_raw_pairs, read_split])
def test_a_missing_file_or_a_folder_is_one_line(tmp_path, read):
    """What a stage run by hand (python -m seq2seq prepare --raw ...) meets: a CorpusError, not an OSError."""
    with pytest.raises(CorpusError, match=r"^\S*nope\.txt: cannot read it \(No such file or directory\)$"):
        read(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match=r"^\S*: cannot read it \(Is a directory\)$"):
        read(tmp_path)


def test_non_utf8_line_is_named(tmp_path):
    raw = tmp_path / "latin1.txt"
    raw.write_bytes("Go.\tVa !\nHe is tired.\tIl est fatigué.\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt:2: not UTF-8"):
        read_raw_pairs(raw)


def test_utf8_bom_is_ignored(tmp_path):
    raw = tmp_path / "bom.txt"
    raw.write_bytes("\ufeffGo.\tVa !\n".encode("utf-8"))
    assert read_raw_pairs(raw).pairs == [("Va !", "Go.")]


# ----------------------------------------------------------------- splitting

def make_pairs(n_sources: int = 60, targets_per_source: int = 3) -> list[tuple[str, str]]:
    return [(f"src {i}", f"tgt {i} {j}") for i in range(n_sources) for j in range(targets_per_source)]


def test_split_has_no_source_overlap_and_is_deterministic():
    pairs = make_pairs()
    train, valid, test = split_by_source(pairs, 0.1, 0.2, seed=7)
    assert sorted(train + valid + test) == sorted(pairs)
    sources = [{s for s, _ in split} for split in (train, valid, test)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert len(test) == 36 and len(valid) == 18  # whole groups of 3 reach the wanted counts exactly
    assert split_by_source(list(reversed(pairs)), 0.1, 0.2, seed=7) == (train, valid, test)
    assert split_by_source(pairs, 0.1, 0.2, seed=8) != (train, valid, test)


def test_split_gives_every_requested_split_a_group_on_tiny_data():
    train, valid, test = split_by_source(make_pairs(4, 1), 0.1, 0.1, seed=1)
    assert (len(train), len(valid), len(test)) == (2, 1, 1)
    train, valid, test = split_by_source(make_pairs(4, 1), 0.0, 0.0, seed=1)
    assert (len(train), len(valid), len(test)) == (4, 0, 0)


# ----------------------------------------------------------------- the prepare stage

def raw_corpus(path: Path) -> Path:
    lines = []
    for i, (adjective, adjectif) in enumerate([("tall", "grand"), ("small", "petit"), ("happy", "content"),
                                               ("tired", "fatigué"), ("ready", "prêt"), ("sad", "triste")]):
        for subject, sujet in [("I am", "Je suis"), ("He's", "Il est"), ("We are", "Nous sommes")]:
            lines.append(f"{subject} {adjective}.\t{sujet} {adjectif}.\tCC-BY #{i}")
        lines.append(f"I'm {adjective}.\tJe suis {adjectif}.")   # same source as "I am ..."
    lines += [
        "I am tall.\tJe suis grand.",               # exact duplicate
        "It is cold.\tIl fait froid.",             # no tutorial prefix
        "I am " + "very " * 8 + "tall.\tJe suis très grand.",  # too long
    ]
    return write(path, "\n".join(lines) + "\n")


def run_prepare(tmp_path: Path, raw: Path, out: str, **settings) -> tuple[dict, Path]:
    folder = tmp_path / out
    stats = prepare_corpus(raw, folder / "train.tsv", folder / "valid.tsv", folder / "test.tsv",
                           folder / "stats.json", PrepareSettings(**settings))
    return stats, folder


def test_prepare_counts_splits_and_stats(tmp_path):
    raw = raw_corpus(tmp_path / "raw.txt")
    stats, folder = run_prepare(tmp_path, raw, "out", valid_fraction=0.2, test_fraction=0.2, seed=3)
    assert stats["read"] == 27 and stats["malformed"] == 0
    assert stats["filtered_out"] == 2 and stats["kept"] == 25 and stats["duplicates_removed"] == 1
    assert stats["train"] + stats["valid"] + stats["test"] == 24
    assert stats["filter"] == {"max_words": 10, "target_prefixes": list(TUTORIAL_PREFIXES)}
    assert stats["split"] == {"valid": 0.2, "test": 0.2, "seed": 3}
    assert (stats["normalization"], stats["source_column"], stats["target_column"]) == ("ascii", 2, 1)
    assert json.loads((folder / "stats.json").read_text(encoding="utf-8")) == stats

    splits = {name: read_split(folder / f"{name}.tsv") for name in ("train", "valid", "test")}
    assert [len(splits[n]) for n in ("train", "valid", "test")] == [stats[n] for n in ("train", "valid", "test")]
    assert (folder / "test.tsv").read_text(encoding="utf-8").startswith("source\ttarget\n")
    everything = [pair for rows in splits.values() for pair in rows]
    assert ("je suis grand .", "i am tall .") in everything and ("je suis grand .", "i m tall .") in everything
    assert ("il est grand .", "he s tall .") in everything
    train_sources = {s for s, _ in splits["train"]}
    assert not train_sources & {s for s, _ in splits["test"]}
    train_targets = {t for _, t in splits["train"]}
    assert stats["test_targets_in_train"] == sum(t in train_targets for _, t in splits["test"])


def test_prepare_is_byte_identical_on_rerun(tmp_path):
    raw = raw_corpus(tmp_path / "raw.txt")
    digests = []
    for out in ("a", "b"):
        _, folder = run_prepare(tmp_path, raw, out)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())})
    assert digests[0] == digests[1] and len(digests[0]) == 4


def test_prepare_unicode_mode_and_no_prefix_filter(tmp_path):
    raw = raw_corpus(tmp_path / "raw.txt")
    stats, folder = run_prepare(tmp_path, raw, "u", normalization="unicode", target_prefixes=None)
    pairs = [p for n in ("train", "valid", "test") for p in read_split(folder / f"{n}.tsv")]
    assert ("je suis fatigué .", "i'm tired .") in pairs and ("il fait froid .", "it is cold .") in pairs
    assert stats["filter"]["target_prefixes"] is None and stats["filtered_out"] == 1


def test_ascii_mode_counts_and_names_the_letters_it_drops(tmp_path, caplog):
    """œ, ß, ø have no a-z form once accents are gone: the tutorial's normalization turns them into spaces (29 kept
    French sentences of the default lose an œ); the stage keeps doing so, and says so, naming the first line."""
    words = [("tall", "grand"), ("small", "petit"), ("happy", "content"), ("sad", "triste")]
    lines = [f"I am {en}.\tJe suis {fr}." for en, fr in words] + ["I am a heart.\tJe suis un cœur.",
                                                                 "I am a sister.\tJe suis une sœur."]
    raw = write(tmp_path / "raw.txt", "\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        stats, folder = run_prepare(tmp_path, raw, "a", target_prefixes=None)
    assert stats["letters_dropped"] == {"source": 2, "target": 0}
    pairs = [pair for name in ("train", "valid", "test") for pair in read_split(folder / f"{name}.tsv")]
    assert ("je suis un c ur .", "i am a heart .") in pairs  # as the tutorial has it
    warning = f"{raw}:5: prepare.normalization 'ascii' keeps the letters a-z only: 2 of 6 kept source sentences " \
              f"lost letters (this one: 'œ' of 'Je suis un cœur.'); 'unicode' keeps them"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [warning]
    stats, _ = run_prepare(tmp_path, raw, "u", normalization="unicode", target_prefixes=None)
    assert stats["letters_dropped"] == {"source": 0, "target": 0}


def test_ascii_mode_refuses_a_side_in_another_script(tmp_path):
    """A Russian side became '.' and '!' in every pair and the stage 'succeeded' (or blamed the split); without
    punctuation its sentences become empty and are filtered out, and the refusal still names the script."""
    lines = [f"I am here {i}.\tЯ здесь {'номер' * (i % 5 + 1)}{'.' if i % 2 else ''}" for i in range(40)]
    lines.append("I am tall.\tJe suis grand.")
    raw = write(tmp_path / "raw.txt", "\n".join(lines) + "\n")
    with pytest.raises(CorpusError) as error:
        run_prepare(tmp_path, raw, "r", target_prefixes=None)
    assert str(error.value).startswith(
        f"{raw}:1: prepare.normalization 'ascii' keeps the letters a-z only, and 40 of 41 source sentences lost all "
        f"of theirs (this one: 'Я здесь номер'); set prepare.normalization: unicode")
    assert not (tmp_path / "r").exists()
    stats, _ = run_prepare(tmp_path, raw, "u", normalization="unicode", target_prefixes=None)
    assert stats["kept"] == 41


def test_prepare_three_column_file_picks_configured_columns(tmp_path):
    words = ["tall", "small", "happy", "sad", "rich", "ready"]
    raw = write(tmp_path / "raw.txt", "".join(f"#{i}\tI am {w}.\tJe suis {w}.\n" for i, w in enumerate(words)))
    stats, folder = run_prepare(tmp_path, raw, "o", source_column=3, target_column=2)
    pairs = [p for n in ("train", "valid", "test") for p in read_split(folder / f"{n}.tsv")]
    assert sorted(pairs) == sorted((f"je suis {w} .", f"i am {w} .") for w in words)
    assert (stats["source_column"], stats["target_column"], stats["kept"]) == (3, 2, 6)


def test_prepare_with_nothing_left_after_filter_is_an_error(tmp_path):
    raw = write(tmp_path / "raw.txt", "It is cold.\tIl fait froid.\nGo.\tVa !\n")
    with pytest.raises(CorpusError, match=r"raw\.txt: no pairs left after filtering 2 pairs"):
        run_prepare(tmp_path, raw, "o")
    assert not (tmp_path / "o" / "train.tsv").exists()


def test_prepare_settings_reject_unknown_keys_and_bad_values_naming_the_key():
    assert PrepareSettings.from_dict({"max_words": 8}).max_words == 8
    with pytest.raises(ValueError, match=r"config: prepare: unknown keys \['max_word'\]"):
        PrepareSettings.from_dict({"max_word": 8})
    with pytest.raises(ValueError, match=r"config: prepare.split: valid \(0.5\) and test \(0.5\) must sum to less"):
        PrepareSettings(valid_fraction=0.5, test_fraction=0.5)
    for empty, key in (({"valid_fraction": 0}, "valid"), ({"test_fraction": 0}, "test")):
        with pytest.raises(ValueError, match=rf"config: prepare.split.{key}: 0 is less than or equal to the minimum"):
            PrepareSettings(**empty)
    with pytest.raises(ValueError, match="config: prepare.normalization: 'latin' is not one of"):
        PrepareSettings(normalization="latin")


# ----------------------------------------------------------------- split files

def test_split_file_round_trip_and_errors(tmp_path):
    pairs = [("je suis grand .", "i am tall ."), ("j'ai été", "i've been")]
    write_split(tmp_path / "s.tsv", pairs)
    assert read_split(tmp_path / "s.tsv") == pairs
    write(tmp_path / "h.tsv", "src\ttgt\na\tb\n")
    with pytest.raises(CorpusError, match=r"h\.tsv:1: expected the header"):
        read_split(tmp_path / "h.tsv")
    write(tmp_path / "b.tsv", "source\ttarget\na\tb\nonly one column\n")
    with pytest.raises(CorpusError, match=r"b\.tsv:3: expected 'source<TAB>target'"):
        read_split(tmp_path / "b.tsv")
    (tmp_path / "e.tsv").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"e\.tsv:1: expected the header .* empty file"):
        read_split(tmp_path / "e.tsv")


def test_split_file_not_utf8_names_the_line(tmp_path):
    lines = [b"source\ttarget"] + [b"je suis grand .\ti am tall ."] * 3000 + [b"t\xe9l\xe9\ttv"]
    (tmp_path / "latin.tsv").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(CorpusError, match=r"latin\.tsv:3002: not UTF-8 text \(byte 1 of the line"):
        read_split(tmp_path / "latin.tsv")


def test_a_prefix_list_is_normalized_as_the_targets_are(tmp_path):
    """Targets are lower case and, under ascii, without apostrophes: "He is " or "he's " matched none of them and
    kept only the other prefixes' pairs, without a word (review)."""
    from seq2seq.corpus import normalize_prefixes

    subjects = [("I am", "Je suis"), ("He is", "Il est"), ("He's", "Il est bien"), ("She is", "Elle est")]
    adjectives = [("tall", "grand"), ("small", "petit"), ("sad", "triste"), ("rich", "riche"), ("ill", "malade"),
                  ("late", "en retard")]
    lines = [f"{en} {a}.\t{fr} {b}." for en, fr in subjects for a, b in adjectives]
    raw = write(tmp_path / "raw.txt", "\n".join(lines) + "\n")
    for normalization, prefixes, kept in (("ascii", ["I am ", "He is "], 12), ("ascii", ["i am ", "he's "], 12),
                                          ("unicode", ["I am ", "He's "], 12), ("ascii", ["HE "], 12)):
        stats, _ = run_prepare(tmp_path, raw, f"{normalization}-{'-'.join(prefixes)}", normalization=normalization,
                               target_prefixes=prefixes)
        assert stats["unique"] == kept, (normalization, prefixes, stats)
    for preset in ("tutorial", "tutorial2023"):
        for mode in ("ascii", "unicode"):
            assert normalize_prefixes(resolve_prefixes(preset), mode) == resolve_prefixes(preset)
    with pytest.raises(ValueError, match="nothing is left of them after ascii normalization"):
        normalize_prefixes(("¿¿ ",), "ascii")


def test_a_unicode_training_run_on_ascii_splits_is_warned_about(tmp_path, caplog):
    """Every ascii-normalized sentence is also unicode-normalized (unchanged by it): the check passed, and the
    model recorded unicode, keeping the accents of new input its training data never had (review)."""
    from seq2seq.corpus import check_normalized

    pairs = [("je suis fatigue .", "i m tired ."), ("il a froid .", "he is cold .")]
    with caplog.at_level("WARNING"):
        check_normalized("train.tsv", pairs, "ascii")
        assert not caplog.records
        check_normalized("train.tsv", pairs, "unicode")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["train.tsv"]
    assert "train with --normalization ascii" in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level("WARNING"):
        check_normalized("train.tsv", [("je suis fatigué .", "i'm tired .")], "unicode")
    assert not caplog.records
