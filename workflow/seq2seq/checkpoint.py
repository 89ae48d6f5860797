"""The checkpoint format, all of it: written atomically, always read with ``torch.load(weights_only=True)``.

A model checkpoint (``model.pt``) is a dict of plain data and tensors:

- ``format`` (:data:`CHECKPOINT_FORMAT`), ``model_config`` (:func:`seq2seq.models.config_to_dict`: the model's
  family and its config), ``model_state``,
- ``source_vocab`` / ``target_vocab`` (Vocabulary.to_dict(): a sentencepiece model travels inside),
- ``metadata`` (:class:`Metadata`: what made the model),
- ``sha256`` (:func:`content_digest` of everything else in the file, checked on every read: bytes damaged in
  the middle of a file can still unpickle, into garbage weights or a garbage random-number state, and
  ``torch.load`` does not check the zip's CRCs),

which is enough to translate without the rest of the pipeline. A training checkpoint (``resume.pt`` after
every epoch and when training is stopped by a signal, ``last.pt`` at the end) adds what resuming needs:
``optimizer_state``, ``scheduler_state``, ``scaler_state``, ``rng_state``, ``training_state``
(:class:`TrainingState`, with the best and the kept weights) and ``identity`` (what must not have changed for a
resume: model and training settings, vocabularies, the training code). The digest covers all of it.

Format 3 (the previous release) carried ``weights_sha256``, a digest of the weights alone: its model
checkpoints still load (checked against that digest); its training states are not resumed from.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import pickle
import random
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .fileio import atomic_path
from .logs import InputError
from .metadata import Metadata
from .models import build_model, config_from_dict, config_to_dict
from .models.base import Model
from .vocab import Vocabulary, vocabulary_from_dict

CHECKPOINT_FORMAT = 4  # 2: weights_sha256; 3: vocabulary types, typed metadata, identity; 4: sha256 of everything
LEGACY_FORMAT = 3  # model checkpoints of this format still load
MODEL_KEYS = ("model_config", "model_state", "source_vocab", "target_vocab", "metadata")
DIGEST_KEYS = ("sha256", "weights_sha256")  # never part of what a digest covers
LOG = logging.getLogger(__name__)


class CheckpointError(InputError, ValueError):
    """A file that is missing, not a checkpoint, damaged or incompatible; the message names it."""


@dataclass
class TrainingState:
    """The training loop's own state, saved after every epoch: where it is, what was best, and the history."""

    epoch: int = 0
    best_score: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    best_model_state: dict[str, torch.Tensor] | None = None
    kept_states: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # epoch -> weights, to average
    # Within epoch ``epoch + 1``, when a signal stopped training between two batches: the batches done, the
    # running sum of their token losses (the exact tensor, so a resumed epoch sums to the same bits), their
    # target tokens and seconds. All zero/None at an epoch's end.
    batches_done: int = 0
    partial_loss_sum: torch.Tensor | None = None
    partial_tokens: int = 0
    partial_seconds: float = 0.0
    steps: int = 0  # optimizer steps of the finished epochs (what a scheduled learning rate follows)
    epoch_learning_rate: float = 0.0  # the rate the current epoch started with (history.tsv's learning_rate)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _feed(digest: "hashlib._Hash", value: Any) -> None:
    """Feed one value of a checkpoint's plain data and tensors to ``digest``, unambiguously (each item says
    its kind and size before its content)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"t{tensor.dtype}{tuple(tensor.shape)}:".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"d{len(value)}:".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):  # a tuple may come back as a list: the same content
        digest.update(f"l{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, bool) or value is None:
        digest.update(f"{value!r};".encode())
    elif isinstance(value, int):
        digest.update(f"i{value};".encode())
    elif isinstance(value, float):
        digest.update(f"f{value.hex()};".encode())
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        digest.update(f"s{len(encoded)}:".encode() + encoded)
    elif isinstance(value, bytes):
        digest.update(f"y{len(value)}:".encode() + value)
    else:
        raise TypeError(f"a checkpoint holds plain data and tensors, not {type(value).__name__}")


def content_digest(payload: dict) -> str:
    """sha256 over everything in a checkpoint dict but its digests: names, kinds, shapes, bytes, in key order."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k not in DIGEST_KEYS})
    return digest.hexdigest()


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_checkpoint(path: str | os.PathLike[str], payload: dict) -> None:
    """torch.save ``payload`` (with ``format`` and the digest of the whole added) to ``path`` atomically; a full
    disk raises :class:`seq2seq.fileio.DiskFullError` naming ``path``, and leaves ``path`` as it was."""
    content = {"format": CHECKPOINT_FORMAT, **{k: v for k, v in payload.items() if k not in ("format", *DIGEST_KEYS)}}
    content["sha256"] = content_digest(content)
    with atomic_path(path) as tmp:
        torch.save(content, tmp)


