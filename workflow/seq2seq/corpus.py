"""Raw sentence pairs -> normalized, filtered, deduplicated train/valid/test splits: the prepare stage.

Normalization ``ascii`` reproduces the PyTorch tutorial "Translation with a Sequence to Sequence
Network and Attention" (the version whose examples read ``vous regardez tout le temps la television .``):
NFD, drop combining marks, lowercase, strip, a space before ``.!?``, every other run of characters
except ``a-zA-Z.!?`` becomes one space. ``unicode`` keeps accented letters (NFC) and apostrophes
inside words.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Sequence

from .fileio import atomic_open, write_json
from .logs import InputError
from .schema import schema_default
from .settings import PrepareSettings

logger = logging.getLogger("seq2seq.corpus")

NORMALIZATIONS = ("ascii", "unicode")

# The tutorial's eng_prefixes as published in 2017: "she s" has no trailing space, so "she said ...",
# "she sings ..." pass too. This is the list behind the tutorial's (and our data README's) pair counts.
TUTORIAL_PREFIXES: tuple[str, ...] = (
    "i am ", "i m ",
    "he is", "he s ",
    "she is", "she s",
    "you are", "you re ",
    "we are", "we re ",
    "they are", "they re ",
)
# Later revisions of the tutorial wrote "she s " with the space.
TUTORIAL_PREFIXES_2023: tuple[str, ...] = tuple("she s " if p == "she s" else p for p in TUTORIAL_PREFIXES)
PREFIX_PRESETS = {"tutorial": TUTORIAL_PREFIXES, "tutorial2023": TUTORIAL_PREFIXES_2023}

SPLIT_HEADER = "source\ttarget"
_MALFORMED_LOGGED = 5
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'"})


class CorpusError(InputError, ValueError):
    """Bad corpus input; the message reads ``<file>:<line>: what is wrong``."""


# --------------------------------------------------------------------------- normalization

def normalize(text: str, mode: str = schema_default("prepare.normalization")) -> str:
    """Normalize one sentence; tokens of the result are separated by single spaces."""
    if mode == "ascii":
        return _ascii_normalize(text)[0]
    if mode == "unicode":
        s = unicodedata.normalize("NFC", text.lower().strip()).translate(_APOSTROPHES)
        s = re.sub(r"([.!?])", r" \1", s)
        s = _keep_letters(s)
    else:
        raise ValueError(f"unknown normalization {mode!r}; expected one of {list(NORMALIZATIONS)}")
    return " ".join(s.split())


_NOT_A_TO_Z_LETTER = re.compile(r"[^\W\d_a-z]")  # a word character that is no digit, no _ and no a-z


def _ascii_normalize(text: str) -> tuple[str, str]:
    """(the ``ascii`` normalization of ``text``, the letters it dropped): letters without an ASCII form once
    their accents are gone (œ, ß, ø, Cyrillic, CJK ...) become spaces, as in the tutorial."""
    # Same steps and order as the tutorial's unicodeToAscii(s.lower().strip()) + two regexes.
    s = "".join(c for c in unicodedata.normalize("NFD", text.lower().strip()) if unicodedata.category(c) != "Mn")
    dropped = "" if s.isascii() else "".join(_NOT_A_TO_Z_LETTER.findall(s))
    s = re.sub(r"([.!?])", r" \1", s)
    s = re.sub(r"[^a-zA-Z.!?]+", " ", s)
    return " ".join(s.split()), dropped


def _normalize_counting_losses(text: str, mode: str) -> tuple[str, str]:
    """(``normalize(text, mode)``, the letters it dropped: only ``ascii`` drops any)."""
    return _ascii_normalize(text) if mode == "ascii" else (normalize(text, mode), "")


def _keep_letters(s: str) -> str:
    """Letters (with their combining marks), ``.!?`` and in-word apostrophes stay; the rest -> space."""
    out = []
    for i, c in enumerate(s):
        category = unicodedata.category(c)
        if category[0] == "L" or c in ".!?" or (category[0] == "M" and out and out[-1] != " "):
            out.append(c)
        elif c == "'" and 0 < i < len(s) - 1 and s[i - 1].isalpha() and s[i + 1].isalpha():
            out.append(c)
        else:
            out.append(" ")
    return "".join(out)


# --------------------------------------------------------------------------- reading

@dataclass
class RawPairs:
    """Pairs read from a raw file (not normalized yet), with what was skipped."""

    pairs: list[tuple[str, str]]       # (source, target)
    read: int                          # non-blank lines
    malformed: int
    malformed_lines: list[int] = field(default_factory=list)  # first few line numbers
    lines: list[int] = field(default_factory=list)  # each pair's line number


def utf8_lines(path: str | os.PathLike[str] | BinaryIO, name: str | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line break) of a UTF-8 file, or of an open binary stream such as
    ``sys.stdin.buffer`` (``name`` labels it in messages). A line that is not UTF-8 raises ``CorpusError``
    naming the file, the line and the byte (a text-mode read would only name a buffer offset), whatever the
    locale."""
    if isinstance(path, (str, os.PathLike)):
        try:
            handle = open(path, "rb")
        except OSError as error:  # a stage run by hand on a missing file or a folder: one line, no traceback
            raise CorpusError(f"{os.fspath(path)}: cannot read it ({error.strerror or error})") from None
        with handle:
            yield from utf8_lines(handle, name or os.fspath(path))
        return
    for number, raw in enumerate(path, start=1):
        try:
            yield number, raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise CorpusError(f"{name}:{number}: not UTF-8 text (byte {error.start} of the line: "
                              f"{raw[error.start:error.start + 1]!r})") from None


