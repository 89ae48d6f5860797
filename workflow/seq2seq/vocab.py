"""Vocabularies: text to ids and back, for words and for sentencepiece subwords, behind one interface.

Both kinds share the special ids ``<pad>=0 <sos>=1 <eos>=2 <unk>=3`` and the same methods, so nothing downstream
(batching, training, search, evaluation, figures, translation) asks which kind it has:

- ``encode(text) -> ids`` of a normalized sentence, ending with ``<eos>``;
- ``decode(ids) -> text``: plain text up to the first ``<eos>`` (what BLEU is computed on);
- ``labels(ids) -> tokens``: one label per id, ``"<eos>"`` for ``<eos>`` (figure ticks); subword pieces keep
  sentencepiece's word-start mark ``▁`` (U+2581), see :func:`word_spans`.

The vocab stage (:func:`write_vocabularies`) builds both sides from the training split only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece

from .corpus import CorpusError, read_split
from .fileio import atomic_path, write_json
from .settings import VocabSettings
from .tokens import EOS, EOS_INDEX, PAD, PAD_INDEX, SOS, SOS_INDEX, SPECIALS, UNK, UNK_INDEX, WORD_START

LOG = logging.getLogger(__name__)


class Vocabulary:
    """What every vocabulary offers; see the module docstring."""

    kind: str

    def __len__(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def labels(self, ids: Iterable[int]) -> list[str]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """sha256 of the plain-data form: identifies the vocabulary a checkpoint was trained with."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()

    def save(self, path: str | os.PathLike[str]) -> None:
        write_json(path, self.to_dict())


def _until_eos(ids: Iterable[int]) -> list[int]:
    """The ids before the first ``<eos>``, without ``<pad>`` and ``<sos>``."""
    kept = []
    for i in map(int, ids):
        if i == EOS_INDEX:
            break
        if i not in (PAD_INDEX, SOS_INDEX):
            kept.append(i)
    return kept


@dataclass
class WordVocabulary(Vocabulary):
    """Whitespace-separated words; ``tokens[0:4]`` are the specials, the rest ordered by training frequency
    (descending), then alphabetically. ``counts`` holds the training-set frequency of each regular token."""

    tokens: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    min_freq: int = 1
    kind = "word"

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with the specials {list(SPECIALS)}")
        self._index = {token: i for i, token in enumerate(self.tokens)}
        if len(self._index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def build(cls, sentences: Iterable[str], min_freq: int = 1) -> "WordVocabulary":
        """From normalized sentences (words separated by spaces)."""
        counter: Counter[str] = Counter()
        for sentence in sentences:
            counter.update(sentence.split())
        for special in SPECIALS:
            counter.pop(special, None)
        kept = sorted((t for t, c in counter.items() if c >= min_freq), key=lambda t: (-counter[t], t))
        return cls(tokens=[*SPECIALS, *kept], counts={t: counter[t] for t in kept}, min_freq=min_freq)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def encode(self, text: str) -> list[int]:
        return [*(self._index.get(word, UNK_INDEX) for word in text.split()), EOS_INDEX]

    def labels(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] if 0 <= i < len(self.tokens) else UNK for i in map(int, ids)]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.labels(_until_eos(ids)))

    def to_dict(self) -> dict:
        """Plain-data form (also what checkpoints embed)."""
        return {"type": self.kind, "specials": list(SPECIALS), "tokens": self.tokens[len(SPECIALS):],
                "counts": self.counts, "min_freq": self.min_freq}

    @classmethod
    def from_dict(cls, data: dict) -> "WordVocabulary":
        if list(data.get("specials", [])) != list(SPECIALS):
            raise ValueError(f"unexpected specials {data.get('specials')!r}, expected {list(SPECIALS)}")
        tokens = data["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(token, str) and token for token in tokens):
            raise ValueError("'tokens' is not a list of words")
        return cls(tokens=[*SPECIALS, *tokens], counts=dict(data.get("counts", {})),
                   min_freq=int(data.get("min_freq", 1)))


class VocabularySizeError(ValueError):
    """A sentencepiece size below the pieces the sentences' characters need (``needed``, specials included)."""

    def __init__(self, needed: int) -> None:
        super().__init__(f"the sentences need at least {needed} pieces (every character and the 4 specials)")
        self.needed = needed


class SentencePieceVocabulary(Vocabulary):
    """Subword pieces of a sentencepiece model (unigram or BPE) whose ids 0-3 are our specials. The serialized
    model travels inside the plain-data form, so checkpoints stay self-contained."""

    kind = "sentencepiece"

    def __init__(self, model: bytes) -> None:
        self.model = bytes(model)
        try:
            self._processor = sentencepiece.SentencePieceProcessor(model_proto=self.model)
            found = tuple(self._processor.id_to_piece(i) for i in range(len(SPECIALS)))
        except (RuntimeError, IndexError) as error:  # not a model, or one with fewer pieces than the specials
            raise ValueError(f"not a sentencepiece model ({error})") from None
        if found != SPECIALS:
            raise ValueError(f"sentencepiece model with specials {list(found)}, expected {list(SPECIALS)}")

    @classmethod
    def train(cls, sentences: Sequence[str], size: int, model_type: str) -> "SentencePieceVocabulary":
        """Train on normalized sentences. Deterministic: same sentences and settings, same model bytes (one
        trainer thread: the result depends on the thread count)."""
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences), model_writer=model, vocab_size=size, model_type=model_type,
                pad_id=PAD_INDEX, bos_id=SOS_INDEX, eos_id=EOS_INDEX, unk_id=UNK_INDEX, pad_piece=PAD,
                bos_piece=SOS, eos_piece=EOS, unk_piece=UNK,
                normalization_rule_name="identity",  # the prepare stage normalized
                character_coverage=1.0, input_sentence_size=0, shuffle_input_sentence=False, num_threads=1,
                hard_vocab_limit=False, minloglevel=2)
        except RuntimeError as error:
            # every character seen is a piece (character_coverage 1.0): a smaller size cannot hold them
            needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(error))
            if needed is None:
                raise
            raise VocabularySizeError(int(needed.group(1))) from None
        return cls(model.getvalue())

    def __len__(self) -> int:
        return self._processor.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return [*self._processor.encode(text), EOS_INDEX]

    def labels(self, ids: Iterable[int]) -> list[str]:
        return [self._processor.id_to_piece(i) if 0 <= i < len(self) else UNK for i in map(int, ids)]

    def decode(self, ids: Iterable[int]) -> str:
        # strip: an output cut at max_length may end in a lone "▁" piece, which decodes to a trailing space
        return self._processor.decode(_until_eos(ids)).strip()

    def to_dict(self) -> dict:
        return {"type": self.kind, "specials": list(SPECIALS), "size": len(self),
                "model": base64.b64encode(self.model).decode("ascii")}

    @classmethod
    def from_dict(cls, data: dict) -> "SentencePieceVocabulary":
        if not isinstance(data["model"], str):
            raise ValueError("'model' is not base64 text")
        return cls(base64.b64decode(data["model"], validate=True))


