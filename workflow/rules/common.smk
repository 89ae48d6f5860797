# Config validation, helpers that turn the config into rule parameters, and target lists.

import copy
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from seq2seq.configcheck import config_error, load_schema
from seq2seq.dependencies import package_modules
from seq2seq.download import local_path


# An override file merges into config.yaml's models: `name: null` there leaves that model out.
if isinstance(config.get("models"), dict):
    config["models"] = {name: model for name, model in config["models"].items() if model is not None}

# Per-model `training:` overrides as written: validate() fills the schema's defaults into them too, and those
# would override the top-level training section when merged.
_MODEL_TRAINING_OVERRIDES = {
    name: copy.deepcopy(model.get("training") or {})
    for name, model in (config.get("models") or {}).items() if isinstance(model, dict)
}

_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
_CONFIG_ERROR = config_error(config, load_schema(_SCHEMA))
if _CONFIG_ERROR:
    raise WorkflowError(_CONFIG_ERROR)  # one line, instead of validate()'s dump of the schema
validate(config, str(_SCHEMA))  # fills in the schema's defaults

for _pair in config["pairs"]:
    if _pair not in config["corpora"]:
        raise WorkflowError(
            f"config: pairs lists '{_pair}', but corpora has no entry '{_pair}' "
            f"(known corpora: {', '.join(sorted(config['corpora']))})"
        )

for _name, _model in config["models"].items():
    if _model["tie_embeddings"] and _model["embedding_size"] not in (None, _model["hidden_size"]):
        raise WorkflowError(
            f"config: models.{_name}: tie_embeddings needs embedding_size == hidden_size "
            f"(got {_model['embedding_size']} and {_model['hidden_size']}); set tie_embeddings: false"
        )

PAIRS = list(config["pairs"])
MODELS = list(config["models"])
FIGURE_FORMAT = config["figures"]["format"]
# Absolute, so that the rules find the package under `--directory` too.
PACKAGE = Path(workflow.basedir) / "workflow" / "seq2seq"


wildcard_constraints:
    pair="|".join(map(re.escape, PAIRS)) if PAIRS else "[^/]+",
    model="|".join(map(re.escape, MODELS)) if MODELS else "[^/]+",


def package_sources(script):
    """Package files that workflow/scripts/<script>.py imports, directly or not: editing one of them
    reruns the rule."""
    return package_modules(Path(workflow.basedir) / "workflow" / "scripts" / f"{script}.py", PACKAGE)


def corpus(pair):
    return config["corpora"][pair]


def corpus_url(pair):
    """The corpus URL or path of ``pair``. A relative local path is read from the working directory, else from
    the workflow's own folder (the shipped ``data/fra-eng.zip`` under ``--directory``)."""
    url = corpus(pair)["url"]
    path = local_path(url)
    if path is not None and not path.is_absolute() and not path.exists():
        shipped = Path(workflow.basedir) / path
        if shipped.exists():
            return str(shipped)
    return url


def prepare_settings(pair):
    prepare = config["prepare"]
    return {
        "source_column": corpus(pair)["source_column"],
        "target_column": corpus(pair)["target_column"],
        "normalization": prepare["normalization"],
        "max_words": prepare["filter"]["max_words"],
        "target_prefixes": prepare["filter"]["target_prefixes"],
        "valid_fraction": prepare["split"]["valid"],
        "test_fraction": prepare["split"]["test"],
        "seed": prepare["split"]["seed"],
        "max_malformed_fraction": prepare["max_malformed_fraction"],
    }


def _deep_merge(base, override):
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def model_settings(model):
    """Architecture of one named model variant (schema defaults filled in)."""
    settings = {k: v for k, v in config["models"][model].items() if k != "training"}
    if settings.get("max_length") is None:
        # the tutorial attention sees every kept source sentence: < max_words words plus <eos>
        settings["max_length"] = config["prepare"]["filter"]["max_words"] + 1
    return settings


def training_settings(model):
    """The training section with this model's own overrides (only the keys it sets) merged in."""
    return _deep_merge(config["training"], _MODEL_TRAINING_OVERRIDES.get(model, {}))


def figure_names():
    count = config["figures"]["count"] + len(config["figures"]["sentences"])
    return [f"attention_{i:02d}" for i in range(1, count + 1)]


def figure_files(pair, model):
    return [f"results/{pair}/{model}/figures/{name}.{FIGURE_FORMAT}" for name in figure_names()]


def all_targets():
    fmt = FIGURE_FORMAT
    targets = ["results/summary.tsv", "results/summary.md", "results/summary.png"]
    for pair in PAIRS:
        for model in MODELS:
            base = f"results/{pair}/{model}"
            targets += [f"{base}/metrics.json", f"{base}/translations.tsv",
                        f"{base}/figures/attention_grid.{fmt}", f"{base}/figures/learning_curve.{fmt}"]
            targets += figure_files(pair, model)
    return targets
