"""The pipeline's settings: the schema that owns every default, one-line validation, and each stage's settings.

``config.schema.yaml`` (beside this module) is the one place that says what a missing key means. The typed
settings of the stages (:class:`PrepareSettings`, :class:`ModelConfig`, :class:`TrainConfig`) take their field
defaults from it and check themselves against it when built, so the pipeline, a stage run by hand and a test
all get the same model from the same words. Every problem is one line naming the key:
``config: training.epochs: 0 is less than the minimum of 1``.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import yaml
from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator

from .logs import InputError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(InputError, ValueError):
    """An invalid setting; the message reads ``config: <dotted.key>: <what is wrong>``."""


# --------------------------------------------------------------------------------------------- the schema

@functools.cache
def load_schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


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


def _subschema(path: str) -> dict:
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
    schema = _subschema(path)
    return fill_defaults(copy.deepcopy(schema["default"]), schema)


def schema_choices(path: str) -> list:
    """The values the schema allows at the dotted config path ``path`` (its ``enum``), in the schema's order."""
    return list(_subschema(path)["enum"])


def schema_error(instance: Any, path: str = "", label: str | None = None) -> str | None:
    """``config: <dotted.key>: <what is wrong>`` for the most relevant violation of the schema of ``path``
    (the whole config when empty), or None. ``label`` names ``instance`` in the message (default: ``path``)."""
    error = best_match(_root_validator().evolve(schema=_subschema(path)).iter_errors(instance))
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


def _check(instance: Any, path: str, label: str | None = None) -> None:
    message = schema_error(instance, path, label)
    if message:
        raise ConfigError(message)


# --------------------------------------------------------------------------------------------- stage settings

class Section:
    """Base of the settings classes: built from a plain dict (unknown keys are an error) and checked against
    the schema of their config section ``SECTION`` when built, so every way of making one is validated once,
    with one message style."""

    SECTION: ClassVar[str]

    def __post_init__(self) -> None:
        _check(asdict(self), self.SECTION)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"config: {cls.SECTION}: unknown keys {unknown}; expected some of {sorted(names)}")
        return cls(**data)


@dataclass
class PrepareSettings(Section):
    """Settings of the prepare stage: the columns of one corpus and the ``prepare`` section."""

    SECTION = "prepare"

    source_column: int = schema_default("corpora.*.source_column")
    target_column: int = schema_default("corpora.*.target_column")
    normalization: str = schema_default("prepare.normalization")
    max_words: int = schema_default("prepare.filter.max_words")
    target_prefixes: str | list[str] | None = schema_default("prepare.filter.target_prefixes")
    valid_fraction: float = schema_default("prepare.split.valid")
    test_fraction: float = schema_default("prepare.split.test")
    seed: int = schema_default("prepare.split.seed")
    max_malformed_fraction: float = schema_default("prepare.max_malformed_fraction")
    max_line_chars: int = schema_default("prepare.max_line_chars")

    def __post_init__(self) -> None:
        _check({"normalization": self.normalization, "max_malformed_fraction": self.max_malformed_fraction,
                "max_line_chars": self.max_line_chars,
                "filter": {"max_words": self.max_words, "target_prefixes": self.target_prefixes},
                "split": {"valid": self.valid_fraction, "test": self.test_fraction, "seed": self.seed}}, "prepare")
        for name in ("source_column", "target_column"):
            _check(getattr(self, name), f"corpora.*.{name}")
        if self.source_column == self.target_column:
            raise ConfigError(f"config: corpora: source_column and target_column are both {self.source_column}")
        # Training needs validation pairs (early stopping) and evaluation test pairs: neither may be empty.
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError(f"config: prepare.split: valid ({self.valid_fraction}) and test ({self.test_fraction})"
                              f" must sum to less than 1, to leave pairs for training")


@dataclass
class VocabSettings(Section):
    """The ``vocab`` section: the vocabulary stage's settings."""

    SECTION = "vocab"

    type: str = schema_default("vocab.type")  # word | sentencepiece
    size: int = schema_default("vocab.size")
    model_type: str = schema_default("vocab.model_type")  # unigram | bpe
    min_freq: int = schema_default("vocab.min_freq")


