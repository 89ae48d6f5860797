"""The training loop: optimizer, clipping, LR schedule, early stopping, checkpoints, history, resuming."""

from __future__ import annotations

import copy
import csv
import ctypes
import logging
import random
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor
from tqdm import tqdm

from . import dependencies
from .batching import Batch, encode_pairs, make_batches, pad_sources
from .checkpoint import load_checkpoint, model_payload, save_checkpoint
from .devices import resolve_device, set_cpu_threads
from .fileio import atomic_open
from .metrics import corpus_bleu
from .model import Seq2Seq
from .search import greedy
from .settings import ModelConfig, TrainConfig
from .vocab import EOS_INDEX, PAD_INDEX, Vocabulary

HISTORY_COLUMNS = ("epoch", "train_loss", "valid_loss", "valid_bleu", "learning_rate", "seconds", "pairs_per_s")
EVAL_BATCH_SIZE = 256


# ---------------------------------------------------------------------------------------------- one step


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
    """Cross-entropy over all positions at once, ignoring <pad>: logits [B,T,V], tgt_out [B,T].
    Same value and gradient as ``F.cross_entropy(..., ignore_index=PAD_INDEX)`` (float32); a mean over
    no real token is NaN, as there."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be mean or sum, got {reduction!r}")
    return _SequenceCrossEntropy.apply(logits.reshape(-1, logits.size(-1)).float(), tgt_out.reshape(-1),
                                       float(label_smoothing), reduction == "mean")


def tune_cpu_runtime() -> None:
    """Process-wide CPU settings for training (idempotent).

    - Denormal floats (tiny gradients late in training) cost x86 CPUs microcode assists, up to 25x slower
      matrix products: flush them to zero, which changes no result that matters.
    - Keep freed memory in glibc's heap instead of returning it to the system: otherwise each step's large
      temporaries (the [B*T,V] output) come from fresh pages, whose faults cost several percent of a step.
      Peak memory is unchanged; a no-op where glibc's mallopt is missing.
    """
    torch.set_flush_denormal(True)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD: allocations below 32 MiB come from the heap
        libc.mallopt(-1, 512 * 2**20)  # M_TRIM_THRESHOLD: keep up to 512 MiB free at the heap top
    except (OSError, AttributeError):
        pass


def train_batch(
    model: Seq2Seq,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    clip_grad: float,
    teacher_forcing: float,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """One optimizer step on ``batch`` (already on the model's device).

    Returns the detached mean token loss as a 0-dim tensor, so the step needs no host sync; ``float()`` it
    where the number is needed.
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
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
    return loss.detach()


# ---------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_loss(model: Seq2Seq, batches: Sequence[Batch], device: torch.device,
                  amp_dtype: torch.dtype | None = None) -> float:
    """Teacher-forced mean token cross-entropy (no smoothing) over ``batches``."""
    model.eval()
    total = torch.zeros((), device=device)
    tokens = 0
    for batch in batches:
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += sequence_loss(logits, batch.tgt_out, reduction="sum")
        tokens += batch.target_tokens
    return float(total) / max(tokens, 1)