def model_payload(config: Any, state: dict[str, torch.Tensor], source_vocab: Vocabulary,
                  target_vocab: Vocabulary, metadata: Metadata) -> dict:
    """The part of a checkpoint needed to translate: config, weights (on the CPU), vocabularies, metadata."""
    return {"model_config": config_to_dict(config), "model_state": state, "source_vocab": source_vocab.to_dict(),
            "target_vocab": target_vocab.to_dict(), "metadata": asdict(metadata)}


def save_model(path: str | os.PathLike[str], config: Any, state: dict[str, torch.Tensor],
               source_vocab: Vocabulary, target_vocab: Vocabulary, metadata: Metadata) -> None:
    """Write a model checkpoint (``model.pt``)."""
    save_checkpoint(path, model_payload(config, state, source_vocab, target_vocab, metadata))


# --------------------------------------------------------------------------------------------- reading

def _read(path: Path, map_location: str | torch.device) -> object:
    """torch.load with weights_only=True; CheckpointError in our words (torch's messages advise loading with
    weights_only=False, which would run whatever code the file holds)."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            zip_start = handle.read(4) == b"PK\x03\x04"  # a zip archive's first member; its directory is at the end
        if zip_start:
            raise CheckpointError(f"{path}: a damaged or truncated checkpoint (a zip archive as torch.save writes, "
                                  f"but cut short: its end is missing); write it again or retrain")
        raise CheckpointError(f"{path}: not a checkpoint (not a zip file as torch.save writes)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise CheckpointError(f"{path}: refused: the file holds Python objects other than tensors and plain "
                                  f"data, which this pipeline never writes") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged: {type(error).__name__})") from None
    except Exception as error:  # noqa: BLE001 - a truncated or damaged zip fails in many ways
        raise CheckpointError(f"{path}: not a readable checkpoint (damaged or truncated: "
                              f"{type(error).__name__})") from None


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint dict; CheckpointError naming the file when it is missing, not a checkpoint, damaged
    (its content does not match the digest written with it, or its weights are not finite) or of another format.
    A model checkpoint of the previous format is checked against its weights' digest."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    data = _read(path, map_location)
    if not isinstance(data, dict) or "format" not in data:
        raise CheckpointError(f"{path}: not a checkpoint of this pipeline (no format number)")
    if data["format"] not in (CHECKPOINT_FORMAT, LEGACY_FORMAT):
        raise CheckpointError(f"{path}: checkpoint format {data['format']!r} of another release, this one reads "
                              f"formats {LEGACY_FORMAT} and {CHECKPOINT_FORMAT}; retrain the model "
                              f"(snakemake -R train)")
    digest_key = "sha256" if data["format"] == CHECKPOINT_FORMAT else "weights_sha256"
    missing = [key for key in (*MODEL_KEYS, digest_key) if key not in data]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of this pipeline (lacks {', '.join(missing)})")
    state = data["model_state"]
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(f"{path}: damaged checkpoint (model_state is not a dict of tensors)")
    try:
        found = content_digest(data) if digest_key == "sha256" else state_digest(state)
    except TypeError as error:
        raise CheckpointError(f"{path}: damaged checkpoint ({error})") from None
    if found != data[digest_key]:
        what = "its content does" if digest_key == "sha256" else "the weights do"
        raise CheckpointError(f"{path}: damaged checkpoint: {what} not match the sha256 stored when it was written")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: damaged checkpoint: {name} holds NaN or infinite values")
    return data


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu"
               ) -> tuple[Model, Vocabulary, Vocabulary, Metadata]:
    """(model in eval mode on ``device``, source vocabulary, target vocabulary, metadata) from a checkpoint."""
    data = load_checkpoint(path, map_location="cpu")
    try:
        config = config_from_dict(data["model_config"])
        model = build_model(config)
        model.load_state_dict(data["model_state"])
        source_vocab = vocabulary_from_dict(data["source_vocab"])
        target_vocab = vocabulary_from_dict(data["target_vocab"])
        metadata = Metadata.from_dict(data["metadata"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: incompatible checkpoint ({error})") from None
    if len(source_vocab) != config.source_vocab_size or len(target_vocab) != config.target_vocab_size:
        raise CheckpointError(f"{path}: vocabulary sizes do not match the model config")
    model.to(device).eval()
    return model, source_vocab, target_vocab, metadata


# --------------------------------------------------------------------------------------------- training state

def rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_training(path: str | os.PathLike[str], model: Model, optimizer: torch.optim.Optimizer, scheduler: Any,
                  scaler: torch.amp.GradScaler, state: TrainingState, source_vocab: Vocabulary,
                  target_vocab: Vocabulary, metadata: Metadata, identity: dict) -> None:
    """Write a training checkpoint: the model as it is now, and everything a resume needs."""
    payload = model_payload(model.config, cpu_state(model), source_vocab, target_vocab, metadata)
    payload.update(optimizer_state=optimizer.state_dict(), scheduler_state=scheduler.state_dict(),
                   scaler_state=scaler.state_dict(), rng_state=rng_state(), training_state=asdict(state),
                   identity=identity)
    save_checkpoint(path, payload)


def resume_training(path: Path, model: Model, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: torch.amp.GradScaler, identity: dict) -> TrainingState | None:
    """Load a compatible training checkpoint into the given objects and return its state; None (with a warning
    saying why) when there is none to use, and then nothing of it is left in the objects: start fresh."""
    try:
        data = load_checkpoint(path, map_location="cpu")
    except CheckpointError as error:
        LOG.warning("not resuming, training starts afresh: %s", error)
        return None
    if data["format"] != CHECKPOINT_FORMAT:
        LOG.warning("not resuming, training starts afresh: %s: a training state of format %s, from an earlier "
                    "release", path, data["format"])
        return None
    saved = data.get("identity") or {}
    changed = [name for name in identity if saved.get(name) != identity[name]]
    if changed:
        LOG.warning("%s: %s changed since it was saved; starting fresh", path, ", ".join(changed))
        return None
    # Loading can fail halfway (a renamed parameter after a code change, fewer GPUs than were saved): keep
    # what a fresh start needs, so a failed resume leaves nothing of the checkpoint behind.
    fresh = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()), scheduler.state_dict(),
             scaler.state_dict(), rng_state())
    try:
        model.load_state_dict(data["model_state"])
        optimizer.load_state_dict(data["optimizer_state"])
        scheduler.load_state_dict(data["scheduler_state"])
        if data["scaler_state"]:
            scaler.load_state_dict(data["scaler_state"])
        state = TrainingState(**data["training_state"])
        set_rng_state(data["rng_state"])
    except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as error:
        fresh_model, fresh_optimizer, fresh_scheduler, fresh_scaler, fresh_rng = fresh
        model.load_state_dict(fresh_model)
        optimizer.load_state_dict(fresh_optimizer)
        scheduler.load_state_dict(fresh_scheduler)
        scaler.load_state_dict(fresh_scaler)
        set_rng_state(fresh_rng)
        LOG.warning("%s: cannot resume (%s); starting fresh", path, error)
        return None
    LOG.info("resuming from %s after epoch %d%s", path, state.epoch,
             f" and {state.batches_done} batches of epoch {state.epoch + 1}" if state.batches_done else "")
    return state
