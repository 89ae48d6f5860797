"""CPU speed tricks, each beside the plain PyTorch it replaces. Read the plain version first: it is what the
trick computes. A trick stays here only while it earns at least 10% of end-to-end training speed on its own,
measured with the training benchmark (see the README's "What to expect").

- :func:`sequence_loss`: cross-entropy with a one-pass hand-written backward instead of
  ``F.cross_entropy(..., ignore_index=, label_smoothing=)``.
- :class:`Dropout`: a 16-bit random mask instead of ``nn.Dropout``'s one Bernoulli draw per element.
- :func:`gru_step`: ``torch.gru_cell`` on the ``nn.GRU``'s own weights instead of calling the ``nn.GRU`` on a
  sequence of length 1.
- :func:`keep_freed_memory`: glibc's ``mallopt`` through ``ctypes``, so that each step's large temporaries
  reuse heap pages instead of faulting in fresh ones.
"""

from __future__ import annotations

import ctypes
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .vocab import PAD_INDEX

# --------------------------------------------------------------------------------------------- the loss


def plain_sequence_loss(logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """Cross-entropy over all positions at once, ignoring <pad>: logits [B,T,V], tgt_out [B,T]."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), tgt_out.reshape(-1), ignore_index=PAD_INDEX,
                           label_smoothing=label_smoothing, reduction=reduction)


class _SequenceCrossEntropy(torch.autograd.Function):
    """Cross-entropy with ``ignore_index=PAD_INDEX`` and label smoothing, as ``F.cross_entropy``, with a
    one-pass backward ``(softmax - smoothed one-hot) * weight`` written into the saved log-probabilities:
    about half the time of log_softmax + nll_loss backward over a [B*T, V] output on the CPU."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, label_smoothing: float, mean: bool) -> Tensor:
        log_probs = torch.log_softmax(logits, dim=-1)  # [N,V]
        valid = (target != PAD_INDEX).to(logits.dtype)  # [N]
        picked = log_probs.gather(1, target.unsqueeze(1)).squeeze(1)  # [N]
        per_token = -picked
        if label_smoothing > 0:
            per_token = (1 - label_smoothing) * per_token - label_smoothing * log_probs.mean(dim=-1)
        loss = (per_token * valid).sum()
        scale = valid.sum() if mean else valid.new_ones(())
        ctx.save_for_backward(log_probs, target, valid, scale)
        ctx.label_smoothing = label_smoothing
        ctx.used = False
        return loss / scale

    @staticmethod
    def backward(ctx, grad: Tensor):
        if ctx.used:
            raise RuntimeError("sequence loss: backward through the same graph twice is not supported")
        ctx.used = True
        log_probs, target, valid, scale = ctx.saved_tensors
        smoothing = ctx.label_smoothing
        grad_logits = log_probs.exp_()  # softmax, in place of the saved log-probabilities
        if smoothing > 0:
            grad_logits.sub_(smoothing / grad_logits.size(1))
        hit = torch.full_like(valid, -(1 - smoothing)).unsqueeze(1)
        grad_logits.scatter_add_(1, target.unsqueeze(1), hit)
        grad_logits.mul_((valid * (grad / scale)).unsqueeze(1))
        return grad_logits, None, None, None


def sequence_loss(logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """:func:`plain_sequence_loss` (same value and gradient, float32) with the one-pass backward."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be mean or sum, got {reduction!r}")
    return _SequenceCrossEntropy.apply(logits.reshape(-1, logits.size(-1)).float(), tgt_out.reshape(-1),
                                       float(label_smoothing), reduction == "mean")


# --------------------------------------------------------------------------------------------- dropout

PlainDropout = nn.Dropout

_LEVELS = 1 << 16  # values of a 16-bit integer
_INT16_MIN = -(1 << 15)


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """A CPU tensor of ``shape``: 0 with probability ~``p`` (``round(p * 65536) / 65536``), otherwise
    ``1 / keep probability``.

    ``nn.Dropout`` draws one Bernoulli number per element from the CPU's Mersenne Twister; here every 64-bit
    random word is cut into four 16-bit uniform integers, and an element is kept when its integer is at or above
    a threshold: a quarter of the random draws. Kept elements are scaled by the exact inverse of their keep
    probability, so the expected value is unchanged. Masks come from the default torch generator, so
    ``torch.manual_seed`` makes them repeatable.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
    dropped_levels = round(p * _LEVELS)
    numel = math.prod(shape)
    if dropped_levels == 0:
        return torch.ones(shape, dtype=dtype)
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((numel + 3) // 4,), dtype=torch.int64)
    uniform16 = words.view(torch.int16)[:numel].view(shape)  # each in [-32768, 32767], uniform
    keep = uniform16 >= _INT16_MIN + dropped_levels
    return keep.to(dtype).mul_(_LEVELS / (_LEVELS - dropped_levels))


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Like ``F.dropout(x, p, training)``; float32 CPU tensors get :func:`dropout_mask`."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return F.dropout(x, p, training)
    return x * dropout_mask(x.shape, p, x.dtype)


class Dropout(nn.Module):
    """Drop-in for ``nn.Dropout`` (same ``p`` and train/eval behaviour) using :func:`dropout`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------------------------- one GRU step


def plain_gru_step(rnn: nn.GRU, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    """One step of ``rnn``: x [B,I], state [L,B,H] -> (top layer's output [B,H], state [L,B,H])."""
    output, state = rnn(x.unsqueeze(1), state)
    return output.squeeze(1), state


def gru_step(rnn: nn.GRU, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`plain_gru_step` through ``torch.gru_cell`` on the layer weights, skipping ``nn.GRU``'s checks and
    sequence handling on every decoder step."""
    weights = rnn.all_weights
    if len(weights) == 1:
        h = torch.gru_cell(x, state[0], *weights[0])
        return h, h.unsqueeze(0)
    layers = []
    for layer, layer_weights in enumerate(weights):
        if layer > 0:
            x = dropout(x, rnn.dropout, rnn.training)
        x = torch.gru_cell(x, state[layer], *layer_weights)
        layers.append(x)
    return x, torch.stack(layers)


# --------------------------------------------------------------------------------------------- the allocator


def keep_freed_memory() -> None:
    """Keep freed memory in glibc's heap instead of returning it to the system: otherwise each step's large
    temporaries (the [B*T,V] output) come from fresh pages, whose faults cost several percent of a step. Peak
    memory is unchanged; a no-op where glibc's mallopt is missing. (Plain version: nothing.)"""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD: allocations below 32 MiB come from the heap
        libc.mallopt(-1, 512 * 2**20)  # M_TRIM_THRESHOLD: keep up to 512 MiB free at the heap top
    except (OSError, AttributeError):
        pass
