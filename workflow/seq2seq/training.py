"""The training loop: one step, one epoch, validation, and a run from start to published outputs.

Read :func:`train_model` from top to bottom: set up (:func:`start_session`), resume if a compatible state
exists, then for each epoch :func:`run_epoch` and :func:`validate`, keep the best weights, save the resume state;
at the end publish the outputs (none of them exists before, so a killed run leaves nothing that looks
finished). The optimizer and learning rate are in :mod:`seq2seq.optimization`; what stops a run early (a
diverging loss, SIGTERM or Ctrl-C, after which the state of the last finished batch is saved so that a rerun
continues mid-epoch to the result an uninterrupted run gives) in :mod:`seq2seq.guards`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from .batching import Batch, Example, encode_pairs, make_batches
from .checkpoint import Metadata, TrainingState, cpu_state, resume_training, save_model, save_training
from .corpus import check_normalized, read_split
from .devices import resolve_device, set_cpu_threads
from .fileio import DiskFullError
from .formats import HISTORY_COLUMNS, write_history
from .guards import CHECK_EVERY, StopSignals, TrainingDiverged, check_divergence, divergence_limit
from .logs import Interrupted
from .metrics import corpus_bleu
from .models import build_model, config_to_dict
from .models.base import Model
from .optimization import LearningRate, build_optimizer, resolve_amp, tune_cpu_runtime
from .pipeline import dependencies
from .search import decode_in_batches
from .runs import model_config
from .schema import schema_default
from .settings import TrainConfig
from .tokens import PAD_INDEX
from .vocab import Vocabulary, load_vocabulary

LOG = logging.getLogger(__name__)
VALID_BATCH_SIZE = schema_default("evaluation.batch_size")  # validation decodes in the evaluate stage's batches


# ---------------------------------------------------------------------------------------------- one step

def sequence_loss(logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy over all positions at once, ignoring <pad>: logits [B,T,V], tgt_out [B,T] -> a 0-dim
    tensor, the mean over real target tokens (or their sum)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), tgt_out.reshape(-1), ignore_index=PAD_INDEX,
                           label_smoothing=label_smoothing, reduction=reduction)


def train_batch(model: Model, batch: Batch, optimizer: torch.optim.Optimizer, clip_grad: float,
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



# ---------------------------------------------------------------------------------------------- one epoch

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


def run_epoch(model: Model, batches: Sequence[Batch], optimizer: torch.optim.Optimizer, config: TrainConfig,
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


# ---------------------------------------------------------------------------------------------- validation

@dataclass
class Validation:
    """What one pass over the validation split measured."""

    loss: float  # teacher-forced mean token cross-entropy, without label smoothing
    bleu: float  # corpus BLEU of greedy translations


@dataclass
class ValidationSet:
    """The validation split as training checks it each epoch: teacher-forced batches (for the loss), the source
    id lists and the plain-text references (for the BLEU of greedy translations), and the longest output."""

    batches: list[Batch]
    sources: list[list[int]]
    references: list[str]
    max_len: int

    @classmethod
    def of(cls, examples: Sequence[Example], pairs: Sequence[tuple[str, str]]) -> "ValidationSet":
        return cls(make_batches(examples, VALID_BATCH_SIZE, shuffle=False, seed=0),
                   [source for source, _ in examples], [target for _, target in pairs],
                   max(len(target) for _, target in examples) + 5)


@torch.no_grad()
def validate(model: Model, valid: ValidationSet, target_vocab: Vocabulary, device: torch.device,
             amp_dtype: torch.dtype | None) -> Validation:
    """Validation loss (teacher-forced, no smoothing) and BLEU of greedy translations against the references."""
    model.eval()
    total = torch.zeros((), device=device)
    tokens = 0
    for batch in valid.batches:
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += sequence_loss(logits, batch.tgt_out, reduction="sum")
        tokens += batch.target_tokens
    found = decode_in_batches(model, valid.sources, max_len=valid.max_len, batch_size=VALID_BATCH_SIZE)
    hypotheses = [target_vocab.decode(ids) for ids in found.tokens]
    return Validation(loss=float(total) / max(tokens, 1), bleu=corpus_bleu(hypotheses, valid.references))


# ---------------------------------------------------------------------------------------------- averaging

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



# ---------------------------------------------------------------------------------------------- a run

@dataclass
class TrainingData:
    """What a run learns from: normalized sentence pairs and the two vocabularies."""

    train_pairs: Sequence[tuple[str, str]]
    valid_pairs: Sequence[tuple[str, str]]
    source_vocab: Vocabulary
    target_vocab: Vocabulary


@dataclass
class TrainingFiles:
    """Where a run writes: ``model`` (the best or averaged weights), ``last`` (the final training state) and
    ``history`` appear only when training ends; ``resume`` (not a Snakemake output; None: none is kept) holds the
    training state after every epoch, and after the last finished batch when a signal stops the run."""

    model: Path
    last: Path
    history: Path
    resume: Path | None = None


@dataclass
class Hooks:
    """Called after each epoch's state is saved (with the epoch) and after each batch (with its progress); tests
    raise or send a signal from them to simulate a kill."""

    after_epoch: Callable[[int], None] | None = None
    after_batch: Callable[[EpochProgress], None] | None = None


@dataclass
class TrainingResult:
    """How a run ended. ``stop_reason``: epochs | early_stopping | max_minutes; ``history``: history.tsv's rows."""

    epochs: int
    best_epoch: int
    metric: str
    best_valid_bleu: float | None
    best_valid_loss: float | None
    stop_reason: str
    device: str
    amp: str | None
    resumed_from_epoch: int | None
    seconds: float
    history: list[dict] = field(default_factory=list)
    averaged_epochs: list[int] = field(default_factory=list)


