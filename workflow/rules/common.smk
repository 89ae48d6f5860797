# Config validation, helpers that turn the config into rule parameters, and target lists.

import re
import sys
from dataclasses import asdict
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from seq2seq import settings
from seq2seq.dependencies import package_modules
from seq2seq.download import local_path
from seq2seq.runlock import release_stale_locks
from seq2seq.settings import ConfigError, check_config


# A run killed outright (SIGKILL, a wall-time limit) leaves Snakemake's directory lock behind: release it when
# no run of this workflow is alive any more, so that rerunning is enough (no `snakemake --unlock` first).
# Only in the process the user started; jobs that Snakemake itself starts (cluster jobs) parse this file too.
if workflow.exec_mode.item_to_choice() == "default":
    for _lock in release_stale_locks():
        print(f"Released {_lock}: left by a Snakemake run that is no longer alive.", file=sys.stderr)

try:
    check_config(config)  # validates, fills in the schema's defaults
except ConfigError as error:
    raise WorkflowError(str(error)) from None  # one line, instead of a dump of the schema

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
    return asdict(settings.prepare_settings(config, pair))


def model_settings(model):
    """Architecture of one named model variant (schema defaults filled in)."""
    return settings.model_settings(config, model)


def training_settings(model):
    """The training section with this model's own overrides (only the keys it sets) merged in."""
    return settings.training_settings(config, model)


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
