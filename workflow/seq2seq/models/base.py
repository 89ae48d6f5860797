"""The contract every model family offers to training, search, ensembles, evaluation, figures, the explorer and
``seq2seq-translate``; they use nothing else of a model.

Shapes: B batch, S source positions, T target positions, V target vocabulary size.

- ``encode(src [B,S], src_lengths [B]) -> Encoding``: what the decoder reads, computed once per sentence;
- ``init_state(encoding) -> DecoderState``: the decoder's state before the first target token;
- ``decode_step(prev_tokens [B], state, encoding) -> (log_probs [B,V] float32, state, attention [B,S])``: one
  step of greedy or beam search (``attention``: the weights the model looked with, rows summing to 1, 0 on
  padding; all 0 for a model without attention);
- ``forward(src, src_lengths, tgt_in [B,T], teacher_forcing=1.0) -> (logits [B,T,V], attention [B,T,S])``:
  teacher-forced logits for training (``teacher_forcing < 1``: feed back the model's own argmax at times);
- ``max_source_length``: the longest source (tokens incl. ``<eos>``) it reads, None for any;
- ``label``: a short name of what it is, e.g. its attention variant (metrics.json's "attention").

An ``Encoding`` and a ``DecoderState`` know how to pick, repeat or reorder their batch rows
(``select(index [B'])``): search calls that when it drops finished sentences or reorders beams, and never
indexes a tensor of an assumed shape.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor, nn


class Batched(Protocol):
    """Anything whose first dimension is the batch: ``select(index [B'] long)`` -> the same kind, B' rows."""

    def select(self, index: Tensor) -> "Batched": ...


class Encoding(Batched, Protocol):
    """What ``Model.encode`` returns; ``mask`` [B,S] bool is True on real source tokens."""

    mask: Tensor


class DecoderState(Batched, Protocol):
    """What the decoder carries from one step to the next (a GRU's hidden state, a Transformer's cache)."""


class Model(nn.Module):
    """Base class of the model families: see the module docstring for the contract. ``config`` is the family's
    config dataclass (:data:`seq2seq.models.FAMILIES`), with at least ``source_vocab_size`` and
    ``target_vocab_size``."""

    config: Any

    @property
    def max_source_length(self) -> int | None:
        return None

    @property
    def label(self) -> str:
        return self.config.family

    def encode(self, src: Tensor, src_lengths: Tensor) -> Encoding:
        raise NotImplementedError

    def init_state(self, encoding: Encoding) -> DecoderState:
        raise NotImplementedError

    def decode_step(self, prev_tokens: Tensor, state: DecoderState, encoding: Encoding
                    ) -> tuple[Tensor, DecoderState, Tensor]:
        raise NotImplementedError