def read_raw_pairs(
    path: str | os.PathLike[str],
    source_column: int = schema_default("corpora.*.source_column"),
    target_column: int = schema_default("corpora.*.target_column"),
    max_malformed_fraction: float = schema_default("prepare.max_malformed_fraction"),
    max_line_chars: int = schema_default("prepare.max_line_chars"),
) -> RawPairs:
    """Read a UTF-8 tab-separated file, taking 1-based columns ``source_column``/``target_column``.

    Extra columns are ignored and blank lines skipped. Lines without a tab, with too few columns, with an
    empty side or longer than ``max_line_chars`` characters are malformed: skipped and counted. Raises
    ``CorpusError`` for an empty file, a line that is not UTF-8, or more than ``max_malformed_fraction``
    malformed lines.
    """
    if source_column < 1 or target_column < 1 or source_column == target_column:
        raise ValueError(f"source_column/target_column must be distinct and >= 1, got {source_column}/{target_column}")
    needed = max(source_column, target_column)
    pairs: list[tuple[str, str]] = []
    lines: list[int] = []
    read = malformed = 0
    first_bad: list[tuple[int, str]] = []
    for number, line in utf8_lines(path):
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        read += 1
        columns = line.split("\t")
        problem = None
        if len(line) > max_line_chars:
            problem = f"{len(line)} characters, more than max_line_chars={max_line_chars}"
        elif len(columns) == 1:
            problem = "no tab"
        elif len(columns) < needed:
            problem = f"{len(columns)} columns, need {needed}"
        else:
            source = columns[source_column - 1].strip()
            target = columns[target_column - 1].strip()
            if not source or not target:
                problem = "empty " + ("source" if not source else "target")
            else:
                pairs.append((source, target))
                lines.append(number)
        if problem:
            malformed += 1
            if len(first_bad) < _MALFORMED_LOGGED:
                first_bad.append((number, problem))
    if read == 0:
        raise CorpusError(f"{path}:1: the file is empty")
    for number, problem in first_bad:
        logger.warning("%s:%d: malformed line skipped (%s)", path, number, problem)
    if malformed > max_malformed_fraction * read:
        number, problem = first_bad[0]
        raise CorpusError(
            f"{path}:{number}: {malformed} of {read} lines are malformed ({malformed / read:.1%}, "
            f"more than {max_malformed_fraction:.1%}); first: {problem}; "
            f"check the file and source_column/target_column"
        )
    logger.info("%s: read %d lines, %d pairs, %d malformed", path, read, len(pairs), malformed)
    return RawPairs(pairs=pairs, read=read, malformed=malformed, malformed_lines=[n for n, _ in first_bad],
                    lines=lines)


