"""Floating-point operations per training pair (used by the benchmark).

- Any model we build, of any family or attention: counted by torch's ``FlopCounterMode`` on real training steps
  (:func:`count_flops`), so a new variant needs no formula here.
- The PyTorch tutorials' 2017 and 2023 loops (``tutorial_baselines.py``): analytic, from the layer sizes, at the
  data's mean real lengths: the useful work of loops that pad to a fixed length (the 2023 one) or stop early at
  random (the 2017 one), which a count of a few of their steps would not give. 2*m*n*k per matrix product,
  forward + backward taken as 3x the forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# Counted: whatever a training step runs
# --------------------------------------------------------------------------------------------------

def _sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch 2.13 counts F.scaled_dot_product_attention on CUDA but not its CPU kernel: the same formulas for it
CPU_SDPA_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward_flops,
}


def count_flops(run: Callable[[], T]) -> tuple[float, T]:
    """(FLOPs that torch's FlopCounterMode counts while ``run()`` runs -- matrix products, convolutions and
    attention kernels, forward and backward exactly as executed --, what ``run()`` returned).

    Count on the CPU: the number does not depend on the device, and on CUDA the counter has no formula for
    cuDNN's fused RNN kernel (``aten._cudnn_rnn``), so a GRU's matrix products would go uncounted there.
    """
    with FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FORMULAS) as counter:
        result = run()
    return float(counter.get_total_flops()), result


def quantile_sample(items: list[T], count: int, key: Callable[[T], float]) -> list[T]:
    """``count`` of ``items`` at evenly spaced quantiles of ``key`` (the middle of each of ``count`` equal
    strata): a small sample whose mean follows the whole list's closely when the measured quantity grows
    with ``key`` (a batch's FLOPs with its padded lengths)."""
    ordered = sorted(items, key=key)
    count = max(1, min(count, len(ordered)))
    return [ordered[int((i + 0.5) * len(ordered) / count)] for i in range(count)]


# --------------------------------------------------------------------------------------------------
# Analytic: the tutorial baselines
# --------------------------------------------------------------------------------------------------

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


def encoder_flops(sizes: ModelSizes, shape: DataShape) -> float:
    """Forward FLOPs of a one-layer GRU encoder over a pair's source tokens (embedding lookups are free)."""
    return shape.source_length * gru_step_flops(sizes.emb, sizes.hidden)


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


TUTORIAL_FLOPS: dict[str, Callable[[ModelSizes, DataShape], float]] = {
    "baseline": tutorial2017_flops, "baseline-tuned": tutorial2017_flops, "tutorial2023": tutorial2023_flops,
}
"""Training FLOPs per pair of the benchmark's tutorial rows (``baseline-tuned`` is the ``baseline`` step)."""
