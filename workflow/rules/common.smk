# Config validation, helpers that turn the config into rule parameters, and target lists.

import hashlib
import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from seq2seq import settings
from seq2seq.pipeline import invocation, unread
from seq2seq.pipeline.dependencies import package_modules
from seq2seq.pipeline.jobs import rule_param
from seq2seq.download import local_path
from seq2seq.pipeline.runlock import release_stale_locks
from seq2seq import runs
from seq2seq.runs import baseline, check_config, ensemble_members, training_runs
from seq2seq.schema import ConfigError, located
from seq2seq.stages import STAGES

# A run killed outright (SIGKILL, a wall-time limit) leaves Snakemake's directory lock behind: release it when
# no run of this workflow is alive any more, so that rerunning is enough (no `snakemake --unlock` first).
# Only in the process the user started; jobs that Snakemake itself starts (cluster jobs) parse this file too.
if workflow.exec_mode.item_to_choice() == "default":
    for _lock in release_stale_locks():
        print(
            f"Released {_lock}: left by a Snakemake run that is no longer alive.",
            file=sys.stderr,
        )

# Command-line mistakes that Snakemake reports late or with a traceback: one line, before any work.
if workflow.exec_mode.item_to_choice() == "default":
    _problem = invocation.misplaced_target(workflow.overwrite_configfiles) or invocation.report_problem(sys.argv)
    if _problem:
        raise WorkflowError(_problem)

try:
    check_config(config)  # validates, fills in the schema's defaults
except ConfigError as error:  # one line, instead of a dump of the schema, naming the file and line of the key
    raise WorkflowError(
        located(error, [CONFIG_YAML, *workflow.overwrite_configfiles], workflow.config_settings.config)
    ) from None

# A report of results that are not this config's (Snakemake reports what is on disk, under the params given)
if workflow.exec_mode.item_to_choice() == "default":
    _stale = invocation.stale_report(sys.argv, Path.cwd(), os.environ.get("PWD"))
    if _stale:
        print(_stale, file=sys.stderr)

PAIRS = list(config["pairs"])
MODELS = list(config["models"])
RUNS = {run.name: run for run in training_runs(config)}  # trained: model x seed
ENSEMBLES = list(config["ensembles"])
SYSTEMS = [*RUNS, *ENSEMBLES]  # evaluated: every run and every ensemble
FIGURE_FORMAT = config["figures"]["format"]
# The package, as a path relative to the working directory (Snakemake changes into it before reading this):
# the rules find it under `--directory` too, and the paths recorded as the rules' inputs stay the same when
# the clone (with its results) is moved or copied to another folder, so that nothing reruns.
PACKAGE = Path(os.path.relpath(Path(workflow.basedir) / "workflow" / "seq2seq"))


def _any_of(names):
    return "|".join(map(re.escape, names)) if names else "[^/]+"


wildcard_constraints:
    pair=_any_of(PAIRS),
    run=_any_of(RUNS),
    system=_any_of(SYSTEMS),


def package_sources(stage):
    """Package files that a job of ``stage`` runs (its module, seq2seq.stages' table and the job runner, and what
    they import, directly or not): editing one of them reruns the rule."""
    stage_file = PACKAGE / f"{STAGES[stage].module}.py"
    runner = PACKAGE.parent / "scripts" / "stage.py"
    return sorted({str(stage_file), *package_modules(stage_file, PACKAGE), *package_modules(runner, PACKAGE)})


def download_settings(pair):
    """The corpus of ``pair`` and the line limits it is checked against. A relative local path is read from the
    working directory, else from the workflow's own folder (the shipped ``data/fra-eng.zip`` under
    ``--directory``). Retries and timeouts are left out: they cannot change the file (the script reads them)."""
    download = asdict(settings.download_settings(config, pair))
    for key in settings.RUN_ONLY_SETTINGS["download"]:
        del download[key]
    path = local_path(download["url"])
    if path is not None and not path.is_absolute() and not path.exists():
        shipped = Path(workflow.basedir) / path
        if shipped.exists():
            download["url"] = os.path.relpath(shipped)  # relative: a moved clone does not download again
    return download