VOCABULARY_TYPES = {"word": WordVocabulary, "sentencepiece": SentencePieceVocabulary}


def vocabulary_from_dict(data: dict) -> Vocabulary:
    """The vocabulary a :meth:`Vocabulary.to_dict` form describes (``type`` absent: a word vocabulary)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    kind = data.get("type", "word")
    if kind not in VOCABULARY_TYPES:
        raise ValueError(f"unknown vocabulary type {kind!r}; expected one of {sorted(VOCABULARY_TYPES)}")
    return VOCABULARY_TYPES[kind].from_dict(data)


def load_vocabulary(path: str | os.PathLike[str]) -> Vocabulary:
    try:
        with open(path, encoding="utf-8") as handle:
            return vocabulary_from_dict(json.load(handle))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CorpusError(f"{path}: not a valid vocabulary file ({error})") from None


def word_spans(labels: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) of each word in a sequence of labels: a subword piece starting with ``▁`` begins a new word,
    and ``<eos>``, ``<sos>`` and ``<pad>`` are words of their own; ``<unk>`` (a character sentencepiece never saw)
    stays inside its word, as the explorer groups pieces (``▁`` ``<unk>`` ``g`` ``r`` -> ``<unk>gr``). Word-level
    labels are one word each."""
    if not any(label.startswith(WORD_START) for label in labels):  # words already
        return [(i, i + 1) for i in range(len(labels))]
    alone = set(SPECIALS) - {UNK}
    spans: list[tuple[int, int]] = []
    for i, label in enumerate(labels):
        starts = not spans or label.startswith(WORD_START) or label in alone or labels[i - 1] in alone
        if starts:
            spans.append((i, i + 1))
        else:
            spans[-1] = (spans[-1][0], i + 1)
    return spans


def word_label(pieces: Sequence[str]) -> str:
    """The word that one word's pieces spell: ``▁tre`` ``s`` -> ``tres``."""
    return "".join(pieces).replace(WORD_START, " ").strip() or "".join(pieces)


def build_vocabularies(train_path: str | os.PathLike[str],
                       settings: VocabSettings) -> tuple[Vocabulary, Vocabulary]:
    """Source and target vocabularies from the train split only."""
    pairs = read_split(train_path)
    if not pairs:
        raise CorpusError(f"{train_path}: the train split has no pairs")
    sides = ([s for s, _ in pairs], [t for _, t in pairs])
    if settings.type == "sentencepiece":
        trained = []
        for name, side in zip(("source", "target"), sides):
            try:
                trained.append(SentencePieceVocabulary.train(side, settings.size, settings.model_type))
            except VocabularySizeError as error:
                raise CorpusError(f"{train_path}: vocab.size={settings.size} is too small for the {name} side: "
                                  f"{error}; set vocab.size to {error.needed} or more") from None
        vocabularies = tuple(trained)
    else:
        vocabularies = tuple(WordVocabulary.build(side, settings.min_freq) for side in sides)
    LOG.info("%s: %d pairs -> %s vocabularies of %d (source) and %d (target)", train_path, len(pairs),
             settings.type, len(vocabularies[0]), len(vocabularies[1]))
    return vocabularies  # type: ignore[return-value]


def write_vocabularies(train: str | os.PathLike[str], source: str | os.PathLike[str],
                       target: str | os.PathLike[str], settings: VocabSettings) -> None:
    """The vocab stage: both vocabularies as JSON (and, for sentencepiece, each model as ``<name>.model``
    beside its JSON, for sentencepiece's own tools)."""
    for vocabulary, path in zip(build_vocabularies(train, settings), (source, target)):
        vocabulary.save(path)
        model = Path(path).with_suffix(".model")
        if isinstance(vocabulary, SentencePieceVocabulary):
            with atomic_path(model) as tmp:
                tmp.write_bytes(vocabulary.model)
        else:
            model.unlink(missing_ok=True)  # an earlier sentencepiece run's: not this vocabulary's
