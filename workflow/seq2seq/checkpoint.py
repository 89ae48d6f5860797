"""Checkpoint files: written atomically, always read with ``torch.load(weights_only=True)``.

Every checkpoint is a dict of plain data and tensors with at least

- ``format`` (:data:`CHECKPOINT_FORMAT`), ``model_config`` (ModelConfig.to_dict()), ``model_state``,
- ``source_vocab`` / ``target_vocab`` (Vocabulary.to_dict()),
- ``metadata``: the train rule's dict (``normalization``, ``pair``, ``model_name``) plus ``epoch``,
  ``history`` (list of per-epoch rows) and ``training`` (the TrainConfig, as a dict; absent in older files),

which is enough to translate without the rest of the pipeline. Resume checkpoints and ``last.pt``
add optimizer, scheduler, scaler, RNG and early-stopping state (see ``seq2seq.training``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .fileio import atomic_path
from .model import ModelConfig, Seq2Seq
from .vocab import Vocabulary

CHECKPOINT_FORMAT = 1
MODEL_KEYS = ("model_config", "model_state", "source_vocab", "target_vocab", "metadata")


def save_checkpoint(path: str | os.PathLike[str], payload: dict) -> None:
    """torch.save ``payload`` (with ``format`` added) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)


def model_payload(model: Seq2Seq, source_vocab: Vocabulary, target_vocab: Vocabulary, metadata: dict) -> dict:
    """The part of a checkpoint needed to translate: config, weights (on the CPU), vocabularies, metadata."""
    return {
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "source_vocab": source_vocab.to_dict(),
        "target_vocab": target_vocab.to_dict(),
        "metadata": metadata,
    }


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint dict; ValueError naming the file when it is missing, corrupt or incompatible."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint file not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, not a torch file, disallowed pickle content, ...
        raise ValueError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a checkpoint (expected a dict, found {type(data).__name__})")
    if data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {data.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    missing = [key for key in MODEL_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
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
        raise ValueError(f"{path}: incompatible checkpoint ({error})") from error
    if len(source_vocab) != config.source_vocab_size or len(target_vocab) != config.target_vocab_size:
        raise ValueError(f"{path}: vocabulary sizes do not match the model config")
    model.to(device).eval()
    return model, source_vocab, target_vocab, dict(data["metadata"])