@torch.no_grad()
def greedy_bleu(model: Seq2Seq, sources: Sequence[list[int]], references: Sequence[str], target_vocab: Vocabulary,
                device: torch.device, max_len: int, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Corpus BLEU of greedy translations of ``sources`` (id lists ending with <eos>) against ``references``."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    hypotheses: list[str] = [""] * len(sources)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        src, lengths = pad_sources([sources[i] for i in rows])
        result = greedy(model, src.to(device), lengths.to(device), max_len)
        for i, tokens in zip(rows, result.tokens):
            hypotheses[i] = " ".join(target_vocab.decode(tokens))
    return corpus_bleu(hypotheses, list(references))


# ---------------------------------------------------------------------------------------------- setup helpers


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


def cut_source(ids: list[int], limit: int | None) -> list[int]:
    """Cut a source id list (ending with <eos>) to at most ``limit`` ids, keeping the <eos>."""
    if limit is None or len(ids) <= limit:
        return ids
    return ids[: limit - 1] + [EOS_INDEX]


def write_history(path: Path, rows: Sequence[dict]) -> None:
    """Rewrite history.tsv atomically."""
    formats = {"epoch": "{:d}", "train_loss": "{:.6f}", "valid_loss": "{:.6f}", "valid_bleu": "{:.4f}",
               "learning_rate": "{:.6g}", "seconds": "{:.3f}", "pairs_per_s": "{:.1f}"}
    with atomic_open(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in rows:
            writer.writerow([formats[c].format(row[c]) for c in HISTORY_COLUMNS])


def _rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# ---------------------------------------------------------------------------------------------- the loop


def train_model(
    train_pairs: Sequence[tuple[str, str]],
    valid_pairs: Sequence[tuple[str, str]],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    model_config: ModelConfig,
    config: TrainConfig,
    out_model: Path,
    out_last: Path,
    out_history: Path,
    resume_path: Path | None = None,
    metadata: dict | None = None,
    threads: int | None = None,
    log: logging.Logger | None = None,
    epoch_callback: Callable[[int], None] | None = None,
) -> dict:
    """Train a :class:`Seq2Seq`; when training ends, write the best checkpoint, the last full state and
    history.tsv (none of them exists before: the best weights wait inside the resume state).

    ``resume_path`` (not a Snakemake output) gets the full training state after every epoch; a
    compatible one found at start is resumed from. ``epoch_callback(epoch)`` runs after each epoch's
    files are written (tests raise from it to simulate a kill). Returns a summary dict.
    """
    log = log or logging.getLogger(__name__)
    out_model, out_last, out_history = Path(out_model), Path(out_last), Path(out_history)
    resume_path = Path(resume_path) if resume_path is not None else None
    # what made the model, for readers of model.pt (seq2seq-translate warns about longer inputs than these)
    metadata = {**(metadata or {}), "training": config.to_dict(),
                "longest_source_words": max((len(source.split()) for source, _ in train_pairs), default=0)}
    device = resolve_device(config.device)
    if device.type == "cpu":
        threads = set_cpu_threads(threads)
        log.info("training on the CPU with %d threads", threads)
        tune_cpu_runtime()
    amp_dtype, use_scaler = resolve_amp(config.amp, device)
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    model = Seq2Seq(model_config).to(device)
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    limit = model.max_source_length
    train_examples = [(cut_source(s, limit), t) for s, t in encode_pairs(train_pairs, source_vocab, target_vocab)]
    valid_examples = [(cut_source(s, limit), t) for s, t in encode_pairs(valid_pairs, source_vocab, target_vocab)]
    if not train_examples or not valid_examples:
        raise ValueError(f"need training and validation pairs, got {len(train_examples)} and {len(valid_examples)}")
    valid_batches = make_batches(valid_examples, EVAL_BATCH_SIZE, shuffle=False, seed=0)
    valid_sources = [source for source, _ in valid_examples]
    valid_references = [target for _, target in valid_pairs]
    max_len = max(len(t) for _, t in valid_examples) + 5
    # The code is part of what a resume must match: a run resumed after an edit of the model or the loop
    # would mix two versions. (Snakemake reruns `train` after such an edit; this makes it start afresh.)
    fingerprints = {"source": source_vocab.fingerprint(), "target": target_vocab.fingerprint()}
    code = dependencies.source_fingerprint(__file__)
    metric = config.early_stopping["metric"]
    patience = config.early_stopping["patience"]

    state = {"epoch": 0, "best_score": None, "best_epoch": 0, "bad_epochs": 0, "history": [],
             "elapsed_seconds": 0.0, "best_model_state": None}
    resumed_from = None
    if resume_path is not None and resume_path.exists():
        resumed_from = _try_resume(resume_path, model, optimizer, scheduler, scaler, state, model_config, config,
                                   fingerprints, code, log)

    show_bar = sys.stderr.isatty()
    stop_reason = "epochs"
    start = time.perf_counter() - state["elapsed_seconds"]
    while state["epoch"] < config.epochs:
        if state["bad_epochs"] >= patience:
            stop_reason = "early_stopping"
            break
        if config.max_minutes is not None and state["elapsed_seconds"] >= 60 * config.max_minutes:
            stop_reason = "max_minutes"
            break
        epoch = state["epoch"] + 1
        learning_rate = optimizer.param_groups[0]["lr"]
        batches = make_batches(train_examples, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch)
        epoch_start = time.perf_counter()
        total = torch.zeros((), device=device)
        tokens = 0
        for batch in tqdm(batches, desc=f"epoch {epoch}", disable=not show_bar, leave=False):
            if device.type == "cuda":
                batch = batch.pin_memory()
            batch = batch.to(device, non_blocking=True)
            loss = train_batch(model, batch, optimizer, config.clip_grad, config.teacher_forcing, scaler,
                               amp_dtype, config.label_smoothing)
            total += loss * batch.target_tokens
            tokens += batch.target_tokens
        train_loss = float(total) / max(tokens, 1)
        train_seconds = time.perf_counter() - epoch_start
        valid_loss = evaluate_loss(model, valid_batches, device, amp_dtype)
        valid_bleu = greedy_bleu(model, valid_sources, valid_references, target_vocab, device, max_len)
        scheduler.step(valid_loss)
        seconds = time.perf_counter() - epoch_start
        row = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss, "valid_bleu": valid_bleu,
               "learning_rate": learning_rate, "seconds": seconds,
               "pairs_per_s": len(train_examples) / max(train_seconds, 1e-9)}
        state["history"].append(row)
        state["epoch"] = epoch
        score = valid_bleu if metric == "valid_bleu" else -valid_loss
        if state["best_score"] is None or score > state["best_score"]:
            state.update(best_score=score, best_epoch=epoch, bad_epochs=0,
                         best_model_state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        else:
            state["bad_epochs"] += 1
        state["elapsed_seconds"] = time.perf_counter() - start
        if resume_path is not None:
            save_checkpoint(resume_path, _full_state(model, optimizer, scheduler, scaler, state, config,
                                                     fingerprints, code, source_vocab, target_vocab, metadata))
        log.info("epoch %d/%d train_loss %.4f valid_loss %.4f valid_bleu %.2f lr %.3g %.1fs %.0f pairs/s%s",
                 epoch, config.epochs, train_loss, valid_loss, valid_bleu, learning_rate, seconds,
                 row["pairs_per_s"], " (best)" if state["best_epoch"] == epoch else "")
        if epoch_callback is not None:
            epoch_callback(epoch)

    # The outputs appear only now, when training has ended: a killed run leaves none of them behind (only the
    # resume state), so that no later rule or user mistakes an epoch-2 model for the result.
    _write_best(out_model, state, model, source_vocab, target_vocab, metadata)
    write_history(out_history, state["history"])
    save_checkpoint(out_last, _full_state(model, optimizer, scheduler, scaler, state, config, fingerprints, code,
                                          source_vocab, target_vocab, metadata))
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    best_row = state["history"][state["best_epoch"] - 1] if state["best_epoch"] else {}
    summary = {
        "epochs": state["epoch"], "best_epoch": state["best_epoch"], "metric": metric,
        "best_valid_bleu": best_row.get("valid_bleu"), "best_valid_loss": best_row.get("valid_loss"),
        "stop_reason": stop_reason, "device": str(device), "amp": str(amp_dtype) if amp_dtype else None,
        "resumed_from_epoch": resumed_from, "seconds": state["elapsed_seconds"], "history": state["history"],
    }
    log.info("training stopped (%s) after %d epochs; best epoch %d", stop_reason, state["epoch"], state["best_epoch"])
    return summary


def _write_best(path: Path, state: dict, model: Seq2Seq, source_vocab: Vocabulary, target_vocab: Vocabulary,
                metadata: dict) -> None:
    payload = model_payload(model, source_vocab, target_vocab,
                            {**metadata, "epoch": state["best_epoch"],
                             "history": [dict(r) for r in state["history"][: state["best_epoch"]]]})
    payload["model_state"] = state["best_model_state"]
    save_checkpoint(path, payload)


def _full_state(model, optimizer, scheduler, scaler, state: dict, config: TrainConfig, fingerprints: dict, code: str,
                source_vocab: Vocabulary, target_vocab: Vocabulary, metadata: dict) -> dict:
    """Everything needed to resume (and to translate): the format of the resume checkpoint and last.pt."""
    payload = model_payload(model, source_vocab, target_vocab,
                            {**metadata, "epoch": state["epoch"], "history": [dict(r) for r in state["history"]]})
    payload.update(
        vocab_fingerprints=fingerprints,
        code_fingerprint=code,
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        scaler_state=scaler.state_dict(),
        rng_state=_rng_state(),
        training_state={k: v for k, v in state.items()},
    )
    return payload


def _try_resume(path: Path, model, optimizer, scheduler, scaler, state: dict, model_config: ModelConfig,
                config: TrainConfig, fingerprints: dict, code: str, log: logging.Logger) -> int | None:
    """Load a compatible resume checkpoint into the given objects; returns its epoch, or None (start fresh)."""
    try:
        data = load_checkpoint(path, map_location="cpu")
    except ValueError as error:
        log.warning("ignoring resume checkpoint: %s", error)
        return None
    mismatches = [name for name, ours, theirs in (
        ("model config", model_config.to_dict(), data.get("model_config")),
        ("training config", config.to_dict(), (data.get("metadata") or {}).get("training")),
        ("vocabularies", fingerprints, data.get("vocab_fingerprints")),
        ("package code", code, data.get("code_fingerprint")),
    ) if ours != theirs]
    if mismatches:
        log.warning("%s: %s changed since it was saved; starting fresh", path, ", ".join(mismatches))
        return None
    # Loading can fail halfway (a renamed parameter after a code change, fewer GPUs than were saved): keep
    # what a fresh start needs, so a failed resume leaves nothing of the checkpoint behind.
    fresh_model, fresh_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    fresh_scheduler, fresh_scaler = scheduler.state_dict(), scaler.state_dict()
    fresh_state, fresh_rng = copy.deepcopy(state), _rng_state()
    try:
        model.load_state_dict(data["model_state"])
        optimizer.load_state_dict(data["optimizer_state"])
        scheduler.load_state_dict(data["scheduler_state"])
        if data["scaler_state"]:
            scaler.load_state_dict(data["scaler_state"])
        state.update(data["training_state"])
        _set_rng_state(data["rng_state"])
    except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as error:
        model.load_state_dict(fresh_model)
        optimizer.load_state_dict(fresh_optimizer)
        scheduler.load_state_dict(fresh_scheduler)
        scaler.load_state_dict(fresh_scaler)
        state.clear()
        state.update(fresh_state)
        _set_rng_state(fresh_rng)
        log.warning("%s: cannot resume (%s); starting fresh", path, error)
        return None
    log.info("resuming from %s after epoch %d", path, state["epoch"])
    return int(state["epoch"])


def train_from_files(
    train: str | Path,
    valid: str | Path,
    source_vocab: str | Path,
    target_vocab: str | Path,
    out_model: str | Path,
    out_last: str | Path,
    out_history: str | Path,
    model_settings: dict,
    training_settings: dict,
    resume: str | Path | None = None,
    metadata: dict | None = None,
    threads: int | None = None,
    log: logging.Logger | None = None,
) -> dict:
    """Read splits and vocabularies, then :func:`train_model`. ``model_settings``: the config's model
    entry (attention, hidden_size, ...; vocabulary sizes are added here); ``training_settings``: the
    training section (TrainConfig keys)."""
    from .corpus import read_split  # the data stage's reader, imported late to keep this module light

    log = log or logging.getLogger(__name__)
    sources, targets = Vocabulary.load(source_vocab), Vocabulary.load(target_vocab)
    train_pairs, valid_pairs = read_split(train), read_split(valid)
    settings = {k: v for k, v in model_settings.items() if k != "training"}
    model_config = ModelConfig.from_dict({**settings, "source_vocab_size": len(sources),
                                          "target_vocab_size": len(targets)})
    config = TrainConfig.from_dict(dict(training_settings))
    log.info("training %s on %d pairs (%d validation); model %s; training %s", (metadata or {}).get("model_name", "?"),
             len(train_pairs), len(valid_pairs), model_config.to_dict(), config.to_dict())
    return train_model(train_pairs, valid_pairs, sources, targets, model_config, config, Path(out_model),
                       Path(out_last), Path(out_history), Path(resume) if resume else None, metadata, threads, log)