# --------------------------------------------------------------------------- filtering and splitting

def resolve_prefixes(target_prefixes: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"tutorial"`` -> the tutorial's English prefixes; None or empty -> None (no prefix filter)."""
    if target_prefixes is None:
        return None
    if isinstance(target_prefixes, str):
        if target_prefixes in PREFIX_PRESETS:
            return PREFIX_PRESETS[target_prefixes]
        if target_prefixes == "":
            return None
        raise ValueError(f"unknown target_prefixes preset {target_prefixes!r}; "
                         f"use one of {sorted(PREFIX_PRESETS)}, null or a list of prefixes")
    prefixes = tuple(target_prefixes)
    if not all(isinstance(p, str) and p for p in prefixes):
        raise ValueError(f"target_prefixes must be non-empty strings, got {list(prefixes)!r}")
    return prefixes or None


def normalize_prefixes(prefixes: tuple[str, ...] | None, mode: str) -> tuple[str, ...] | None:
    """Prefixes as the targets they are matched against are written: normalized by ``mode``, a trailing space
    kept (``"He's "`` -> ``"he s "`` under ascii). A prefix written as the raw corpus is ("He is ") matched no
    normalized target and was ignored without a word; the presets are normalized already."""
    if prefixes is None:
        return None
    normalized = tuple(normalize(p, mode) + (" " if p.endswith(" ") else "") for p in prefixes)
    empty = [p for p, n in zip(prefixes, normalized) if not n.strip()]
    if empty:
        raise ValueError(f"target_prefixes {empty!r}: nothing is left of them after {mode} normalization")
    return normalized


def keep_pair(source: str, target: str, max_words: int, prefixes: tuple[str, ...] | None) -> bool:
    """The tutorial's filterPair: both sides fewer than ``max_words`` words, target starts with a prefix.

    The tutorial's prefixes ("i m ", "you re ") assume apostrophes became spaces, so with ``unicode``
    normalization ("i'm ...") the target also matches with its apostrophes read as spaces.
    """
    if not (0 < len(source.split()) < max_words and 0 < len(target.split()) < max_words):
        return False
    return prefixes is None or target.startswith(prefixes) or target.replace("'", " ").startswith(prefixes)


def split_by_source(
    pairs: Sequence[tuple[str, str]], valid_fraction: float, test_fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Split pairs into (train, valid, test) keeping every source sentence in a single split.

    Groups (one per distinct source) are shuffled with ``random.Random(seed)`` from sorted order
    and dealt to test, then valid, until each holds its fraction of the pairs (at least one group
    when its fraction is positive); the rest is train. Deterministic for equal input and seed.
    """
    groups: dict[str, list[str]] = {}
    for source, target in pairs:
        groups.setdefault(source, []).append(target)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    total = len(pairs)
    wanted = [max(1, round(test_fraction * total)) if test_fraction > 0 else 0,
              max(1, round(valid_fraction * total)) if valid_fraction > 0 else 0]
    test: list[tuple[str, str]] = []
    valid: list[tuple[str, str]] = []
    train: list[tuple[str, str]] = []
    for key in keys:
        rows = [(key, target) for target in sorted(groups[key])]
        if len(test) < wanted[0]:
            test.extend(rows)
        elif len(valid) < wanted[1]:
            valid.extend(rows)
        else:
            train.extend(rows)
    return train, valid, test


# --------------------------------------------------------------------------- the prepare stage

def prepare_corpus(
    raw: str | os.PathLike[str],
    train: str | os.PathLike[str],
    valid: str | os.PathLike[str],
    test: str | os.PathLike[str],
    stats: str | os.PathLike[str],
    settings: PrepareSettings | None = None,
) -> dict:
    """The prepare stage: read, normalize, filter, deduplicate and split ``raw``; write the ``train``, ``valid``
    and ``test`` split TSVs and the ``stats`` JSON. Returns the statistics. Same input and settings -> identical
    bytes."""
    settings = settings or PrepareSettings()
    prefixes = normalize_prefixes(resolve_prefixes(settings.target_prefixes), settings.normalization)
    read = read_raw_pairs(raw, settings.source_column, settings.target_column, settings.max_malformed_fraction,
                          settings.max_line_chars)

    kept: list[tuple[str, str]] = []
    dropped = LettersDropped()
    for (raw_source, raw_target), line in zip(read.pairs, read.lines):
        (source, lost_source), (target, lost_target) = (_normalize_counting_losses(raw, settings.normalization)
                                                        for raw in (raw_source, raw_target))
        kept_pair = keep_pair(source, target, settings.max_words, prefixes)
        if kept_pair:
            kept.append((source, target))
        dropped.add(line, kept_pair, (raw_source, lost_source, source), (raw_target, lost_target, target))
    dropped.check(raw, len(read.pairs), len(kept))
    if not kept:
        raise CorpusError(
            f"{raw}: no pairs left after filtering {len(read.pairs)} pairs (max_words={settings.max_words}, "
            f"target_prefixes={list(prefixes) if prefixes else None}, columns source={settings.source_column} "
            f"target={settings.target_column}); loosen the filter or check the columns"
        )
    unique = list(dict.fromkeys(kept))
    splits = dict(zip(("train", "valid", "test"),
                      split_by_source(unique, settings.valid_fraction, settings.test_fraction, settings.seed)))
    if not splits["train"]:
        raise CorpusError(f"{raw}: only {len(unique)} distinct pairs, too few to leave any for training")

    train_targets = {target for _, target in splits["train"]}
    numbers = {
        "read": read.read,
        "malformed": read.malformed,
        "pairs": len(read.pairs),
        "filtered_out": len(read.pairs) - len(kept),
        "kept": len(kept),
        "duplicates_removed": len(kept) - len(unique),
        "unique": len(unique),
        **{name: len(rows) for name, rows in splits.items()},
        "sources": {name: len({s for s, _ in rows}) for name, rows in splits.items()},
        "test_targets_in_train": sum(target in train_targets for _, target in splits["test"]),
        "letters_dropped": dropped.sentences,
        "normalization": settings.normalization,
        "filter": {"max_words": settings.max_words, "target_prefixes": list(prefixes) if prefixes else None},
        "split": {"valid": settings.valid_fraction, "test": settings.test_fraction, "seed": settings.seed},
        "source_column": settings.source_column,
        "target_column": settings.target_column,
        "raw_sha256": _sha256(raw),
    }
    for path, name in ((train, "train"), (valid, "valid"), (test, "test")):
        write_split(path, splits[name])
    write_json(stats, numbers)
    logger.info("prepared %s: %s", raw, {k: numbers[k] for k in ("read", "malformed", "kept",
                "duplicates_removed", "train", "valid", "test", "test_targets_in_train")})
    return numbers


class LettersDropped:
    """What the ``ascii`` normalization dropped: per side, the kept sentences that lost letters (the first with its
    line), and the sentences read, kept or not, that lost every letter (a side in another script: such sentences
    become punctuation or nothing, and the filter may drop them)."""

    def __init__(self) -> None:
        self.sentences = {"source": 0, "target": 0}
        self.emptied = {"source": 0, "target": 0}
        self.first: dict[str, tuple[int, str, str]] = {}  # side -> (line, raw text, letters lost)
        self.first_emptied: dict[str, tuple[int, str]] = {}

    def add(self, line: int, kept: bool, *sides: tuple[str, str, str]) -> None:
        """``sides``: (raw text, letters lost, normalized text) of the source, then the target."""
        for name, (text, lost, normalized) in zip(("source", "target"), sides):
            if not lost:
                continue
            if kept:
                self.sentences[name] += 1
                self.first.setdefault(name, (line, text, lost))
            if not any("a" <= c <= "z" for c in normalized):
                self.emptied[name] += 1
                self.first_emptied.setdefault(name, (line, text))

    def check(self, raw: str | os.PathLike[str], read: int, kept: int) -> None:
        """Refuse a side that lost every letter in most of the ``read`` pairs; warn, naming the first line, where
        kept sentences lost letters at all."""
        for name in ("source", "target"):
            if read and self.emptied[name] > read / 2:
                line, text = self.first_emptied[name]
                raise CorpusError(
                    f"{raw}:{line}: prepare.normalization 'ascii' keeps the letters a-z only, and {self.emptied[name]}"
                    f" of {read} {name} sentences lost all of theirs (this one: {text[:40]!r}); set "
                    f"prepare.normalization: unicode")
            if self.sentences[name]:
                line, text, lost = self.first[name]
                logger.warning("%s:%d: prepare.normalization 'ascii' keeps the letters a-z only: %d of %d kept %s "
                               "sentences lost letters (this one: %r of %r); 'unicode' keeps them", raw, line,
                               self.sentences[name], kept, name, "".join(dict.fromkeys(lost)), text[:60])


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- split files

def write_split(path: str | os.PathLike[str], pairs: Sequence[tuple[str, str]]) -> None:
    """Write pairs as UTF-8 TSV with the header ``source\\ttarget``, atomically."""
    with atomic_open(path) as handle:
        handle.write(SPLIT_HEADER + "\n")
        for source, target in pairs:
            handle.write(f"{source}\t{target}\n")


def check_normalized(path: str | os.PathLike[str], pairs: Sequence[tuple[str, str]], mode: str) -> None:
    """CorpusError naming the first line of the split ``path`` (its ``pairs``, as :func:`read_split` returns them)
    whose source the normalization ``mode`` would change: a model trained on it records ``mode`` and normalizes new
    input that way (seq2seq-translate), differently from its training data, and translates it worse, silently.
    Splits the ascii normalization wrote pass as unicode-normalized too (it changes none of their text): for
    those a warning, since a unicode model would keep the accents its training data never had."""
    for number, (source, _) in enumerate(pairs, start=2):  # line 1 is the header
        normalized = normalize(source, mode)
        if normalized != source:
            raise CorpusError(f"{path}:{number}: the source {source!r} is not {mode}-normalized ({mode} gives "
                              f"{normalized!r}): train with the normalization the prepare stage used (its "
                              f"stats.json says which; --normalization by hand)")
    if mode != "ascii" and pairs and all(source.isascii() and target.isascii() for source, target in pairs):
        logger.warning("%s: every sentence is ascii-normalized (no accent, no apostrophe), but the model will "
                       "record %s normalization and keep the accents of new input: if the prepare stage used "
                       "ascii (its stats.json says which), train with --normalization ascii", path, mode)


def read_split(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read a split TSV written by :func:`write_split` -> list of (source, target)."""
    pairs: list[tuple[str, str]] = []
    header = None
    for number, line in utf8_lines(path):
        if number == 1:
            header = line
            if header != SPLIT_HEADER:
                raise CorpusError(f"{path}:1: expected the header {SPLIT_HEADER!r}, found {header!r}")
            continue
        columns = line.split("\t")
        if len(columns) != 2 or not columns[0].strip() or not columns[1].strip():
            raise CorpusError(f"{path}:{number}: expected 'source<TAB>target', found {line!r}")
        pairs.append((columns[0], columns[1]))
    if header is None:
        raise CorpusError(f"{path}:1: expected the header {SPLIT_HEADER!r}, found an empty file")
    return pairs


__all__ = [
    "CorpusError", "NORMALIZATIONS", "RawPairs", "TUTORIAL_PREFIXES", "TUTORIAL_PREFIXES_2023",
    "keep_pair", "normalize", "prepare_corpus", "read_raw_pairs",
    "read_split", "resolve_prefixes", "split_by_source", "utf8_lines", "write_split",
]
