"""One clear line for an invalid pipeline config, instead of jsonschema's dump of the whole schema."""

from __future__ import annotations

import os

import yaml
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for


def load_schema(path: str | os.PathLike[str]) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def config_error(config: dict, schema: dict) -> str | None:
    """``config: <dotted.key>: <what is wrong>`` for the most relevant violation of ``schema``, or None;
    e.g. ``config: training: Additional properties are not allowed ('epoch' was unexpected)``."""
    validator = validator_for(schema)(schema)
    error = best_match(validator.iter_errors(config))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    return f"config: {where}: {error.message}"
