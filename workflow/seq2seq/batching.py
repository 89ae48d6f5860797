"""Turning sentence pairs into padded, length-bucketed tensor batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .vocab import PAD_INDEX, SOS_INDEX, Vocabulary

Example = tuple[list[int], list[int]]  # (source ids ending with <eos>, target ids ending with <eos>)

BUCKET_BATCHES = 50  # batches per shuffled chunk that is sorted by length


@dataclass
class Batch:
    """src [B,S] long; src_lengths [B] long; tgt_in [B,T] long (<sos> + target); tgt_out [B,T] long
    (target + <eos>); all padded with <pad>. ``index`` [B] long: each row's position in the examples
    given to :func:`make_batches` / :func:`collate`. ``target_tokens``: number of non-pad tgt_out entries."""

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    index: Tensor | None = None
    target_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = torch.arange(self.src.size(0))
        if self.target_tokens is None:
            self.target_tokens = int((self.tgt_out != PAD_INDEX).sum())

    @property
    def size(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(
            src=self.src.to(device, non_blocking=non_blocking),
            src_lengths=self.src_lengths.to(device, non_blocking=non_blocking),
            tgt_in=self.tgt_in.to(device, non_blocking=non_blocking),
            tgt_out=self.tgt_out.to(device, non_blocking=non_blocking),
            index=self.index,
            target_tokens=self.target_tokens,
        )

    def pin_memory(self) -> "Batch":
        return Batch(self.src.pin_memory(), self.src_lengths.pin_memory(), self.tgt_in.pin_memory(),
                     self.tgt_out.pin_memory(), self.index, self.target_tokens)


def encode_pairs(
    pairs: Sequence[tuple[str, str]], source_vocab: Vocabulary, target_vocab: Vocabulary
) -> list[Example]:
    """Space-tokenized (source, target) strings -> (source ids + <eos>, target ids + <eos>)."""
    return [(source_vocab.encode(src.split()), target_vocab.encode(tgt.split())) for src, tgt in pairs]


def padded_rows(rows: Sequence[Sequence[int]], width: int | None = None) -> Tensor:
    """Id lists -> [len(rows), width] long, each row padded with <pad> (width: the longest row by default).

    One ``torch.tensor`` call on padded Python lists: a tensor write per row made batching the fra-eng
    training split 5-6x slower (0.21 s instead of 0.037 s an epoch, ~4% of a luong epoch's time).
    """
    width = max(map(len, rows)) if width is None else width
    return torch.tensor([[*ids, *[PAD_INDEX] * (width - len(ids))] for ids in rows], dtype=torch.long)


def pad_sources(sources: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Source id lists -> (src [B,S] long padded with <pad>, lengths [B] long)."""
    lengths = [len(s) for s in sources]
    if 0 in lengths:
        raise ValueError("empty source sequence (sources must at least hold <eos>)")
    return padded_rows(sources), torch.tensor(lengths, dtype=torch.long)


def collate(examples: Sequence[Example], index: Sequence[int] | None = None) -> Batch:
    """Examples -> a padded Batch; tgt_in = <sos> + target[:-1], tgt_out = target (ending with <eos>)."""
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    src, src_lengths = pad_sources([source for source, _ in examples])
    targets = [target for _, target in examples]
    tgt_out = padded_rows(targets)
    tgt_in = padded_rows([[SOS_INDEX, *ids[:-1]] for ids in targets], tgt_out.size(1))
    rows = torch.as_tensor(list(index) if index is not None else range(len(examples)), dtype=torch.long)
    return Batch(src, src_lengths, tgt_in, tgt_out, rows, target_tokens=sum(len(t) for t in targets))


def make_batches(
    examples: Sequence[Example], batch_size: int, shuffle: bool, seed: int, epoch: int = 0
) -> list[Batch]:
    """Length-bucketed batches of at most ``batch_size`` examples, so little padding is needed.

    Examples are ordered by target length, then source length: the decoder runs every target position
    of the whole batch, while the encoder's packed GRU skips source padding anyway (on the fra-eng
    training split this leaves 0.6% of target positions as padding instead of 6.6%).
    shuffle=True: shuffle the examples, sort each chunk of ``BUCKET_BATCHES * batch_size`` by length,
    cut it into batches, shuffle the batch order; all randomness from ``random.Random(seed + epoch)``.
    shuffle=False: sort all examples by length (stable), batches in ascending length order.
    ``Batch.index`` maps rows back to positions in ``examples``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = list(range(len(examples)))
    length = lambda i: (len(examples[i][1]), len(examples[i][0]))  # noqa: E731
    groups: list[list[int]] = []
    if shuffle:
        rng = random.Random(seed + epoch)
        rng.shuffle(order)
        chunk = BUCKET_BATCHES * batch_size
        for start in range(0, len(order), chunk):
            part = sorted(order[start : start + chunk], key=length)
            groups.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
        rng.shuffle(groups)
    else:
        order.sort(key=length)
        groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [collate([examples[i] for i in group], group) for group in groups]
