"""How training updates the weights: the optimizer, the learning-rate schedule, mixed precision and the CPU's
floating-point settings."""

from __future__ import annotations

import math

import torch

from .settings import TrainConfig


def resolve_amp(amp: bool | str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed). Mixed precision only on CUDA: bf16 on GPUs
    that compute in it (compute capability 8.0 and later), otherwise fp16 with a GradScaler.

    Not ``torch.cuda.is_bf16_supported()``: it also says yes where bf16 is only emulated (V100, T4), which is
    slower than fp16, and it asks about the current GPU rather than ``device``.
    """
    if device.type != "cuda" or amp is False:
        return None, False
    if torch.cuda.get_device_capability(device) >= (8, 0):
        return torch.bfloat16, False
    return torch.float16, True


def scheduled_learning_rate(step: int, total_steps: int, peak: float, final: float, warmup_steps: int,
                            shape: str) -> float:
    """The learning rate of batch ``step`` (0-based) of ``total_steps``: a linear rise over ``warmup_steps`` to
    ``peak``, then a ``shape`` ("cosine" or "linear") fall to ``final`` at the last step (and ``final`` after)."""
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
