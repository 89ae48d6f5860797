"""The config schema's engine: ``config.schema.yaml`` (beside this module) is the one place that says what a key
means and what a missing key defaults to; this reads it, fills defaults in, and turns a violation into one line
naming the key: ``config: training.epochs: 0 is less than the minimum of 1``; :func:`located` adds the file and
line that set it."""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator

from .logs import InputError


SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(InputError, ValueError):
    """An invalid setting; the message reads ``config: <dotted.key>: <what is wrong>``."""

    @property
    def key(self) -> str | None:
        """The dotted key the message names (``training.epochs``), or the key the schema did not expect where
        that is the problem (``training.epoch``); None for a problem of the whole config or of several keys."""
        named = re.match(r"config: ([A-Za-z0-9_.-]+|\(top level\)): (.*)", str(self))
        if named is None:
            return None
        key, problem = named.groups()
        key = "" if key == "(top level)" else key
        unexpected = re.search(r"\('([^']+)'(?:, '[^']+')* (?:was|were) unexpected\)", problem)
        if unexpected:
            key = f"{key}.{unexpected.group(1)}" if key else unexpected.group(1)
        return key or None


# --------------------------------------------------------------------------------------------- the schema

@functools.cache
def load_schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        # libyaml's loader where PyYAML has it: 8x faster than the pure-Python one on this file, which every
        # Snakemake start and every stage job reads
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def _root_validator() -> Draft202012Validator:
    """A validator of the whole schema; ``evolve(schema=part)`` validates against a part, resolving its
    ``$ref`` in the whole."""
    return Draft202012Validator(load_schema())


def _resolve(schema: dict) -> dict:
    """Follow a local ``$ref`` (``#/definitions/...``), keeping the referring node's own keys."""
    while "$ref" in schema:
        target: Any = load_schema()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def subschema(path: str) -> dict:
    """The schema of a dotted config path; ``*`` stands for any key of a map (a model's name, a corpus)."""
    schema = _resolve(load_schema())
    for part in path.split(".") if path else []:
        schema = _resolve(schema["additionalProperties"] if part == "*" else schema["properties"][part])
    return schema


# A model's `training:` overrides the keys it sets of the top-level training section; filling the section's
# defaults into it would silently replace the run's own settings (batch size, device, ...) for that model.
_OVERRIDES = {("models", "*", "training")}


def fill_defaults(instance: Any, schema: dict, path: tuple[str, ...] = ()) -> Any:
    """``instance`` with the schema's defaults filled in where keys are missing (in place, and returned)."""
    schema = _resolve(schema)
    if not isinstance(instance, dict) or path in _OVERRIDES:
        return instance
    for key, subschema in schema.get("properties", {}).items():
        if key not in instance and "default" in _resolve(subschema):
            instance[key] = copy.deepcopy(_resolve(subschema)["default"])
        if key in instance:
            fill_defaults(instance[key], subschema, (*path, key))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                fill_defaults(value, extra, (*path, "*"))
    return instance


def schema_default(path: str) -> Any:
    """The default of the dotted config path ``path`` (an object's default comes with its own keys' defaults)."""
    schema = subschema(path)
    return fill_defaults(copy.deepcopy(schema["default"]), schema)


def schema_choices(path: str) -> list:
    """The values the schema allows at the dotted config path ``path`` (its ``enum``), in the schema's order."""
    return list(subschema(path)["enum"])


def schema_error(instance: Any, path: str = "", label: str | None = None) -> str | None:
    """``config: <dotted.key>: <what is wrong>`` for the most relevant violation of the schema of ``path``
    (the whole config when empty), or None. ``label`` names ``instance`` in the message (default: ``path``)."""
    error = best_match(_root_validator().evolve(schema=subschema(path)).iter_errors(instance))
    if error is None:
        return None
    prefix = path if label is None else label
    where = ".".join([*filter(None, prefix.split(".")), *map(str, error.absolute_path)]) or "(top level)"
    message, shown = error.message, repr(error.instance)
    if len(shown) > 80 and message.startswith(shown):  # jsonschema repeats the value: keep the line short
        size = (f" ({len(error.instance):,} items)" if isinstance(error.instance, (list, dict))
                else f" ({len(error.instance):,} characters)" if isinstance(error.instance, str) else "")
        message = f"{shown[:60]}...{size}{message[len(shown):]}"
    return f"config: {where}: {message}"


def check(instance: Any, path: str, label: str | None = None) -> None:
    message = schema_error(instance, path, label)
    if message:
        raise ConfigError(message)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """``base`` with ``override`` merged in, nested dicts key by key (as Snakemake merges config files)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_yaml(path: str | Path) -> None:
    """ConfigError naming the file, line and column of a YAML syntax error in ``path`` (Snakemake's own message
    names neither)."""
    try:
        with open(path, encoding="utf-8") as handle:
            yaml.safe_load(handle)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        # an unclosed bracket is noticed lines later: the line it opened on is where to look
        opened = (f"; {error.context} that starts at line {error.context_mark.line + 1}"
                  if error.problem and error.context and error.context_mark and error.problem_mark
                  and error.context_mark.line != error.problem_mark.line else "")
        raise ConfigError(f"{where}: not valid YAML ({error.problem or error.context}{opened})") from None


# -------------------------------------------------------------------------------- where a setting comes from

def _find_key(node: yaml.Node, key: str) -> yaml.Node | None:
    """The node of the dotted ``key`` in a composed YAML document (key names may hold dots: the longest that
    fits is taken), or None."""
    if isinstance(node, yaml.MappingNode):
        for name_node, value in sorted(node.value, key=lambda item: -len(str(item[0].value))):
            name = str(name_node.value)
            if key == name:
                return name_node
            if key.startswith(f"{name}."):
                return _find_key(value, key[len(name) + 1 :])
    elif isinstance(node, yaml.SequenceNode):
        head, _, rest = key.partition(".")
        if head.isdigit() and int(head) < len(node.value):
            return node.value[int(head)] if not rest else _find_key(node.value[int(head)], rest)
    return None


def key_origin(key: str, files: Sequence[str | os.PathLike[str]], command_line: Mapping[str, Any] | None = None
               ) -> str | None:
    """Where the dotted config ``key`` gets its value: ``--config`` when the command line sets it, else
    ``file:line`` in the last of ``files`` (in the order they are merged) that sets it; None where none does (a
    default). A path under the working directory is shown relative to it, any other one absolute."""
    if command_line and _find_key(yaml.compose(yaml.safe_dump(dict(command_line))), key) is not None:
        return "--config"
    origin = None
    for path in files:
        try:
            node = _find_key(yaml.compose(Path(path).read_text(encoding="utf-8")), key)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if node is not None:
            absolute = os.path.abspath(path)
            relative = os.path.relpath(absolute)
            origin = f"{absolute if relative.startswith('..') else relative}:{node.start_mark.line + 1}"
    return origin


def located(error: ConfigError, files: Sequence[str | os.PathLike[str]],
            command_line: Mapping[str, Any] | None = None) -> str:
    """The error's message, followed by where the key it names is set (``(override.yaml:3)``) when it is set
    somewhere."""
    origin = key_origin(error.key, files, command_line) if error.key else None
    message = f"{error} ({origin})" if origin else str(error)
    if origin == "--config" and re.search(r"'[-+]?[0-9.]+' is not of type '(integer|number)'", str(error)):
        # --config 'seeds=[1,2]' gives Snakemake's config [1, '2']: the numbers typed are not what went wrong
        message += ": Snakemake's --config reads some list items as text; give lists in a --configfile"
    return message
