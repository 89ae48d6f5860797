"""Model families behind one contract (:mod:`seq2seq.models.base`), built from one registry.

A config's model entry (``models: {name: {family: gru, attention: bahdanau, ...}}``, ``family`` defaulting to
``gru``) and a checkpoint's ``model_config`` name their family; :func:`config_from_dict` turns that into the
family's config dataclass and :func:`build_model` into the model. A new family is a model module here (its class
following :class:`seq2seq.models.base.Model`), its config dataclass (``family``, ``from_dict``, ``build``) and
one line in :data:`FAMILIES`.

This module and the config dataclasses import no torch: the pipeline checks configs with them at start-up.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Mapping

from .gru_config import GRUConfig

FAMILIES: dict[str, type] = {
    "gru": GRUConfig,
}
DEFAULT_FAMILY = "gru"  # a model entry or checkpoint without `family` (all of those before families existed)


def config_from_dict(data: Mapping[str, Any]) -> Any:
    """The config dataclass of the family ``data`` names (default gru) from the rest of ``data``: a checkpoint's
    ``model_config``, or a config's model entry with the vocabulary sizes added. ValueError (one line) for an
    unknown family, unknown keys or keys that do not fit together."""
    rest = dict(data)
    family = rest.pop("family", DEFAULT_FAMILY)
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[family].from_dict(rest)


def config_to_dict(config: Any) -> dict:
    """Plain data of a model config, with its family: what a checkpoint stores and :func:`config_from_dict`
    reads back."""
    return {"family": config.family, **asdict(config)}


def build_model(config: Any):
    """A freshly initialized model (:class:`seq2seq.models.base.Model`) of ``config``'s family."""
    return config.build()


def with_source_positions(entry: Mapping[str, Any], positions: int) -> dict:
    """A model entry with ``max_length`` (the source positions a model reads, as the GRU tutorial attention needs
    them) set to ``positions`` where its family's config has that field and the entry leaves it out."""
    config = FAMILIES.get(entry.get("family", DEFAULT_FAMILY))
    wanted = config is not None and "max_length" in {f.name for f in fields(config)}
    return {**entry, "max_length": positions} if wanted and entry.get("max_length") is None else dict(entry)
