"""Settings a training run does not read, set to the schema's defaults in the train rule's params.

Snakemake reruns a job whose params changed. A run's model and training settings are its params, so without this
a setting that the run ignores, such as ``lr_factor`` under a cosine schedule or ``luong_score`` of a Bahdanau
model, would retrain it for nothing. At its default, such a setting no longer moves the params: whatever a config
gives it, the params (and so the job's settings) are the ones of a config that leaves it out, and the job trains
exactly as it did.

No stage imports this module (only the Snakefile does), so editing it reruns no job
(:mod:`seq2seq.pipeline.dependencies`).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from ..schema import schema_default

# The keys each learning-rate schedule reads and the other kind ignores (the config schema describes them).
PLATEAU_ONLY = ("lr_factor", "lr_patience")
WARMUP_DECAY_ONLY = ("lr_warmup_steps", "lr_min")


def unread_training_keys(training: Mapping[str, Any]) -> list[str]:
    """The dotted keys of a run's training settings (the schema's defaults filled in) that its training does not
    read: the other schedule's settings, ``batch_size`` under ``batch_tokens``, and ``average.select`` when
    fewer than two epochs are averaged (0 or 1 keep the best epoch's own weights)."""
    unread = list(WARMUP_DECAY_ONLY if training["lr_schedule"] == "plateau" else PLATEAU_ONLY)
    if training["batch_tokens"] is not None:
        unread.append("batch_size")
    if training["average"]["epochs"] < 2:
        unread.append("average.select")
    return unread


def unread_model_keys(model: Mapping[str, Any]) -> list[str]:
    """The keys of a model entry (defaults filled in) that its model does not read: ``luong_score`` of a GRU model
    whose attention is not ``luong``. (``max_length``, read only by the tutorial attention, stays as it is: the
    pipeline fills it in for every GRU model, and changing it there would retrain every finished run once.)"""
    if model.get("family", "gru") == "gru" and model.get("attention") != "luong":
        return ["luong_score"]
    return []


def at_defaults(settings: Mapping[str, Any], keys: list[str], section: str) -> dict:
    """A copy of ``settings`` (the config's ``section``, e.g. ``training`` or ``models.*``) with each of the
    dotted ``keys`` set to the schema's default."""
    result = copy.deepcopy(dict(settings))
    for key in keys:
        *parents, last = key.split(".")
        target = result
        for parent in parents:
            target = target[parent]
        target[last] = schema_default(f"{section}.{key}")
    return result


def training_params(training: Mapping[str, Any]) -> dict:
    """A run's training settings as the train rule's params: the keys it does not read at their defaults."""
    return at_defaults(training, unread_training_keys(training), "training")


def model_params(model: Mapping[str, Any]) -> dict:
    """A run's model settings as the train rule's params: the keys its model does not read at their defaults."""
    return at_defaults(model, unread_model_keys(model), "models.*")
