"""Batching: padding, <sos>/<eos> framing, length buckets, seeded shuffling."""

import random

import pytest
import torch

from seq2seq.batching import collate, encode_pairs, make_batches, pad_sources, padded_rows
from seq2seq.logs import InputError
from seq2seq.vocab import EOS_INDEX, PAD_INDEX, SOS_INDEX, WordVocabulary


def test_encode_and_collate_frame_targets():
    source = WordVocabulary.build(["a b c"])
    target = WordVocabulary.build(["x y"])
    examples = encode_pairs([("a b c", "x y"), ("b", "y")], source, target)
    assert examples[0][0][-1] == EOS_INDEX and examples[0][1][-1] == EOS_INDEX
    batch = collate(examples)
    assert batch.src.shape == (2, 4) and batch.src_lengths.tolist() == [4, 2]
    assert batch.src[1, 2:].tolist() == [PAD_INDEX, PAD_INDEX]
    x, y = target.encode("x y")[:2]
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


def _rows(batch):
    """(source, target) id lists of a batch's rows, without padding."""
    sources = [row[: int(n)] for row, n in zip(batch.src.tolist(), batch.src_lengths)]
    targets = [[t for t in row if t != PAD_INDEX] for row in batch.tgt_out.tolist()]
    return list(zip(map(tuple, sources), map(tuple, targets)))


def _distinct(n=500, seed=0):
    """Examples that can be told apart by their ids (each source starts with its own number)."""
    return [([10 + i, *ids[1:]], target) for i, (ids, target) in enumerate(_examples(n, seed))]


def test_make_batches_covers_every_example_once_and_buckets_lengths():
    examples = _distinct()
    batches = make_batches(examples, 32, shuffle=True, seed=1, epoch=0)
    seen = sorted(row for b in batches for row in _rows(b))
    assert seen == sorted((tuple(s), tuple(t)) for s, t in examples)
    assert all(b.size <= 32 for b in batches)
    padding = sum(int((b.tgt_out == PAD_INDEX).sum()) for b in batches)
    unsorted = sum(int((collate(examples[i:i + 32]).tgt_out == PAD_INDEX).sum()) for i in range(0, 500, 32))
    assert padding < unsorted / 3


def test_make_batches_is_seeded_by_seed_and_epoch():
    examples = _distinct()
    order = lambda bs: [_rows(b) for b in bs]  # noqa: E731
    assert order(make_batches(examples, 32, True, 1, 0)) == order(make_batches(examples, 32, True, 1, 0))
    assert order(make_batches(examples, 32, True, 1, 0)) != order(make_batches(examples, 32, True, 1, 1))
    assert order(make_batches(examples, 32, True, 1, 0)) != order(make_batches(examples, 32, True, 2, 0))  # the seed
    # each seed's orders are its own: seed 2 does not replay seed 1's one epoch earlier (as with seed + epoch)
    seed1 = [order(make_batches(examples, 32, True, 1, epoch)) for epoch in range(1, 6)]
    assert not any(order(make_batches(examples, 32, True, 2, epoch)) in seed1 for epoch in range(1, 6))
    fixed = make_batches(examples, 32, shuffle=False, seed=0)
    assert [len(t) for b in fixed for _, t in _rows(b)] == sorted(len(t) for _, t in examples)


@pytest.mark.parametrize("shuffle", [True, False])
def test_token_batches_never_exceed_batch_tokens_and_cover_every_pair_once_per_epoch(shuffle):
    examples = _distinct(800, seed=3)
    for epoch in range(3):
        batches = make_batches(examples, None, shuffle=shuffle, seed=1, epoch=epoch, batch_tokens=96)
        assert all(b.padded_tokens <= 96 for b in batches)
        assert sorted(row for b in batches for row in _rows(b)) == sorted((tuple(s), tuple(t)) for s, t in examples)
        assert sum(b.size for b in batches) == len(examples)
    # long pairs get fewer rows: memory stays flat
    sizes = {max(b.src.size(1), b.tgt_out.size(1)): b.size for b in batches}
    assert sizes[max(sizes)] < sizes[min(sizes)]
    again = make_batches(examples, None, shuffle=shuffle, seed=1, epoch=2, batch_tokens=96)
    assert [_rows(b) for b in again] == [_rows(b) for b in batches]


def test_a_pair_longer_than_batch_tokens_is_a_clear_error():
    with pytest.raises(InputError, match=r"training.batch_tokens=8 is less than the longest pair's 13 tokens"):
        make_batches(_examples(50), None, shuffle=True, seed=0, batch_tokens=8)
    with pytest.raises(ValueError, match="exactly one of batch_size and batch_tokens"):
        make_batches(_examples(5), 4, shuffle=True, seed=0, batch_tokens=100)


def test_batch_to_keeps_values():
    batch = collate(_examples(4))
    moved = batch.to("cpu")
    assert torch.equal(moved.src, batch.src) and moved.target_tokens == batch.target_tokens
