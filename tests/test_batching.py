"""Batching: padding, <sos>/<eos> framing, length buckets, seeded shuffling."""

import random

import pytest
import torch

from seq2seq.batching import collate, encode_pairs, make_batches, pad_sources, padded_rows
from seq2seq.vocab import EOS_INDEX, PAD_INDEX, SOS_INDEX, Vocabulary


def test_encode_and_collate_frame_targets():
    source = Vocabulary.build([["a", "b", "c"]])
    target = Vocabulary.build([["x", "y"]])
    examples = encode_pairs([("a b c", "x y"), ("b", "y")], source, target)
    assert examples[0][0][-1] == EOS_INDEX and examples[0][1][-1] == EOS_INDEX
    batch = collate(examples)
    assert batch.src.shape == (2, 4) and batch.src_lengths.tolist() == [4, 2]
    assert batch.src[1, 2:].tolist() == [PAD_INDEX, PAD_INDEX]
    x, y = target.index("x"), target.index("y")
    assert batch.tgt_in.tolist() == [[SOS_INDEX, x, y], [SOS_INDEX, y, PAD_INDEX]]
    assert batch.tgt_out.tolist() == [[x, y, EOS_INDEX], [y, EOS_INDEX, PAD_INDEX]]
    assert batch.target_tokens == 5 and batch.size == 2


def test_pad_sources():
    src, lengths = pad_sources([[5, 6, 2], [2]])
    assert src.tolist() == [[5, 6, 2], [2, 0, 0]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError):
        pad_sources([[]])


def test_padded_rows_pads_to_the_longest_row_or_a_given_width():
    assert padded_rows([[5], [6, 7, 8]]).tolist() == [[5, PAD_INDEX, PAD_INDEX], [6, 7, 8]]
    wide = padded_rows([[5], [6, 7]], width=4)
    assert wide.dtype == torch.long and wide.tolist() == [[5, 0, 0, 0], [6, 7, 0, 0]]


def _examples(n=500, seed=0):
    rng = random.Random(seed)
    return [([4] * rng.randint(1, 12) + [2], [5] * rng.randint(1, 12) + [2]) for _ in range(n)]


def test_make_batches_covers_every_example_once_and_buckets_lengths():
    examples = _examples()
    batches = make_batches(examples, 32, shuffle=True, seed=1, epoch=0)
    seen = sorted(i for b in batches for i in b.index.tolist())
    assert seen == list(range(len(examples)))
    assert all(b.size <= 32 for b in batches)
    padding = sum(int((b.tgt_out == PAD_INDEX).sum()) for b in batches)
    unsorted = sum(int((collate(examples[i:i + 32]).tgt_out == PAD_INDEX).sum()) for i in range(0, 500, 32))
    assert padding < unsorted / 3
    for b in batches:  # rows map back to their examples
        for row, i in enumerate(b.index.tolist()):
            assert b.src_lengths[row] == len(examples[i][0])


def test_make_batches_is_seeded_by_seed_and_epoch():
    examples = _examples()
    order = lambda bs: [b.index.tolist() for b in bs]  # noqa: E731
    assert order(make_batches(examples, 32, True, 1, 0)) == order(make_batches(examples, 32, True, 1, 0))
    assert order(make_batches(examples, 32, True, 1, 0)) != order(make_batches(examples, 32, True, 1, 1))
    fixed = make_batches(examples, 32, shuffle=False, seed=0)
    assert [len(examples[i][1]) for b in fixed for i in b.index.tolist()] == sorted(len(t) for _, t in examples)


def test_batch_to_keeps_values():
    batch = collate(_examples(4))
    moved = batch.to("cpu")
    assert torch.equal(moved.src, batch.src) and moved.target_tokens == batch.target_tokens
