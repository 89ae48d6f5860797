"""Floating-point operations per training pair, from the layer sizes (used by the benchmark).

Counted analytically: 2*m*n*k per matrix product, forward + backward taken as 3x the forward, at the data's
mean real source/target lengths (padding excluded), for the work each implementation actually performs.
"""

from __future__ import annotations

from dataclasses import dataclass

# FLOP formulas (forward pass, one pair). Sizes: H hidden, E embedding, V vocabulary, S source tokens,
# T target tokens (both including <eos>; the decoder runs T steps).


def linear_flops(n_in: int, n_out: int) -> float:
    """One input vector through ``Linear(n_in, n_out)``: 2*n_in*n_out (bias adds ignored)."""
    return 2.0 * n_in * n_out


def gru_step_flops(input_size: int, hidden_size: int) -> float:
    """One GRU step: input projection 2*3H*I plus hidden projection 2*3H*H (gates' pointwise work ignored)."""
    return 2.0 * 3 * hidden_size * (input_size + hidden_size)


def training_flops(forward_flops: float) -> float:
    """Forward + backward: the backward pass costs about twice the forward (grads of inputs and weights)."""
    return 3.0 * forward_flops


@dataclass(frozen=True)
class ModelSizes:
    """Layer sizes a FLOP formula needs. ``max_length``: positions of the fixed-length attention layers."""

    source_vocab: int
    target_vocab: int
    hidden: int
    embedding: int | None = None
    max_length: int = 11

    @property
    def emb(self) -> int:
        return self.hidden if self.embedding is None else self.embedding


@dataclass(frozen=True)
class DataShape:
    """Mean real lengths per pair, in tokens including ``<eos>`` (padding excluded)."""

    source_length: float
    target_length: float


def encoder_flops(sizes: ModelSizes, shape: DataShape, bidirectional: bool = False) -> float:
    """Forward FLOPs of a one-layer GRU encoder over a pair's source tokens (embedding lookups are free)."""
    directions = 2 if bidirectional else 1
    return directions * shape.source_length * gru_step_flops(sizes.emb, sizes.hidden)


def tutorial2017_flops(sizes: ModelSizes, shape: DataShape) -> float:
    """Training FLOPs per pair of the 2017 tutorial (``baseline``); the forward pass per decoder step is

    ``attn`` Linear(2H -> max_length) over [embedded; hidden], the weighted sum bmm over max_length
    encoder rows (2*max_length*H), ``attn_combine`` Linear(2H -> H), a GRU(H -> H) step and ``out``
    Linear(H -> V). Counted for all T target steps (the no-teacher-forcing half may stop early at <eos>).
    """
    h, m = sizes.hidden, sizes.max_length
    step = (linear_flops(2 * h, m) + 2.0 * m * h + linear_flops(2 * h, h)
            + gru_step_flops(h, h) + linear_flops(h, sizes.target_vocab))
    return training_flops(encoder_flops(sizes, shape) + shape.target_length * step)


def tutorial2023_flops(sizes: ModelSizes, shape: DataShape) -> float:
    """Training FLOPs per pair of the 2023 tutorial's model at the real lengths; per decoder step:

    ``Wa`` on the query (2H^2), ``Ua`` on every key (S*2H^2 -- the tutorial recomputes it each step),
    ``Va`` scores (2*S*H), the context bmm (2*S*H), a GRU(2H -> H) step and ``out`` Linear(H -> V).
    The tutorial really runs max_length steps over max_length positions; the padding's share is not counted.
    """
    h, s = sizes.hidden, shape.source_length
    step = (linear_flops(h, h) + s * linear_flops(h, h) + s * linear_flops(h, 1) + 2.0 * s * h
            + gru_step_flops(sizes.emb + h, h) + linear_flops(h, sizes.target_vocab))
    return training_flops(encoder_flops(sizes, shape) + shape.target_length * step)


def seq2seq_flops(attention: str, sizes: ModelSizes, shape: DataShape, bidirectional: bool = False) -> float:
    """Training FLOPs per pair of our :class:`seq2seq.model.Seq2Seq` with the given attention (a one-layer
    encoder, run in both directions when ``bidirectional``; tied embeddings change no FLOP count).

    Decoder step, all variants: a GRU step and the output projection Linear(H -> V). On top of that:

    - ``none``: nothing (GRU input is the embedding);
    - ``tutorial``: the 2017 layer: Linear(E+H -> max_length) scores (only the first S kept), context
      over the S real rows (2*S*H), ``attn_combine`` Linear(E+H -> H) feeding the GRU;
    - ``bahdanau``: keys projected once per source token (2H^2 each), the query projection (2H^2),
      additive scores (2*S*H), context (2*S*H); the GRU reads [embedding; context] (E+H);
    - ``luong`` (general): after the GRU, scores against keys projected once per source token (2H^2 each,
      then 2*S*H), context (2*S*H), the attentional layer Linear(2H -> H) before the output projection.
    """
    h, e, v, s = sizes.hidden, sizes.emb, sizes.target_vocab, shape.source_length
    out = linear_flops(h, v)
    once = 0.0
    if attention == "none":
        step = gru_step_flops(e, h) + out
    elif attention == "tutorial":
        m = sizes.max_length
        step = (linear_flops(e + h, m) + 2.0 * s * h + linear_flops(e + h, h)
                + gru_step_flops(h, h) + out)
    elif attention == "bahdanau":
        once = s * linear_flops(h, h)
        step = linear_flops(h, h) + 2.0 * s * h + 2.0 * s * h + gru_step_flops(e + h, h) + out
    elif attention == "luong":
        once = s * linear_flops(h, h)
        step = gru_step_flops(e, h) + 2.0 * s * h + 2.0 * s * h + linear_flops(2 * h, h) + out
    else:
        raise ValueError(f"unknown attention {attention!r}; expected none, tutorial, bahdanau or luong")
    return training_flops(encoder_flops(sizes, shape, bidirectional) + once + shape.target_length * step)


def flops_per_pair(variant: str, sizes: ModelSizes, shape: DataShape, bidirectional: bool = False) -> float:
    """Training FLOPs per pair of a benchmark row (``bahdanau-h128`` is ``bahdanau`` at its own sizes,
    ``baseline-tuned`` the ``baseline`` step); ``bidirectional`` applies to our model's rows only."""
    if variant in ("baseline", "baseline-tuned"):
        return tutorial2017_flops(sizes, shape)
    if variant == "tutorial2023":
        return tutorial2023_flops(sizes, shape)
    return seq2seq_flops(variant.split("-")[0], sizes, shape, bidirectional)
