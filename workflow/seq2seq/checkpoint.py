"""Checkpoint files: written atomically, always read with ``torch.load(weights_only=True)``.

Every checkpoint is a dict of plain data and tensors with at least

- ``format`` (:data:`CHECKPOINT_FORMAT`), ``model_config`` (ModelConfig.to_dict()), ``model_state``,
  ``weights_sha256`` (:func:`state_digest` of ``model_state``, checked on every read: bytes damaged in the
  middle of a file can still unpickle, into garbage weights),
- ``source_vocab`` / ``target_vocab`` (Vocabulary.to_dict()),
- ``metadata``: the train rule's dict (``normalization``, ``pair``, ``model_name``) plus ``epoch``,
  ``history`` (list of per-epoch rows) and ``training`` (the TrainConfig, as a dict; absent in older files),

which is enough to translate without the rest of the pipeline. Resume checkpoints and ``last.pt``
add optimizer, scheduler, scaler, RNG and early-stopping state (see ``seq2seq.training``).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path

import torch

from .fileio import atomic_path
from .logs import InputError
from .model import ModelConfig, Seq2Seq
from .vocab import Vocabulary

CHECKPOINT_FORMAT = 2  # 2: weights_sha256 added
MODEL_KEYS = ("model_config", "model_state", "weights_sha256", "source_vocab", "target_vocab", "metadata")


class CheckpointError(InputError, ValueError):
    """A file that is missing, not a checkpoint, damaged or incompatible; the message names it."""


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], payload: dict) -> None:
    """torch.save ``payload`` (with ``format`` and the weights' digest added) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload, "weights_sha256": state_digest(payload["model_state"])},
                   tmp)


def model_payload(model: Seq2Seq, source_vocab: Vocabulary, target_vocab: Vocabulary, metadata: dict) -> dict:
    """The part of a checkpoint needed to translate: config, weights (on the CPU), vocabularies, metadata."""
    return {
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "source_vocab": source_vocab.to_dict(),
        "target_vocab": target_vocab.to_dict(),
        "metadata": metadata,
    }


def _read(path: Path, map_location: str | torch.device) -> object:
    """torch.load with weights_only=True; CheckpointError in our words (torch's messages advise loading with
    weights_only=False, which would run whatever code the file holds)."""
    if not zipfile.is_zipfile(path):
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
    (its weights do not match the digest written with them, or are not finite) or of another format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    data = _read(path, map_location)
    if not isinstance(data, dict) or "format" not in data:
        raise CheckpointError(f"{path}: not a checkpoint of this pipeline (no format number)")
    if data["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {data['format']!r} of another release, this one reads "
                              f"format {CHECKPOINT_FORMAT}; retrain the model (snakemake -R train)")
    missing = [key for key in MODEL_KEYS if key not in data]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of this pipeline (lacks {', '.join(missing)})")
    state = data["model_state"]
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(f"{path}: damaged checkpoint (model_state is not a dict of tensors)")
    if state_digest(state) != data["weights_sha256"]:
        raise CheckpointError(f"{path}: damaged checkpoint: the weights do not match the sha256 stored when it "
                              f"was written")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: damaged checkpoint: {name} holds NaN or infinite values")
    return data


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[Seq2Seq, Vocabulary, Vocabulary, dict]:
    """(model in eval mode on ``device``, source vocabulary, target vocabulary, metadata) from a checkpoint."""
    data = load_checkpoint(path, map_location="cpu")
    try:
        config = ModelConfig.from_dict(data["model_config"])
        model = Seq2Seq(config)
        model.load_state_dict(data["model_state"])
        source_vocab = Vocabulary.from_dict(data["source_vocab"])
        target_vocab = Vocabulary.from_dict(data["target_vocab"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: incompatible checkpoint ({error})") from None
    if len(source_vocab) != config.source_vocab_size or len(target_vocab) != config.target_vocab_size:
        raise CheckpointError(f"{path}: vocabulary sizes do not match the model config")
    model.to(device).eval()
    return model, source_vocab, target_vocab, dict(data["metadata"])
