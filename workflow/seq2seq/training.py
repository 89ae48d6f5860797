"""The training loop: optimizer, clipping, LR schedule, early stopping, resuming, checkpoint averaging, history.

Read :func:`train_model` from top to bottom: set up, resume if a compatible state exists, then for each epoch
:func:`run_epoch` and :func:`validate`, keep the best weights, save the resume state; at the end publish the
outputs (none of them exists before, so a killed run leaves nothing that looks finished).

Two guards stop a run before anything is published: a diverging loss (:func:`check_divergence`), and a signal
(SIGTERM from a wall-time limit or ``scancel``, SIGINT from Ctrl-C), after which the state of the last finished
batch is saved so that a rerun continues mid-epoch to the result an uninterrupted run gives.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from . import dependencies
from .batching import Batch, encode_pairs, make_batches
from .checkpoint import Metadata, TrainingState, cpu_state, resume_training, save_model, save_training
from .corpus import read_split
from .devices import resolve_device, set_cpu_threads
from .fileio import DiskFullError, atomic_open
from .logs import InputError, Interrupted
from .metrics import corpus_bleu
from .model import Seq2Seq
from .search import decode_in_batches
from .settings import ModelConfig, TrainConfig
from .vocab import PAD_INDEX, Vocabulary, load_vocabulary

HISTORY_COLUMNS = ("epoch", "train_loss", "valid_loss", "valid_bleu", "learning_rate", "seconds", "pairs_per_s")
EVAL_BATCH_SIZE = 256
# A model that guesses uniformly over V target words has a cross-entropy of ln V, and an untrained one starts
# there; a mean training loss above this multiple of it means the run diverged (see check_divergence).
DIVERGENCE_FACTOR = 1.5
CHECK_EVERY = 20  # batches between two looks at the running loss (on a GPU each look waits for it to catch up)


class TrainingDiverged(InputError):
    """The loss became NaN or infinite, or rose far above an untrained model's: the settings, not the code,
    are to blame (a learning rate too high, no clipping); the message says which to change."""


# ---------------------------------------------------------------------------------------------- one step

def sequence_loss(logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy over all positions at once, ignoring <pad>: logits [B,T,V], tgt_out [B,T] -> a 0-dim
    tensor, the mean over real target tokens (or their sum)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), tgt_out.reshape(-1), ignore_index=PAD_INDEX,
                           label_smoothing=label_smoothing, reduction=reduction)


def train_batch(model: Seq2Seq, batch: Batch, optimizer: torch.optim.Optimizer, clip_grad: float,
                teacher_forcing: float, scaler: torch.amp.GradScaler | None = None,
                amp_dtype: torch.dtype | None = None, label_smoothing: float = 0.0) -> Tensor:
    """One optimizer step on ``batch`` (already on the model's device).

    Returns the detached mean token loss as a 0-dim tensor, so the step needs no host sync; ``float()`` it
    where the number is needed. Without a gradient scaler, a non-finite gradient norm makes the returned loss
    non-finite too, so that one look at the losses catches both (with a scaler, inf gradients are routine: it
    skips those steps itself).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(batch.src.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=teacher_forcing)
    loss = sequence_loss(logits, batch.tgt_out, label_smoothing)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        return torch.where(torch.isfinite(norm), loss.detach(), norm.detach())
    return loss.detach()


# ---------------------------------------------------------------------------------------------- setup

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


def write_history(path: Path, rows: Sequence[dict]) -> None:
    """Rewrite history.tsv atomically."""
    formats = {"epoch": "{:d}", "train_loss": "{:.6f}", "valid_loss": "{:.6f}", "valid_bleu": "{:.4f}",
               "learning_rate": "{:.6g}", "seconds": "{:.3f}", "pairs_per_s": "{:.1f}"}
    with atomic_open(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in rows:
            writer.writerow([formats[c].format(row[c]) for c in HISTORY_COLUMNS])


def average_states(states: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The element-wise mean of state dicts of one model (floating-point tensors; others from the first)."""
    first = states[0]
    return {name: torch.stack([s[name].float() for s in states]).mean(dim=0).to(first[name].dtype)
            if first[name].is_floating_point() else first[name].clone() for name in first}


def keep_for_average(state: TrainingState, epoch: int, weights: dict[str, Tensor], count: int, select: str) -> None:
    """Keep ``weights`` of ``epoch`` among the ``count`` to average: the last ones, or the best by the history's
    early-stopping score (``state.history`` already holds this epoch)."""
    if count < 2:
        return
    state.kept_states[epoch] = weights
    if len(state.kept_states) > count:
        if select == "last":
            drop = min(state.kept_states)
        else:
            scores = {row["epoch"]: row["score"] for row in state.history}
            drop = min(state.kept_states, key=lambda e: (scores[e], e))
        del state.kept_states[drop]


def open_tensorboard(folder: Path):
    """A TensorBoard SummaryWriter for ``folder`` (the optional ``tensorboard`` package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: pip install tensorboard
    except ImportError as error:
        raise ImportError("training.tensorboard needs the tensorboard package: pip install "
                          "'seq2seq-attention-pipeline[tensorboard]'") from error
    return SummaryWriter(log_dir=str(folder))


# ---------------------------------------------------------------------------------------------- one epoch

@dataclass
class Validation:
    """What one pass over the validation split measured."""

    loss: float  # teacher-forced mean token cross-entropy, without label smoothing
    bleu: float  # corpus BLEU of greedy translations


@dataclass
class EpochProgress:
    """How far an epoch has come: batches done, the sum of their token losses (a 0-dim float32 tensor on the
    training device, summed in batch order so that an epoch resumed mid-way gives the same bits), their target
    tokens and seconds."""

    epoch: int
    batches: int  # in the whole epoch
    batches_done: int
    loss_sum: Tensor
    tokens: int = 0
    seconds: float = 0.0
    steps_before: int = 0  # optimizer steps of the earlier epochs

    @property
    def step(self) -> int:
        """The next batch's step, counted over the whole run (0-based)."""
        return self.steps_before + self.batches_done

    @property
    def finished(self) -> bool:
        return self.batches_done == self.batches

    @property
    def mean_loss(self) -> float:
        """Mean training loss per target token so far (waits for the device)."""
        return float(self.loss_sum) / max(self.tokens, 1)


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


def run_epoch(model: Seq2Seq, batches: Sequence[Batch], optimizer: torch.optim.Optimizer, config: TrainConfig,
              device: torch.device, scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None,
              progress: EpochProgress, loss_limit: float, learning_rate: LearningRate | None = None,
              should_stop: Callable[[], bool] = lambda: False,
              batch_callback: Callable[[EpochProgress], None] | None = None) -> EpochProgress:
    """Continue the epoch ``progress`` describes over ``batches`` (from ``progress.batches_done`` on), one
    optimizer step a batch, until its end or until ``should_stop()`` after a batch. Returns the updated progress.
    The running loss is checked every ``CHECK_EVERY`` batches and at the end (:func:`check_divergence`)."""
    start = time.perf_counter()
    remaining = batches[progress.batches_done :]
    for batch in tqdm(remaining, desc=f"epoch {progress.epoch}", disable=not sys.stderr.isatty(), leave=False,
                      initial=progress.batches_done, total=len(batches)):
        if device.type == "cuda":
            batch = batch.pin_memory()
        batch = batch.to(device, non_blocking=True)
        if learning_rate is not None:
            learning_rate.before_step(progress.step)
        loss = train_batch(model, batch, optimizer, config.clip_grad, config.teacher_forcing, scaler, amp_dtype,
                           config.label_smoothing)
        progress.loss_sum += loss * batch.target_tokens
        progress.tokens += batch.target_tokens
        progress.batches_done += 1
        if progress.batches_done % CHECK_EVERY == 0 or progress.finished:
            check_divergence(progress, loss_limit, config)
        if batch_callback is not None:
            batch_callback(progress)
        if should_stop():
            break
    progress.seconds += time.perf_counter() - start
    return progress


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


@torch.no_grad()
def validate(model: Seq2Seq, batches: Sequence[Batch], sources: Sequence[list[int]], references: Sequence[str],
             target_vocab: Vocabulary, device: torch.device, amp_dtype: torch.dtype | None,
             max_len: int) -> Validation:
    """Validation loss (teacher-forced, no smoothing) and BLEU of greedy translations of ``sources`` (id lists
    ending with <eos>) against ``references`` (plain text)."""
    model.eval()
    total = torch.zeros((), device=device)
    tokens = 0
    for batch in batches:
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += sequence_loss(logits, batch.tgt_out, reduction="sum")
        tokens += batch.target_tokens
    found = decode_in_batches(model, sources, max_len=max_len, batch_size=EVAL_BATCH_SIZE)
    hypotheses = [target_vocab.decode(ids) for ids in found.tokens]
    return Validation(loss=float(total) / max(tokens, 1), bleu=corpus_bleu(hypotheses, list(references)))


# ---------------------------------------------------------------------------------------------- the loop

def train_model(train_pairs: Sequence[tuple[str, str]], valid_pairs: Sequence[tuple[str, str]],
                source_vocab: Vocabulary, target_vocab: Vocabulary, model_config: ModelConfig, config: TrainConfig,
                out_model: Path, out_last: Path, out_history: Path, resume_path: Path | None = None,
                metadata: Metadata | None = None, threads: int | None = None, log: logging.Logger | None = None,
                epoch_callback: Callable[[int], None] | None = None,
                batch_callback: Callable[[EpochProgress], None] | None = None) -> dict:
    """Train a :class:`Seq2Seq`; when training ends, write the best checkpoint (or the average of the kept
    epochs', ``config.average``), the last training state and history.tsv (none of them exists before: the best
    weights wait inside the resume state).

    ``resume_path`` (not a Snakemake output) gets the full training state after every epoch, and after the
    last finished batch when SIGTERM or SIGINT stops the run (which then raises :class:`Interrupted`); a
    compatible one found at start is resumed from, mid-epoch if it was saved so. A diverging loss raises
    :class:`TrainingDiverged` and publishes nothing. ``epoch_callback(epoch)`` runs after each epoch's state is
    saved, ``batch_callback(progress)`` after each batch (tests raise or signal from them to simulate a kill).
    Returns a summary dict.
    """
    log = log or logging.getLogger(__name__)
    out_model, out_last, out_history = Path(out_model), Path(out_last), Path(out_history)
    device = resolve_device(config.device)
    if device.type == "cpu":
        log.info("training on the CPU with %d threads", set_cpu_threads(threads))
        tune_cpu_runtime()
    amp_dtype, use_scaler = resolve_amp(config.amp, device)
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    model = Seq2Seq(model_config).to(device)
    optimizer = build_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    metadata = replace(metadata or Metadata(), training=config.to_dict(),
                       longest_source_words=max((len(s.split()) for s, _ in train_pairs), default=0),
                       parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))

    train_examples = encode_pairs(train_pairs, source_vocab, target_vocab, model.max_source_length)
    valid_examples = encode_pairs(valid_pairs, source_vocab, target_vocab, model.max_source_length)
    if not train_examples or not valid_examples:
        raise ValueError(f"need training and validation pairs, got {len(train_examples)} and {len(valid_examples)}")
    batching = {"batch_size": None, "batch_tokens": config.batch_tokens} if config.batch_tokens else {
        "batch_size": config.batch_size}
    valid_batches = make_batches(valid_examples, EVAL_BATCH_SIZE, shuffle=False, seed=0)
    valid_sources = [source for source, _ in valid_examples]
    valid_references = [target for _, target in valid_pairs]
    max_len = max(len(t) for _, t in valid_examples) + 5
    # What a resume must match. The code is part of it: a run resumed after an edit of the model or the loop
    # would mix two versions (Snakemake reruns `train` after such an edit; this makes it start afresh).
    identity = {"model config": model_config.to_dict(), "training config": config.to_dict(),
                "vocabularies": [source_vocab.fingerprint(), target_vocab.fingerprint()],
                "package code": dependencies.source_fingerprint(__file__)}
    metric, patience = config.early_stopping["metric"], config.early_stopping["patience"]
    first_epoch = make_batches(train_examples, shuffle=True, seed=config.seed, epoch=1, **batching)
    scheduler = LearningRate(optimizer, config, len(first_epoch))

    state = resume_training(resume_path, model, optimizer, scheduler, scaler, identity, log) if (
        resume_path is not None and Path(resume_path).exists()) else None
    resumed_from = state.epoch if state is not None else None
    state = state or TrainingState()
    writer = open_tensorboard(out_model.parent / "tensorboard") if config.tensorboard else None

    loss_limit = divergence_limit(len(target_vocab))
    stop_reason = "epochs"
    start = time.perf_counter() - state.elapsed_seconds
    stop = StopSignals()

    def save_state(what: str) -> None:
        """Save the resume state; a full disk says which progress it lost and which state is kept."""
        state.elapsed_seconds = time.perf_counter() - start
        try:
            save_training(resume_path, model, optimizer, scheduler, scaler, state, source_vocab, target_vocab,
                          metadata, identity)
        except DiskFullError as error:
            raise DiskFullError(f"{what} could not be saved, so a rerun starts from the state saved before it: "
                                f"{error}") from None

    with stop.active():
        while state.epoch < config.epochs and not stop():
            if state.bad_epochs >= patience:
                stop_reason = "early_stopping"
                break
            if config.max_minutes is not None and state.elapsed_seconds >= 60 * config.max_minutes:
                stop_reason = "max_minutes"
                break
            epoch = state.epoch + 1
            batches = first_epoch if epoch == 1 else make_batches(train_examples, shuffle=True, seed=config.seed,
                                                                  epoch=epoch, **batching)
            progress = EpochProgress(epoch, len(batches), state.batches_done,
                                     state.partial_loss_sum.to(device) if state.batches_done
                                     else torch.zeros((), device=device),
                                     state.partial_tokens, state.partial_seconds, state.steps)
            if not state.batches_done:
                scheduler.before_step(progress.step)  # the epoch's rate, for its history row
                state.epoch_learning_rate = optimizer.param_groups[0]["lr"]
            learning_rate = state.epoch_learning_rate
            run_epoch(model, batches, optimizer, config, device, scaler, amp_dtype, progress, loss_limit, scheduler,
                      stop, batch_callback)
            if not progress.finished:  # stopped by a signal: keep the finished batches
                check_divergence(progress, loss_limit, config)  # never save a state that has gone bad
                state.batches_done, state.partial_loss_sum = progress.batches_done, progress.loss_sum.cpu()
                state.partial_tokens, state.partial_seconds = progress.tokens, progress.seconds
                if resume_path is not None:
                    save_state(f"epoch {epoch}'s first {progress.batches_done} batches")
                break
            epoch_start = time.perf_counter()
            valid = validate(model, valid_batches, valid_sources, valid_references, target_vocab, device, amp_dtype,
                             max_len)
            if not math.isfinite(valid.loss):
                raise TrainingDiverged(f"training diverged in epoch {epoch}: the validation loss is {valid.loss}; "
                                       f"lower training.learning_rate (now {config.learning_rate:g}); nothing was "
                                       f"published")
            scheduler.after_epoch(valid.loss)
            score = valid.bleu if metric == "valid_bleu" else -valid.loss
            train_loss = progress.mean_loss
            state.history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid.loss,
                                  "valid_bleu": valid.bleu, "learning_rate": learning_rate,
                                  "seconds": progress.seconds + time.perf_counter() - epoch_start,
                                  "pairs_per_s": len(train_examples) / max(progress.seconds, 1e-9), "score": score})
            state.epoch, state.steps = epoch, state.steps + progress.batches
            state.batches_done, state.partial_loss_sum, state.partial_tokens, state.partial_seconds = 0, None, 0, 0.0
            weights = cpu_state(model)
            if state.best_score is None or score > state.best_score:
                state.best_score, state.best_epoch, state.bad_epochs, state.best_model_state = score, epoch, 0, weights
            else:
                state.bad_epochs += 1
            keep_for_average(state, epoch, weights, config.average["epochs"], config.average["select"])
            state.elapsed_seconds = time.perf_counter() - start
            if resume_path is not None:
                save_state(f"epoch {epoch}")
            row = state.history[-1]
            log.info("epoch %d/%d train_loss %.4f valid_loss %.4f valid_bleu %.2f lr %.3g %.1fs %.0f pairs/s%s",
                     epoch, config.epochs, train_loss, valid.loss, valid.bleu, learning_rate, row["seconds"],
                     row["pairs_per_s"], " (best)" if state.best_epoch == epoch else "")
            if writer is not None:
                for name in ("train_loss", "valid_loss", "valid_bleu", "learning_rate", "pairs_per_s"):
                    writer.add_scalar(name, row[name], epoch)
                writer.flush()
            if epoch_callback is not None:
                epoch_callback(epoch)
    if stop():
        if writer is not None:
            writer.close()
        where = (f"in epoch {state.epoch + 1} after {state.batches_done} batches" if state.batches_done
                 else f"after epoch {state.epoch}")
        kept = (f"its state is saved in {resume_path}: run the same command again to resume"
                if resume_path is not None else "no resume state was asked for, so nothing was kept")
        name = signal.Signals(stop.received).name
        log.warning("training stopped by %s %s; %s", name, where, kept)
        raise Interrupted(f"stopped by {name} {where}; {kept}", stop.received)

    # The outputs appear only now: a killed run leaves none of them behind (only the resume state), so that no
    # later rule or user mistakes an epoch-2 model for the result.
    averaged = sorted(state.kept_states) if len(state.kept_states) >= 2 else []
    weights = average_states([state.kept_states[e] for e in averaged]) if averaged else state.best_model_state
    history = [{k: row[k] for k in HISTORY_COLUMNS} for row in state.history]
    save_model(out_model, model_config, weights, source_vocab, target_vocab,
               replace(metadata, epoch=state.best_epoch, history=history[: state.best_epoch], averaged_epochs=averaged))
    write_history(out_history, history)
    save_training(out_last, model, optimizer, scheduler, scaler, state, source_vocab, target_vocab,
                  replace(metadata, epoch=state.epoch, history=history), identity)
    if writer is not None:
        writer.close()
    if resume_path is not None:
        Path(resume_path).unlink(missing_ok=True)
    best = state.history[state.best_epoch - 1] if state.best_epoch else {}
    log.info("training stopped (%s) after %d epochs; best epoch %d%s", stop_reason, state.epoch, state.best_epoch,
             f"; model.pt averages epochs {averaged}" if averaged else "")
    return {"epochs": state.epoch, "best_epoch": state.best_epoch, "metric": metric,
            "best_valid_bleu": best.get("valid_bleu"), "best_valid_loss": best.get("valid_loss"),
            "stop_reason": stop_reason, "device": str(device), "amp": str(amp_dtype) if amp_dtype else None,
            "resumed_from_epoch": resumed_from, "seconds": state.elapsed_seconds, "history": history,
            "averaged_epochs": averaged}


def train_from_files(train: str | Path, valid: str | Path, source_vocab: str | Path, target_vocab: str | Path,
                     model: str | Path, last: str | Path, history: str | Path, model_settings: dict,
                     training: TrainConfig, resume: str | Path | None = None, metadata: Metadata | None = None,
                     threads: int | None = None, log: logging.Logger | None = None) -> dict:
    """The train stage: read splits and vocabularies, then :func:`train_model`. ``model_settings``: the config's
    model entry (attention, hidden_size, ...; vocabulary sizes are added here)."""
    log = log or logging.getLogger(__name__)
    sources, targets = load_vocabulary(source_vocab), load_vocabulary(target_vocab)
    train_pairs, valid_pairs = read_split(train), read_split(valid)
    model_config = ModelConfig.from_dict({**model_settings, "source_vocab_size": len(sources),
                                          "target_vocab_size": len(targets)})
    log.info("training %s on %d pairs (%d validation); model %s; training %s",
             (metadata or Metadata()).model_name or "?", len(train_pairs), len(valid_pairs), model_config.to_dict(),
             training.to_dict())
    return train_model(train_pairs, valid_pairs, sources, targets, model_config, training, Path(model), Path(last),
                       Path(history), Path(resume) if resume else None, metadata, threads, log)
