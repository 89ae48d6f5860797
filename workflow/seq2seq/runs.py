"""The pipeline config as a whole: its check at start-up, the model config of each of its models, and the runs it
makes (each model once per seed), its ensembles and its baseline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .corpus import normalize
from .models import config_from_dict, with_source_positions
from .schema import ConfigError, check, deep_merge, fill_defaults, load_schema, located
from .settings import TrainConfig, prepare_settings, source_positions, training_settings


def model_settings(config: Mapping[str, Any], model: str) -> dict:
    """Architecture of one named model (defaults filled in), without its training overrides."""
    settings = {k: v for k, v in config["models"][model].items() if k != "training"}
    return with_source_positions(settings, source_positions(config["prepare"]["filter"]["max_words"]))


def model_config(settings: Mapping[str, Any], source_vocab_size: int, target_vocab_size: int,
                 where: str = "model") -> Any:
    """The model config of its family (:mod:`seq2seq.models`) from a model entry (``settings``, the schema's
    defaults filled in) and the vocabulary sizes: built and checked here, once; ConfigError naming ``where``
    for keys that do not fit together."""
    entry = {k: v for k, v in settings.items() if k != "training"}
    check(entry, "models.*", where)
    try:
        return config_from_dict({**entry, "source_vocab_size": source_vocab_size,
                                 "target_vocab_size": target_vocab_size})
    except ValueError as error:
        raise ConfigError(f"config: {where}: {error}") from None


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
    check(config, "")
    _seeds_only_from_seeds(config)  # before the defaults fill training.seed in
    fill_defaults(config, load_schema())
    _check_runs(config)
    from .download import DownloadError, local_path  # here: requests and pooch, for this check only

    for pair in config["pairs"]:
        if pair not in config["corpora"]:
            raise ConfigError(f"config: pairs: '{pair}' has no entry in corpora "
                              f"(known corpora: {', '.join(sorted(config['corpora']))})")
        prepare_settings(config, pair)
        try:  # where the download's params are computed, a bad URL would be a traceback while the DAG is built
            local_path(config["corpora"][pair]["url"])
        except DownloadError as error:
            raise ConfigError(f"config: corpora.{pair}.url: {error}") from None
    for name in config["models"]:
        model_config(model_settings(config, name), 1, 1, f"models.{name}")
        TrainConfig.from_dict(training_settings(config, name))
        _check_source_positions(config, name)
    _check_figure_sentences(config)
    return config


def _check_figure_sentences(config: Mapping[str, Any]) -> None:
    """A sentence of ``figures.sentences`` with nothing left after the models' normalization would be drawn as
    a heatmap of an empty source."""
    mode = config["prepare"]["normalization"]
    for i, sentence in enumerate(config["figures"]["sentences"]):
        if not normalize(sentence, mode):
            raise ConfigError(f"config: figures.sentences: item {i + 1} ({sentence!r}) has nothing left after "
                              f"prepare.normalization {mode!r}: nothing to draw")


def _check_source_positions(config: Mapping[str, Any], name: str) -> None:
    """The tutorial attention scores a fixed number of source positions, by default one per word the prepare
    filter lets through (plus <eos>); subword pieces outnumber words, and that default would silently cut a
    fifth of the tutorial subset's sources. With subwords it must be set."""
    entry = config["models"][name]
    if (entry.get("attention") == "tutorial" and entry.get("max_length") is None
            and config["vocab"]["type"] == "sentencepiece"):
        raise ConfigError(
            f"config: models.{name}: the tutorial attention reads at most max_length source tokens, and its "
            f"default ({source_positions(config['prepare']['filter']['max_words'])}: prepare.filter.max_words + 1) "
            f"counts words, not the subword pieces of vocab.type sentencepiece: set models.{name}.max_length "
            f"(pieces with <eos>; the train stage warns if a source is longer) or use vocab: {{type: word}}")


def pipeline_config(config_yaml: str | Path, *overrides: str | Path) -> dict:
    """The config as the pipeline sees it: ``config_yaml`` with each override file deep-merged in, in order (as
    Snakemake's ``--configfile`` does), checked, defaults filled."""
    config = yaml.safe_load(Path(config_yaml).read_text(encoding="utf-8")) or {}
    for override in overrides:
        config = deep_merge(config, yaml.safe_load(Path(override).read_text(encoding="utf-8")) or {})
    try:
        return check_config(config)
    except ConfigError as error:
        raise ConfigError(located(error, [config_yaml, *overrides])) from None
