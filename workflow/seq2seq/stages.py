"""Every stage, described once: the function that does it, its files, its settings and options, and how a
Snakemake job of its rule passes them. The command line (:mod:`seq2seq.cli`, ``python -m seq2seq STAGE``), the
Snakemake jobs (:mod:`seq2seq.pipeline.jobs`, one script for every rule) and the rules' code inputs
(``package_sources`` in ``workflow/rules/common.smk``) all read this table.

No torch here (the functions are named, imported when a stage runs): the pipeline reads this at start-up.
"""

from __future__ import annotations

import argparse
import math
import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from .metadata import Metadata
from .schema import schema_default
from .settings import (
    DownloadSettings,
    EvaluationSettings,
    FigureSettings,
    PrepareSettings,
    TrainConfig,
    VocabSettings,
)


def yaml_value(text: str) -> Any:
    """An option's value as YAML (argparse turns the error into a usage line)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise argparse.ArgumentTypeError(f"not valid YAML: {text!r} ({problem})") from None


def positive_int(text: str) -> int:
    """A count of at least 1 (argparse turns the error into a usage line)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1 expected, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A positive, finite number (seconds, minutes; argparse turns the error into a usage line)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):
        raise argparse.ArgumentTypeError(f"a positive number expected, got {text!r}")
    return value


class ModelEntry:
    """Marks the train stage's model entry: ``--family`` and the config fields of every model family as options;
    the stage gets the given ones as a dict (a config's ``models`` entry), checked where the model is built."""


def device_for_job(device: str, gpus: int) -> str:
    """The device setting a Snakemake job runs with: ``auto`` becomes ``cpu`` when the job holds no GPU (its
    ``gpu`` resource is 0), so that no job uses a card the scheduler did not give it; anything else as given."""
    return "cpu" if device == "auto" and gpus == 0 else device


REQUIRED = object()  # the default of an ``extra`` option that the command line must give