@dataclass
class Session:
    """The parts of a run that stay the same from epoch to epoch."""

    config: TrainConfig
    model_config: Any
    data: TrainingData
    device: torch.device
    amp_dtype: torch.dtype | None
    model: Model
    optimizer: torch.optim.Optimizer
    learning_rate: LearningRate
    scaler: torch.amp.GradScaler
    metadata: Metadata
    identity: dict  # what a resume state must match
    train_examples: list[Example]
    batching: dict
    first_epoch: list[Batch]
    valid: ValidationSet
    loss_limit: float
    writer: Any = None  # TensorBoard's SummaryWriter, when asked for
    start: float = 0.0  # time.perf_counter() at the start, less the seconds of the runs it resumes

    def batches(self, epoch: int) -> list[Batch]:
        """The shuffled batches of ``epoch`` (the same for the same seed and epoch, resumed or not)."""
        if epoch == 1:
            return self.first_epoch
        return make_batches(self.train_examples, shuffle=True, seed=self.config.seed, epoch=epoch, **self.batching)


def warn_about_cut_sources(pairs: Sequence[tuple[str, str]], source_vocab: Vocabulary, limit: int) -> int:
    """Warn when a model that reads at most ``limit`` source tokens (the tutorial attention's ``max_length``)
    is trained on longer sources, which it sees cut; returns how many are."""
    lengths = [len(source_vocab.encode(source)) for source, _ in pairs]
    cut = sum(length > limit for length in lengths)
    if cut:
        LOG.warning("%d of %d training sources (%.1f%%) are longer than the model's max_length=%d tokens (with "
                    "<eos>) and are cut; the longest has %d: set the model's max_length to it to keep them whole",
                    cut, len(lengths), 100 * cut / len(lengths), limit, max(lengths))
    return cut


def pairs_fingerprint(pairs: Sequence[tuple[str, str]]) -> str:
    """sha256 of sentence pairs in order: a resume state is of the splits it was trained and validated on (the
    vocabularies alone miss a changed validation split)."""
    digest = hashlib.sha256()
    for source, target in pairs:
        digest.update(f"{source}\t{target}\n".encode())
    return digest.hexdigest()


