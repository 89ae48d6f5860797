"""What stops a training run before anything wrong is published: a diverging loss, and a signal (SIGTERM from a
wall-time limit or ``scancel``, SIGINT from Ctrl-C) that asks it to stop between two batches."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from typing import TYPE_CHECKING, Iterator

from .logs import InputError
from .settings import TrainConfig

if TYPE_CHECKING:
    from .training import EpochProgress

# A model that guesses uniformly over V target words has a cross-entropy of ln V, and an untrained one starts
# there; a mean training loss above this multiple of it means the run diverged (see check_divergence).
DIVERGENCE_FACTOR = 1.5
CHECK_EVERY = 20  # batches between two looks at the running loss (on a GPU each look waits for it to catch up)


class TrainingDiverged(InputError):
    """The loss became NaN or infinite, or rose far above an untrained model's: the settings, not the code,
    are to blame (a learning rate too high, no clipping); the message says which to change."""


def divergence_limit(target_vocab_size: int) -> float:
    """The mean training loss above which a run counts as diverged: ``DIVERGENCE_FACTOR`` x ln V."""
    return DIVERGENCE_FACTOR * math.log(max(target_vocab_size, 2))


def check_divergence(progress: EpochProgress, limit: float, config: TrainConfig) -> None:
    """TrainingDiverged when the epoch's running loss is NaN, infinite or above ``limit``.

    Why this cannot fire on a healthy run: an untrained model starts at a loss of about ln V (its output layer
    starts near uniform), and training only lowers the mean; label smoothing and teacher forcing below 1 keep it
    under ln V too. Half as much again above ln V is a loss no learning run reaches, but one that a learning
    rate too high reaches within a few batches (a learning rate of 1e6 gives losses of 1e7 and more)."""
    loss = progress.mean_loss
    if math.isfinite(loss) and loss <= limit:
        return
    what = (f"the training loss became {loss}" if not math.isfinite(loss) else
            f"the mean training loss is {loss:.4g}, above {limit:.3g} ({DIVERGENCE_FACTOR} x ln V, where a model "
            f"that guesses uniformly starts)")
    raise TrainingDiverged(f"training diverged in epoch {progress.epoch} (batch {progress.batches_done} of "
                           f"{progress.batches}): {what}; lower training.learning_rate (now {config.learning_rate:g})"
                           f" or training.clip_grad (now {config.clip_grad:g}); nothing was published")


class StopSignals:
    """While active, SIGTERM (a wall-time limit, ``scancel``) and SIGINT (Ctrl-C) ask training to stop at the
    next batch boundary instead of killing it; a second Ctrl-C stops at once. Inactive outside the main thread
    (Python delivers signals there only)."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self) -> bool:
        return self.received is not None

    def _handle(self, number: int, frame: object) -> None:
        if number == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = number

    @contextlib.contextmanager
    def active(self) -> Iterator["StopSignals"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.signal(number, self._handle) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