@dataclass
class ModelConfig(Section):
    """Everything needed to rebuild a :class:`seq2seq.model.Seq2Seq` (stored in checkpoints): the vocabulary
    sizes and one entry of the config's ``models`` section."""

    SECTION = "model"

    source_vocab_size: int
    target_vocab_size: int
    attention: str  # "none" | "tutorial" | "bahdanau" | "luong"
    hidden_size: int = schema_default("models.*.hidden_size")
    embedding_size: int | None = schema_default("models.*.embedding_size")  # None -> hidden_size
    layers: int = schema_default("models.*.layers")
    bidirectional: bool = schema_default("models.*.bidirectional")
    dropout: float = schema_default("models.*.dropout")
    luong_score: str = schema_default("models.*.luong_score")
    max_length: int | None = None  # source positions (tokens incl. <eos>) of the "tutorial" attention
    tie_embeddings: bool = schema_default("models.*.tie_embeddings")  # decoder embedding = output layer [V,H]

    def __post_init__(self) -> None:
        if self.max_length is None:  # every sentence the prepare stage keeps: < max_words words, plus <eos>
            self.max_length = schema_default("prepare.filter.max_words") + 1
        _check({k: v for k, v in asdict(self).items() if not k.endswith("vocab_size")}, "models.*", "model")
        for name in ("source_vocab_size", "target_vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"config: model: {name} must be positive, got {getattr(self, name)!r}")
        if self.tie_embeddings and self.embedding_dim != self.hidden_size:
            raise ConfigError(f"config: model: tie_embeddings needs embedding_size == hidden_size (got "
                              f"{self.embedding_dim} and {self.hidden_size}); set tie_embeddings: false")

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size or self.hidden_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Build from a plain dict (a checkpoint's, or a config entry plus vocabulary sizes); unknown keys are
        an error, and the config entry's per-model ``training`` is not the model's."""
        return super().from_dict({k: v for k, v in data.items() if k != "training"})


@dataclass
class TrainConfig(Section):
    """The ``training`` section of the pipeline config (with a model's own overrides merged in)."""

    SECTION = "training"

    epochs: int = schema_default("training.epochs")
    batch_size: int = schema_default("training.batch_size")
    batch_tokens: int | None = schema_default("training.batch_tokens")
    device: str = schema_default("training.device")  # auto | cpu | cuda[:N] | mps
    optimizer: str = schema_default("training.optimizer")  # adam | sgd
    learning_rate: float = schema_default("training.learning_rate")
    weight_decay: float = schema_default("training.weight_decay")
    clip_grad: float = schema_default("training.clip_grad")
    teacher_forcing: float = schema_default("training.teacher_forcing")
    label_smoothing: float = schema_default("training.label_smoothing")
    lr_schedule: str = schema_default("training.lr_schedule")  # plateau | cosine | linear
    lr_factor: float = schema_default("training.lr_factor")
    lr_patience: int = schema_default("training.lr_patience")
    lr_warmup_steps: int = schema_default("training.lr_warmup_steps")
    lr_min: float = schema_default("training.lr_min")
    early_stopping: dict = field(default_factory=lambda: schema_default("training.early_stopping"))
    max_minutes: float | None = schema_default("training.max_minutes")
    amp: bool | str = schema_default("training.amp")  # True | False | "auto"
    seed: int = schema_default("training.seed")
    average: dict = field(default_factory=lambda: schema_default("training.average"))
    tensorboard: bool = schema_default("training.tensorboard")

    def __post_init__(self) -> None:
        for name in ("early_stopping", "average"):
            setattr(self, name, fill_defaults(dict(getattr(self, name)), _subschema(f"training.{name}")))
        super().__post_init__()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DownloadSettings(Section):
    """Where one corpus comes from (its ``corpora`` entry) and the ``download`` section."""

    SECTION = "download"

    url: str
    member: str | None = schema_default("corpora.*.member")
    sha256: str | None = schema_default("corpora.*.sha256")
    retries: int = schema_default("download.retries")
    timeout: float = schema_default("download.timeout")
    # the prepare stage's limits, applied while the file is copied: a file that prepare would refuse for its
    # long lines is refused before a copy of it is written (and before prepare reads such a line whole)
    max_line_chars: int = schema_default("prepare.max_line_chars")
    max_malformed_fraction: float = schema_default("prepare.max_malformed_fraction")

    def __post_init__(self) -> None:
        _check({"url": self.url, "member": self.member, "sha256": self.sha256}, "corpora.*", "corpora")
        _check({"retries": self.retries, "timeout": self.timeout}, "download")
        _check({"max_line_chars": self.max_line_chars, "max_malformed_fraction": self.max_malformed_fraction},
               "prepare")


@dataclass
class EvaluationSettings(Section):
    """The ``evaluation`` section."""

    SECTION = "evaluation"

    beam_size: int = schema_default("evaluation.beam_size")
    length_penalty: float = schema_default("evaluation.length_penalty")
    max_length: int = schema_default("evaluation.max_length")
    batch_size: int = schema_default("evaluation.batch_size")
    bootstrap_resamples: int = schema_default("evaluation.bootstrap_resamples")
    seed: int = schema_default("evaluation.seed")
    min_interval_sentences: int = schema_default("evaluation.min_interval_sentences")


@dataclass
class FigureSettings(Section):
    """The ``figures`` section."""

    SECTION = "figures"

    count: int = schema_default("figures.count")
    sentences: list[str] = field(default_factory=lambda: schema_default("figures.sentences"))
    format: str = schema_default("figures.format")
    grid_columns: int = schema_default("figures.grid_columns")
    seed: int = schema_default("figures.seed")
    max_length: int = schema_default("figures.max_length")
    word_level: bool = schema_default("figures.word_level")


# --------------------------------------------------------------------------------------------- the pipeline config

def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """``base`` with ``override`` merged in, nested dicts key by key (as Snakemake merges config files)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def download_settings(config: Mapping[str, Any], pair: str) -> DownloadSettings:
    corpus, prepare = config["corpora"][pair], config["prepare"]
    return DownloadSettings(url=corpus["url"], member=corpus["member"], sha256=corpus["sha256"],
                            retries=config["download"]["retries"], timeout=config["download"]["timeout"],
                            max_line_chars=prepare["max_line_chars"],
                            max_malformed_fraction=prepare["max_malformed_fraction"])


# Settings that decide how a stage runs but not what it writes: not in a rule's params, so that changing one
# reruns nothing (the stage reads them from the config). Resources (threads, memory, GPUs) are not params either.
RUN_ONLY_SETTINGS = {"download": ("retries", "timeout")}


def vocab_settings(config: Mapping[str, Any]) -> dict:
    """The keys of the ``vocab`` section that its ``type`` reads (word: ``min_freq``; sentencepiece: ``size``
    and ``model_type``): the vocab rule's params, so that a change to a key the type ignores reruns nothing."""
    vocab = config["vocab"]
    keys = ("type", "size", "model_type") if vocab["type"] == "sentencepiece" else ("type", "min_freq")
    return {key: vocab[key] for key in keys}


def prepare_settings(config: Mapping[str, Any], pair: str) -> PrepareSettings:
    corpus, prepare = config["corpora"][pair], config["prepare"]
    return PrepareSettings(
        source_column=corpus["source_column"], target_column=corpus["target_column"],
        normalization=prepare["normalization"], max_words=prepare["filter"]["max_words"],
        target_prefixes=prepare["filter"]["target_prefixes"], valid_fraction=prepare["split"]["valid"],
        test_fraction=prepare["split"]["test"], seed=prepare["split"]["seed"],
        max_malformed_fraction=prepare["max_malformed_fraction"], max_line_chars=prepare["max_line_chars"])


def model_settings(config: Mapping[str, Any], model: str) -> dict:
    """Architecture of one named model (defaults filled in), without its training overrides."""
    settings = {k: v for k, v in config["models"][model].items() if k != "training"}
    if settings.get("max_length") is None:
        # the tutorial attention sees every kept source sentence: < max_words words plus <eos>
        settings["max_length"] = config["prepare"]["filter"]["max_words"] + 1
    return settings


def training_settings(config: Mapping[str, Any], model: str) -> dict:
    """The training section with this model's own overrides (only the keys it sets) merged in."""
    return deep_merge(config["training"], config["models"][model].get("training") or {})


@dataclass(frozen=True)
class Run:
    """One training run of the pipeline: a model of the config trained with one seed. ``name`` is its folder
    under ``results/{pair}/``: the model's name, or ``<model>/seed<N>`` when the config lists several seeds."""

    model: str
    seed: int
    name: str


def training_runs(config: Mapping[str, Any], models: Sequence[str] | None = None,
                  seeds: Sequence[int] | None = None) -> list[Run]:
    """The runs of ``models`` (default: all) x ``seeds`` (default: the config's), in config order."""
    several = len(config["seeds"]) > 1
    return [Run(model, seed, f"{model}/seed{seed}" if several else model)
            for model in (models or list(config["models"])) for seed in (seeds or config["seeds"])]


def ensemble_members(config: Mapping[str, Any], name: str) -> list[Run]:
    entry = config["ensembles"][name]
    return training_runs(config, entry["models"], entry["seeds"])


def baseline(config: Mapping[str, Any]) -> str:
    """The model or ensemble every system is compared with."""
    return config["compare"]["baseline"] or next(iter(config["models"]))


def _seeds_only_from_seeds(config: dict) -> None:
    """A training section's seed would be silently replaced by each run's seed from ``seeds``."""
    sections = [("training", config.get("training") or {})]
    sections += [(f"models.{name}.training", model.get("training") or {}) for name, model in config["models"].items()]
    for where, training in sections:
        if "seed" in training:
            raise ConfigError(f"config: {where}.seed: the pipeline's runs take their seeds from `seeds` "
                              f"(e.g. seeds: [{training['seed']}])")


def _check_runs(config: dict) -> None:
    """Ensembles name models and seeds of the config and no model; the baseline is a model or an ensemble."""
    for name, entry in config["ensembles"].items():
        if name in config["models"]:
            raise ConfigError(f"config: ensembles.{name}: a model has that name; name the ensemble otherwise")
        for model in entry["models"]:
            if model not in config["models"]:
                raise ConfigError(f"config: ensembles.{name}.models: '{model}' is not a model of the config "
                                  f"(models: {', '.join(config['models'])})")
        for seed in entry["seeds"] or []:
            if seed not in config["seeds"]:
                raise ConfigError(f"config: ensembles.{name}.seeds: {seed} is not one of seeds {config['seeds']}")
    chosen = config["compare"]["baseline"]
    if chosen is not None and chosen not in config["models"] and chosen not in config["ensembles"]:
        raise ConfigError(f"config: compare.baseline: '{chosen}' is neither a model nor an ensemble of the config")


def check_config(config: dict) -> dict:
    """Validate the whole pipeline config and fill in its defaults (in place; returned). ConfigError, one line
    naming the key, for anything the schema rejects and for what it cannot express but a stage would reject
    later (split fractions summing to 1 or more, tied embeddings of another size, a pair without a corpus)."""
    # An override file merges into config.yaml's models: `name: null` there leaves that model out.
    if isinstance(config.get("models"), dict):
        config["models"] = {name: model for name, model in config["models"].items() if model is not None}
    _check(config, "")
    _seeds_only_from_seeds(config)  # before the defaults fill training.seed in
    fill_defaults(config, load_schema())
    _check_runs(config)
    for pair in config["pairs"]:
        if pair not in config["corpora"]:
            raise ConfigError(f"config: pairs lists '{pair}', but corpora has no entry '{pair}' "
                              f"(known corpora: {', '.join(sorted(config['corpora']))})")
        prepare_settings(config, pair)
    for name in config["models"]:
        try:
            ModelConfig.from_dict({**model_settings(config, name), "source_vocab_size": 1, "target_vocab_size": 1})
        except ConfigError as error:  # a check across keys: name the model
            raise ConfigError(str(error).replace("config: model:", f"config: models.{name}:", 1)) from None
        TrainConfig.from_dict(training_settings(config, name))
    return config


def check_yaml(path: str | Path) -> None:
    """ConfigError naming the file, line and column of a YAML syntax error in ``path`` (Snakemake's own message
    names neither)."""
    try:
        with open(path, encoding="utf-8") as handle:
            yaml.safe_load(handle)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({error.problem or error.context})") from None