@dataclass(frozen=True)
class Stage:
    """A stage: ``function`` (``module:name`` in the package), its file arguments (``name: help``; a trailing
    ``...`` in the help: several paths), the settings classes whose fields become options (``argument name:
    class``), other options (``name: (default, help, parse)``; default :data:`REQUIRED`: no default), ``label``
    (its logger and its messages: "training failed: ..."), and ``job``: the arguments other than files of a
    Snakemake job of its rule (which names its inputs and outputs as the function's file arguments;
    ``job_skips``: rule files that are not)."""

    function: str
    files: dict[str, str]
    label: str
    job: Callable[[Any], dict[str, Any]]
    settings: dict[str, type] = dataclasses.field(default_factory=dict)
    extra: dict[str, tuple[Any, str, Callable[[str], Any]]] = dataclasses.field(default_factory=dict)
    job_skips: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The package module that does the work (``training``)."""
        return self.function.split(":")[0]

    @property
    def run(self) -> Callable[..., Any]:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)

    @property
    def doc(self) -> str:
        return self.run.__doc__ or ""


def _train_job(smk: Any) -> dict[str, Any]:
    training = TrainConfig(**smk.params.training)
    training.device = device_for_job(training.device, smk.resources.get("gpu", 0))
    return {"model_settings": dict(smk.params.model), "training": training, "resume": smk.params.resume,
            "metadata": Metadata(**smk.params.metadata), "threads": smk.threads}


STAGES: dict[str, Stage] = {
    "download": Stage(
        "download:download_corpus", {"raw": "raw text file to write, e.g. data/raw/fra-eng.txt"}, "download",
        # retries and timeouts come from the config: they are not params, so that changing them reruns nothing
        lambda smk: {"settings": DownloadSettings(**smk.params.settings, **smk.config["download"])},
        {"settings": DownloadSettings},
        job_skips=("corpus",)),  # a local corpus, an input so that replacing it reruns; the URL in settings names it
    "prepare": Stage(
        "corpus:prepare_corpus", {"raw": "raw tab-separated pairs", "train": "train split to write",
                                  "valid": "validation split to write", "test": "test split to write",
                                  "stats": "stats.json to write"}, "prepare",
        lambda smk: {"settings": PrepareSettings(**smk.params.settings)}, {"settings": PrepareSettings}),
    "vocab": Stage(
        "vocab:write_vocabularies", {"train": "train split", "source": "source vocabulary JSON to write",
                                     "target": "target vocabulary JSON to write"}, "vocab",
        lambda smk: {"settings": VocabSettings(**smk.params.settings)}, {"settings": VocabSettings},
        job_skips=("source_model", "target_model")),  # the sentencepiece models come with the JSONs
    "train": Stage(
        "training:train_from_files", {
            "train": "train split", "valid": "validation split", "source_vocab": "source vocabulary JSON",
            "target_vocab": "target vocabulary JSON", "model": "best checkpoint to write (model.pt)",
            "last": "last training state to write (last.pt)", "history": "history.tsv to write"}, "training",
        _train_job, {"model_settings": ModelEntry, "training": TrainConfig, "metadata": Metadata},
        {"resume": (None, "resume state, kept between runs (default: resume.pt beside --model)", str),
         "threads": (None, "CPU threads (default: all available)", positive_int)}),
    "evaluate": Stage(
        "evaluation:evaluate_model", {
            "models": "checkpoint(s) to evaluate, several for an ensemble ...", "test": "test split",
            "translations": "translations.tsv to write", "metrics": "metrics.json to write",
            "attention": "attention.json.gz to write"}, "evaluation",
        lambda smk: {"settings": EvaluationSettings(**smk.params.settings), "threads": smk.threads,
                     "device": device_for_job("auto", smk.resources.get("gpu", 0))},
        {"settings": EvaluationSettings},
        {"threads": (None, "CPU threads", positive_int), "device": ("auto", "auto, cpu, cuda, cuda:1, ...", str)}),
    "figures": Stage(
        "figures:draw_figures", {
            "model": "checkpoint", "test": "test split", "history": "history.tsv of the run",
            "attention": "one heatmap file per sentence (count + sentences of them) ...",
            "grid": "the grid figure to write", "curve": "the learning curve to write"}, "figures",
        # the sentences come from the config: the params hold only their digest (see text_digest in common.smk)
        lambda smk: {"settings": FigureSettings(**{**smk.params.settings,
                                                   "sentences": smk.config["figures"]["sentences"]})},
        {"settings": FigureSettings}),
    "explorer": Stage(
        "explorer:write_explorer", {
            "translations": "translations.tsv of each system ...",
            "attention": "attention.json.gz of each system ...",
            "html": "the page to write, e.g. results/explorer.html"},
        "explorer", lambda smk: {"labels": smk.params.labels},
        extra={"labels": (REQUIRED, "YAML list of [pair, system], one per system, e.g. '[[fra-eng, bahdanau]]'",
                          yaml_value)},
        job_skips=("assets",)),  # the page's own HTML, CSS and JavaScript: inputs so that editing them reruns it
    "summary": Stage(
        "summary:write_summary", {
            "metrics": "metrics.json of each system ...", "translations": "translations.tsv of each system ...",
            "histories": "history.tsv of each training run (systems with a seed), in order ...",
            "tsv": "summary.tsv to write", "md": "summary.md to write", "chart": "summary chart to write",
            "comparisons": "comparisons.tsv to write"}, "summary",
        lambda smk: {"labels": smk.params.labels, "baseline": smk.params.baseline,
                     "compare": dict(smk.params.compare),
                     "min_interval_sentences": smk.params.min_interval_sentences},
        extra={"labels": (REQUIRED, "YAML list of [pair, system, model or ensemble, seed or null], one per system",
                          yaml_value),
               "baseline": (None, "the model or ensemble the others are compared with", str),
               "compare": ({}, "the compare section (YAML), e.g. '{test: bs, resamples: 1000, seed: 12345}'",
                           yaml_value),
               "min_interval_sentences": (schema_default("evaluation.min_interval_sentences"),
                                          "fewest test sentences for intervals and p-values", int)}),
}
