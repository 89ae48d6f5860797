"""Vocabulary: fixed special tokens, a min-frequency cutoff, deterministic order, JSON save/load."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .fileio import write_json

PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, SOS, EOS, UNK)
PAD_INDEX, SOS_INDEX, EOS_INDEX, UNK_INDEX = 0, 1, 2, 3


@dataclass
class Vocabulary:
    """Maps tokens to indices. Indices 0-3 are always ``<pad> <sos> <eos> <unk>``.

    ``counts`` holds the training-set frequency of each regular token (specials have none).
    """

    tokens: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    min_freq: int = 1

    pad_index = PAD_INDEX
    sos_index = SOS_INDEX
    eos_index = EOS_INDEX
    unk_index = UNK_INDEX

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with the specials {list(SPECIALS)}")
        self._index = {token: i for i, token in enumerate(self.tokens)}
        if len(self._index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1) -> "Vocabulary":
        """Build from tokenized sentences; tokens ordered by frequency (descending), then alphabetically."""
        counter: Counter[str] = Counter()
        for sentence in sentences:
            counter.update(sentence)
        for special in SPECIALS:
            counter.pop(special, None)
        kept = sorted((t for t, c in counter.items() if c >= min_freq), key=lambda t: (-counter[t], t))
        return cls(tokens=[*SPECIALS, *kept], counts={t: counter[t] for t in kept}, min_freq=min_freq)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def index(self, token: str) -> int:
        """Index of ``token``, or ``unk_index`` for a token never seen in training."""
        return self._index.get(token, UNK_INDEX)

    def encode(self, tokens: Sequence[str], add_eos: bool = True, add_sos: bool = False) -> list[int]:
        """Token list -> indices, optionally framed by ``<sos>`` / ``<eos>``."""
        ids = [self.index(t) for t in tokens]
        if add_sos:
            ids.insert(0, SOS_INDEX)
        if add_eos:
            ids.append(EOS_INDEX)
        return ids

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Indices -> tokens; stops at the first ``<eos>`` and drops ``<pad>``/``<sos>`` when stripping."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if strip_specials:
                if i == EOS_INDEX:
                    break
                if i in (PAD_INDEX, SOS_INDEX):
                    continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return out

    def to_dict(self) -> dict:
        """Plain-data form (also what checkpoints embed)."""
        return {
            "specials": list(SPECIALS),
            "tokens": self.tokens[len(SPECIALS):],
            "counts": self.counts,
            "min_freq": self.min_freq,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        if list(data.get("specials", [])) != list(SPECIALS):
            raise ValueError(f"unexpected specials {data.get('specials')!r}, expected {list(SPECIALS)}")
        return cls(tokens=[*SPECIALS, *data["tokens"]], counts=dict(data.get("counts", {})),
                   min_freq=int(data.get("min_freq", 1)))

    def fingerprint(self) -> str:
        """sha256 of the token list: identifies the vocabulary a checkpoint was trained with."""
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()

    def save(self, path: str | os.PathLike[str]) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Vocabulary":
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            return cls.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a valid vocabulary file ({error})") from error