def start_session(data: TrainingData, architecture: Any, config: TrainConfig, metadata: Metadata | None,
                  threads: int | None) -> Session:
    """Device, seeds, a fresh model, optimizer, learning rate and gradient scaler, the encoded data and batches."""
    device = resolve_device(config.device)
    if device.type == "cpu":
        LOG.info("training on the CPU with %d threads", set_cpu_threads(threads))
        tune_cpu_runtime()
    amp_dtype, use_scaler = resolve_amp(config.amp, device)
    if amp_dtype is not None:
        LOG.info("mixed precision: %s autocast%s", str(amp_dtype).removeprefix("torch."),
                 " with a gradient scaler" if use_scaler else "")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(architecture).to(device)
    optimizer = build_optimizer(model, config)
    limit = model.max_source_length
    train_examples = encode_pairs(data.train_pairs, data.source_vocab, data.target_vocab, limit)
    valid_examples = encode_pairs(data.valid_pairs, data.source_vocab, data.target_vocab, limit)
    if limit is not None:
        warn_about_cut_sources(data.train_pairs, data.source_vocab, limit)
    if not train_examples or not valid_examples:
        raise ValueError(f"need training and validation pairs, got {len(train_examples)} and {len(valid_examples)}")
    batching = {"batch_size": None, "batch_tokens": config.batch_tokens} if config.batch_tokens else {
        "batch_size": config.batch_size}
    first_epoch = make_batches(train_examples, shuffle=True, seed=config.seed, epoch=1, **batching)
    metadata = replace(metadata or Metadata(), training=config.to_dict(),
                       longest_source_words=max((len(s.split()) for s, _ in data.train_pairs), default=0),
                       parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
    # The code is part of what a resume must match: a run resumed after an edit of the model or the loop would
    # mix two versions (Snakemake reruns `train` after such an edit; this makes it start afresh).
    identity = {"model config": config_to_dict(architecture), "training config": config.to_dict(),
                "vocabularies": [data.source_vocab.fingerprint(), data.target_vocab.fingerprint()],
                "training data": [pairs_fingerprint(data.train_pairs), pairs_fingerprint(data.valid_pairs)],
                "package code": dependencies.source_fingerprint(__file__)}
    return Session(config, architecture, data, device, amp_dtype, model, optimizer,
                   LearningRate(optimizer, config, len(first_epoch)),
                   torch.amp.GradScaler(device.type, enabled=use_scaler), metadata, identity, train_examples,
                   batching, first_epoch, ValidationSet.of(valid_examples, data.valid_pairs),
                   divergence_limit(len(data.target_vocab)))


def resume_or_start(session: Session, resume: Path | None) -> tuple[TrainingState, int | None]:
    """The saved state of a compatible earlier run of this one, loaded into the session (mid-epoch if it was
    saved so), or a fresh state; and the epoch resumed after (None when fresh)."""
    state = None
    if resume is not None and resume.exists():
        state = resume_training(resume, session.model, session.optimizer, session.learning_rate, session.scaler,
                                session.identity)
    return (state, state.epoch) if state is not None else (TrainingState(), None)


def reason_to_stop(session: Session, state: TrainingState) -> str | None:
    """Why training is over before the next epoch (epochs, early_stopping, max_minutes), or None. An epoch that a
    signal interrupted is finished first: an uninterrupted run finishes the epoch that crosses ``max_minutes``."""
    config = session.config
    if state.batches_done:
        return None
    if state.epoch >= config.epochs:
        return "epochs"
    if state.bad_epochs >= config.early_stopping["patience"]:
        return "early_stopping"
    if config.max_minutes is not None and state.elapsed_seconds >= 60 * config.max_minutes:
        return "max_minutes"
    return None


def train_epoch(session: Session, state: TrainingState, stop: StopSignals,
                after_batch: Callable[[EpochProgress], None] | None) -> EpochProgress:
    """The next epoch's batches (from where a stopped one was left) until its end or a signal."""
    epoch = state.epoch + 1
    batches = session.batches(epoch)
    loss_sum = (state.partial_loss_sum.to(session.device) if state.batches_done
                else torch.zeros((), device=session.device))
    progress = EpochProgress(epoch, len(batches), state.batches_done, loss_sum, state.partial_tokens,
                             state.partial_seconds, state.steps)
    if not state.batches_done:
        session.learning_rate.before_step(progress.step)  # the epoch's rate, for its history row
        state.epoch_learning_rate = session.optimizer.param_groups[0]["lr"]
    return run_epoch(session.model, batches, session.optimizer, session.config, session.device, session.scaler,
                     session.amp_dtype, progress, session.loss_limit, session.learning_rate, stop, after_batch)


def keep_partial_epoch(state: TrainingState, progress: EpochProgress) -> None:
    """Record the finished batches of an epoch a signal stopped, so that its state can be saved and resumed."""
    state.batches_done, state.partial_loss_sum = progress.batches_done, progress.loss_sum.cpu()
    state.partial_tokens, state.partial_seconds = progress.tokens, progress.seconds


def end_epoch(session: Session, state: TrainingState, progress: EpochProgress, valid: Validation,
              valid_seconds: float) -> dict:
    """Record a finished epoch: its history row, the learning rate's reaction, the best weights so far, the
    weights kept to average; log it (and to TensorBoard). Returns the history row."""
    config, epoch = session.config, progress.epoch
    if not math.isfinite(valid.loss):
        raise TrainingDiverged(f"training diverged in epoch {epoch}: the validation loss is {valid.loss}; lower "
                               f"training.learning_rate (now {config.learning_rate:g}); nothing was published")
    session.learning_rate.after_epoch(valid.loss)
    score = valid.bleu if config.early_stopping["metric"] == "valid_bleu" else -valid.loss
    row = {"epoch": epoch, "train_loss": progress.mean_loss, "valid_loss": valid.loss, "valid_bleu": valid.bleu,
           "learning_rate": state.epoch_learning_rate, "seconds": progress.seconds + valid_seconds,
           "pairs_per_s": len(session.train_examples) / max(progress.seconds, 1e-9), "score": score}
    state.history.append(row)
    state.epoch, state.steps = epoch, state.steps + progress.batches
    state.batches_done, state.partial_loss_sum, state.partial_tokens, state.partial_seconds = 0, None, 0, 0.0
    weights = cpu_state(session.model)
    if state.best_score is None or score > state.best_score:
        state.best_score, state.best_epoch, state.bad_epochs, state.best_model_state = score, epoch, 0, weights
    else:
        state.bad_epochs += 1
    keep_for_average(state, epoch, weights, config.average["epochs"], config.average["select"])
    LOG.info("epoch %d/%d train_loss %.4f valid_loss %.4f valid_bleu %.2f lr %.3g %.1fs %.0f pairs/s%s", epoch,
             config.epochs, row["train_loss"], valid.loss, valid.bleu, row["learning_rate"], row["seconds"],
             row["pairs_per_s"], " (best)" if state.best_epoch == epoch else "")
    if session.writer is not None:
        for name in ("train_loss", "valid_loss", "valid_bleu", "learning_rate", "pairs_per_s"):
            session.writer.add_scalar(name, row[name], epoch)
        session.writer.flush()
    return row


def save_state(session: Session, state: TrainingState, resume: Path | None, what: str) -> None:
    """Save the resume state (when one is kept); a full disk says which progress it lost and what is kept."""
    state.elapsed_seconds = time.perf_counter() - session.start
    if resume is None:
        return
    try:
        save_training(resume, session.model, session.optimizer, session.learning_rate, session.scaler, state,
                      session.data.source_vocab, session.data.target_vocab, session.metadata, session.identity)
    except DiskFullError as error:
        raise DiskFullError(f"{what} could not be saved, so a rerun starts from the state saved before it: "
                            f"{error}") from None


def interruption(state: TrainingState, received: int, resume: Path | None) -> Interrupted:
    """The one-line report of a run that a signal stopped (its state already saved)."""
    where = (f"in epoch {state.epoch + 1} after {state.batches_done} batches" if state.batches_done
             else f"after epoch {state.epoch}")
    kept = (f"its state is saved in {resume}: run the same command again to resume" if resume is not None
            else "no resume state was asked for, so nothing was kept")
    name = signal.Signals(received).name
    LOG.warning("training stopped by %s %s; %s", name, where, kept)
    return Interrupted(f"stopped by {name} {where}; {kept}", received)


def publish(session: Session, state: TrainingState, files: TrainingFiles) -> tuple[list[dict], list[int]]:
    """Write model.pt (the best epoch's weights, or the mean of the kept epochs'), history.tsv and last.pt, then
    drop the resume state. Returns (history rows, averaged epochs)."""
    if state.best_model_state is None:  # reason_to_stop lets no run end before its first epoch
        raise RuntimeError(f"{files.model}: no epoch has finished, so there is no model to write")
    averaged = sorted(state.kept_states) if len(state.kept_states) >= 2 else []
    weights = average_states([state.kept_states[e] for e in averaged]) if averaged else state.best_model_state
    history = [{k: row[k] for k in HISTORY_COLUMNS} for row in state.history]
    vocabularies = (session.data.source_vocab, session.data.target_vocab)
    save_model(files.model, session.model_config, weights, *vocabularies,
               replace(session.metadata, epoch=state.best_epoch, history=history[: state.best_epoch],
                       averaged_epochs=averaged))
    write_history(files.history, history)
    save_training(files.last, session.model, session.optimizer, session.learning_rate, session.scaler, state,
                  *vocabularies, replace(session.metadata, epoch=state.epoch, history=history), session.identity)
    if files.resume is not None:
        files.resume.unlink(missing_ok=True)
    return history, averaged


def train_model(data: TrainingData, architecture: Any, config: TrainConfig, files: TrainingFiles,
                metadata: Metadata | None = None, threads: int | None = None,
                hooks: Hooks | None = None) -> TrainingResult:
    """Train a model of ``architecture``'s family (a config of :mod:`seq2seq.models`) on ``data``; when training
    ends, write ``files`` (see :class:`TrainingFiles`). A diverging loss raises
    :class:`seq2seq.guards.TrainingDiverged` and a signal :class:`seq2seq.logs.Interrupted`, both publishing
    nothing (the signal after saving the resume state)."""
    hooks = hooks or Hooks()
    session = start_session(data, architecture, config, metadata, threads)
    state, resumed_from = resume_or_start(session, files.resume)
    session.writer = open_tensorboard(files.model.parent / "tensorboard") if config.tensorboard else None
    session.start = time.perf_counter() - state.elapsed_seconds
    stop = StopSignals()
    reason = None
    with stop.active():
        while not stop() and (reason := reason_to_stop(session, state)) is None:
            progress = train_epoch(session, state, stop, hooks.after_batch)
            if not progress.finished:  # a signal between two batches: keep them
                check_divergence(progress, session.loss_limit, config)  # never save a state that has gone bad
                keep_partial_epoch(state, progress)
                save_state(session, state, files.resume, f"epoch {progress.epoch}'s first {progress.batches_done} "
                                                         f"batches")
                break
            started = time.perf_counter()
            valid = validate(session.model, session.valid, data.target_vocab, session.device, session.amp_dtype)
            end_epoch(session, state, progress, valid, time.perf_counter() - started)
            save_state(session, state, files.resume, f"epoch {progress.epoch}")
            if hooks.after_epoch is not None:
                hooks.after_epoch(progress.epoch)
    if session.writer is not None:
        session.writer.close()
    if stop.received is not None:
        raise interruption(state, stop.received, files.resume)
    history, averaged = publish(session, state, files)
    best = state.history[state.best_epoch - 1] if state.best_epoch else {}
    LOG.info("training stopped (%s) after %d epochs; best epoch %d%s", reason, state.epoch, state.best_epoch,
             f"; model.pt averages epochs {averaged}" if averaged else "")
    return TrainingResult(
        epochs=state.epoch, best_epoch=state.best_epoch, metric=config.early_stopping["metric"],
        best_valid_bleu=best.get("valid_bleu"), best_valid_loss=best.get("valid_loss"), stop_reason=reason,
        device=str(session.device), amp=str(session.amp_dtype) if session.amp_dtype else None,
        resumed_from_epoch=resumed_from, seconds=state.elapsed_seconds, history=history, averaged_epochs=averaged)


def train_from_files(train: str | Path, valid: str | Path, source_vocab: str | Path, target_vocab: str | Path,
                     model: str | Path, last: str | Path, history: str | Path, model_settings: dict,
                     training: TrainConfig, resume: str | Path | None = None, metadata: Metadata | None = None,
                     threads: int | None = None) -> TrainingResult:
    """The train stage: read splits and vocabularies, then :func:`train_model`. ``model_settings``: the config's
    model entry (family, attention, hidden_size, ...; vocabulary sizes are added here)."""
    sources, targets = load_vocabulary(source_vocab), load_vocabulary(target_vocab)
    data = TrainingData(read_split(train), read_split(valid), sources, targets)
    recorded = metadata or Metadata()  # what the checkpoint will say
    check_normalized(train, data.train_pairs, recorded.normalization)
    architecture = model_config(model_settings, len(sources), len(targets))
    LOG.info("training %s on %d pairs (%d validation); model %s; training %s",
             recorded.model_name or "a model", len(data.train_pairs), len(data.valid_pairs),
             config_to_dict(architecture), training.to_dict())
    files = TrainingFiles(Path(model), Path(last), Path(history), Path(resume) if resume else None)
    return train_model(data, architecture, training, files, metadata, threads)
