"""How training updates the weights: the optimizer, the learning-rate schedule, mixed precision and the CPU's
floating-point settings."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable

import torch

from .settings import TrainConfig

LOG = logging.getLogger(__name__)


# x86 feature flags (as Linux's /proc/cpuinfo names them) of bf16 arithmetic in hardware: AVX512-BF16 (Intel
# Cooper Lake and later Xeons, AMD Zen 4 and later) and AMX-BF16 (Intel Sapphire Rapids and later).
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where there is no such file, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def cpu_computes_bf16(flags: Iterable[str] | None = None) -> bool:
    """Whether the CPU with these feature flags (default: this machine's) computes bf16 in hardware. Elsewhere
    PyTorch emulates bf16 on the CPU, which is slower than fp32."""
    return not NATIVE_BF16_CPU_FLAGS.isdisjoint(cpu_flags() if flags is None else flags)


def resolve_amp(amp: bool | str, device: torch.device, flags: Iterable[str] | None = None
                ) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``training.amp`` on ``device``.

    CUDA: ``auto`` and ``true`` use bf16 on GPUs that compute in it (compute capability 8.0 and later), otherwise
    fp16; a GradScaler in both cases, because under any CUDA autocast PyTorch runs cuDNN's RNNs (the GRUs, most
    of the model) in fp16 (``AutocastRNN.cpp`` casts their inputs and weights to half), whose small gradients
    underflow without loss scaling. Not ``torch.cuda.is_bf16_supported()``: it also says yes where bf16 is only
    emulated (V100, T4), which is slower than fp16, and it asks about the current GPU rather than ``device``.

    CPU: ``true`` uses bf16 autocast (with a warning where the CPU, by ``flags``, only emulates bf16); ``auto``
    stays in fp32. Native bf16 CPUs are the candidates for ``auto``, but it has not been measured on one yet
    (BLEU over three seeds and the pipeline's speed-up), so it is not the default there either.
    """
    if amp is False:
        return None, False
    if device.type == "cpu":
        if amp is not True:
            return None, False
        if not cpu_computes_bf16(flags):
            LOG.warning("training.amp: true on a CPU without native bf16 (no %s flag): bf16 is emulated there "
                        "and usually slower than fp32", " or ".join(sorted(NATIVE_BF16_CPU_FLAGS)))
        return torch.bfloat16, False
    if device.type != "cuda":
        return None, False
    if torch.cuda.get_device_capability(device) >= (8, 0):
        return torch.bfloat16, True
    return torch.float16, True


def scheduled_learning_rate(step: int, total_steps: int, peak: float, final: float, warmup_steps: int,
                            shape: str) -> float:
    """The learning rate of batch ``step`` (0-based) of ``total_steps``: a linear rise over ``warmup_steps`` to
    ``peak``, then a ``shape`` ("cosine" or "linear") fall that reaches ``final`` at step ``total_steps``, just
    after the last batch (whose rate is one step's fall above ``final``; ``final`` for any later step), as the
    common warm-up-and-decay schedules count."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * progress)) if shape == "cosine" else 1.0 - progress
    return final + (peak - final) * factor


class LearningRate:
    """What sets the optimizer's learning rate. ``plateau``: PyTorch's ReduceLROnPlateau on the validation loss
    after each epoch. ``cosine``/``linear``: :func:`scheduled_learning_rate` of the batch's step, over
    ``config.epochs`` epochs of ``steps_per_epoch`` batches (with token batches the count varies a little between
    epochs: the last steps then stay at ``lr_min``). Saved with the training state like a PyTorch scheduler."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> None:
        self.optimizer, self.config = optimizer, config
        self.total_steps = config.epochs * steps_per_epoch
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
        ) if config.lr_schedule == "plateau" else None

    def before_step(self, step: int) -> None:
        """Set the rate for batch ``step`` (0-based, counted over the whole run)."""
        if self.plateau is None:
            rate = scheduled_learning_rate(step, self.total_steps, self.config.learning_rate, self.config.lr_min,
                                           self.config.lr_warmup_steps, self.config.lr_schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = rate

    def after_epoch(self, valid_loss: float) -> None:
        if self.plateau is not None:
            self.plateau.step(valid_loss)

    def state_dict(self) -> dict:
        return self.plateau.state_dict() if self.plateau is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.plateau is not None:
            self.plateau.load_state_dict(state)


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (default) or SGD; the fused implementation where the device has one (about 4x faster
    steps than the default on the CPU, where the update is a large share of a small model's step)."""
    kind = torch.optim.SGD if config.optimizer == "sgd" else torch.optim.Adam
    params = list(model.parameters())
    device = params[0].device.type
    try:
        return kind(params, lr=config.learning_rate, weight_decay=config.weight_decay,
                    fused=device in ("cpu", "cuda"))
    except (RuntimeError, TypeError, ValueError):
        return kind(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def tune_cpu_runtime() -> None:
    """Process-wide CPU settings for training (idempotent). Denormal floats (tiny gradients late in training)
    cost x86 CPUs microcode assists, up to 25x slower matrix products: flush them to zero, which changes no
    result that matters."""
    torch.set_flush_denormal(True)