def local_corpus(pair):
    """The corpus file of ``pair`` where its URL is a local path that exists: an input of the download, so that
    replacing the file (a newer export at the same path) downloads it again, and the stages after it rerun; with
    ``sha256: null`` nothing else would notice. Nothing for a web URL, or for a missing file (the stage names it
    in one line)."""
    path = local_path(download_settings(pair)["url"])
    return [str(path)] if path is not None and path.is_file() else []


def prepare_settings(pair):
    return asdict(settings.prepare_settings(config, pair))


def vocab_files(pair):
    """The vocab stage's outputs: two JSONs, and for sentencepiece the two models beside them."""
    base = f"results/{pair}/vocab"
    files = {"source": f"{base}/source.json", "target": f"{base}/target.json"}
    if config["vocab"]["type"] == "sentencepiece":
        files.update(source_model=f"{base}/source.model", target_model=f"{base}/target.model")
    return files


def model_settings(run):
    """Architecture of the run's model (schema defaults filled in; keys its model does not read at their
    defaults, so that changing them retrains nothing)."""
    return unread.model_params(runs.model_settings(config, RUNS[run].model))


def training_settings(run):
    """The training section with the model's own overrides (only the keys it sets) and the run's seed; keys the
    run does not read (the other learning-rate schedule's, ...) at their defaults, so that changing them
    retrains nothing."""
    training = settings.training_settings(config, RUNS[run].model)
    return {**unread.training_params(training), "seed": RUNS[run].seed}


def system_checkpoints(wildcards):
    """The checkpoint of a run, or the members' checkpoints of an ensemble."""
    members = (
        ensemble_members(config, wildcards.system)
        if wildcards.system in config["ensembles"]
        else [RUNS[wildcards.system]]
    )
    return [f"results/{wildcards.pair}/{run.name}/model.pt" for run in members]


def text_digest(values):
    """sha256 of free text from the config (sentences): stands for it in a rule's params. Snakemake 9 writes a
    job's params unescaped into the report's inline <script>, so text from a config, a file people share, would
    run as script in the report, a file people open; the digest still reruns the rule when the text changes,
    and the script reads the text itself from the config."""
    digest = hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


def figure_settings():
    """The figures section, its sentences replaced by their digest (see text_digest)."""
    return {**config["figures"], "sentences": text_digest(config["figures"]["sentences"])}


def figure_names():
    count = config["figures"]["count"] + len(config["figures"]["sentences"])
    return [f"attention_{i:02d}" for i in range(1, count + 1)]


def figure_files(pair, run):
    return [f"results/{pair}/{run}/figures/{name}.{FIGURE_FORMAT}" for name in figure_names()]


def summary_labels():
    """[pair, system, model or ensemble, seed or None] of every evaluated system, in the order of SYSTEMS."""
    labels = []
    for pair in PAIRS:
        for system in SYSTEMS:
            run = RUNS.get(system)
            labels.append([pair, system, run.model if run else system, run.seed if run else None])
    return labels


def all_targets():
    fmt = FIGURE_FORMAT
    targets = [
        "results/summary.tsv",
        "results/summary.md",
        "results/summary.png",
        "results/comparisons.tsv",
        "results/explorer.html",
    ]
    for pair in PAIRS:
        # Every output of the vocab rule, the sentencepiece models included: Snakemake checks a rule's params
        # and code only when all its outputs have metadata, so an output that nothing requests and that does
        # not exist yet (word -> sentencepiece) would leave the vocab rule unplanned, with training planned.
        targets += vocab_files(pair).values()
        for system in SYSTEMS:
            base = f"results/{pair}/{system}"
            targets += [f"{base}/metrics.json", f"{base}/translations.tsv"]
        for run in RUNS:
            base = f"results/{pair}/{run}"
            targets += [f"{base}/figures/attention_grid.{fmt}", f"{base}/figures/learning_curve.{fmt}"]
            targets += figure_files(pair, run)
    return targets
