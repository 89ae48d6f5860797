"""One command line for every stage, outside Snakemake: ``python -m seq2seq STAGE --help``.

Each stage takes its files as ``--name PATH`` (named as in its Snakemake rule) and its settings as ``--key VALUE``
options built from the same settings classes the pipeline uses, with the same defaults (the schema's) and the
same one-line checks. Values are read as YAML: ``--epochs 5``, ``--bidirectional false``, ``--max-minutes null``,
``--early-stopping '{patience: 3}'``, ``--sentences '[je suis en retard .]'``.

    python -m seq2seq train --train results/fra-eng/data/train.tsv --valid results/fra-eng/data/valid.tsv \\
        --source-vocab results/fra-eng/vocab/source.json --target-vocab results/fra-eng/vocab/target.json \\
        --model out/model.pt --last out/last.pt --history out/history.tsv --attention luong --epochs 5
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from .checkpoint import Metadata
from .corpus import prepare_corpus
from .download import download_corpus
from .evaluation import evaluate_model
from .explorer import write_explorer
from .figures import draw_figures
from .logs import logging_to
from .settings import (
    DownloadSettings,
    EvaluationSettings,
    FigureSettings,
    ModelConfig,
    PrepareSettings,
    TrainConfig,
    VocabSettings,
    schema_default,
)
from .summary import write_summary
from .training import train_from_files
from .vocab import write_vocabularies


@dataclass
class Stage:
    """A stage: its function, its file arguments (``name: help``; a trailing ``...`` in the help: several
    paths), the settings classes whose fields become options (``argument name: class``), and other options
    (``name: (default, help, parse)``)."""

    run: Callable[..., Any]
    files: dict[str, str]
    settings: dict[str, type] = dataclasses.field(default_factory=dict)
    extra: dict[str, tuple[Any, str, Callable[[str], Any]]] = dataclasses.field(default_factory=dict)


def _yaml_value(text: str) -> Any:
    return yaml.safe_load(text)


# Fields that are not options: the vocabulary sizes come from the vocabularies, the rest of Metadata from training.
_NOT_OPTIONS = {ModelConfig: {"source_vocab_size", "target_vocab_size"},
                Metadata: {f.name for f in dataclasses.fields(Metadata)} - {"pair", "model_name", "normalization"}}

STAGES: dict[str, Stage] = {
    "download": Stage(download_corpus, {"raw": "raw text file to write, e.g. data/raw/fra-eng.txt"},
                      {"settings": DownloadSettings}),
    "prepare": Stage(prepare_corpus, {"raw": "raw tab-separated pairs", "train": "train split to write",
                                      "valid": "validation split to write", "test": "test split to write",
                                      "stats": "stats.json to write"}, {"settings": PrepareSettings}),
    "vocab": Stage(write_vocabularies, {"train": "train split", "source": "source vocabulary JSON to write",
                                        "target": "target vocabulary JSON to write"}, {"settings": VocabSettings}),
    "train": Stage(train_from_files, {
        "train": "train split", "valid": "validation split", "source_vocab": "source vocabulary JSON",
        "target_vocab": "target vocabulary JSON", "model": "best checkpoint to write (model.pt)",
        "last": "last training state to write (last.pt)", "history": "history.tsv to write"},
        {"model_settings": ModelConfig, "training": TrainConfig, "metadata": Metadata},
        {"resume": (None, "resume state, kept between runs (default: resume.pt beside --model)", str),
         "threads": (None, "CPU threads (default: all available)", int)}),
    "evaluate": Stage(evaluate_model, {
        "models": "checkpoint(s) to evaluate, several for an ensemble ...", "test": "test split",
        "translations": "translations.tsv to write", "metrics": "metrics.json to write",
        "attention": "attention.json.gz to write"}, {"settings": EvaluationSettings},
        {"threads": (None, "CPU threads", int), "device": ("auto", "auto, cpu, cuda, cuda:1, ...", str)}),
    "figures": Stage(draw_figures, {
        "model": "checkpoint", "test": "test split", "history": "history.tsv of the run",
        "attention": "one heatmap file per sentence (count + sentences of them) ...",
        "grid": "the grid figure to write", "curve": "the learning curve to write"}, {"settings": FigureSettings}),
    "explorer": Stage(write_explorer, {
        "translations": "translations.tsv of each system ...", "attention": "attention.json.gz of each system ...",
        "html": "the page to write, e.g. results/explorer.html"},
        extra={"labels": (None, "YAML list of [pair, system], one per system, e.g. '[[fra-eng, bahdanau]]'",
                          _yaml_value)}),
    "summary": Stage(write_summary, {
        "metrics": "metrics.json of each system ...", "translations": "translations.tsv of each system ...",
        "histories": "history.tsv of each training run (systems with a seed), in order ...",
        "tsv": "summary.tsv to write", "md": "summary.md to write", "chart": "summary chart to write",
        "comparisons": "comparisons.tsv to write"},
        extra={"labels": (None, "YAML list of [pair, system, model or ensemble, seed or null], one per system",
                          _yaml_value),
               "baseline": (None, "the model or ensemble the others are compared with", str),
               "compare": ({}, "the compare section (YAML), e.g. '{test: bs, resamples: 1000, seed: 12345}'",
                           _yaml_value),
               "min_interval_sentences": (schema_default("evaluation.min_interval_sentences"),
                                          "fewest test sentences for intervals and p-values", int)}),
}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seq2seq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, stage in STAGES.items():
        sub = commands.add_parser(name, help=(stage.run.__doc__ or "").split("\n")[0],
                                  description=stage.run.__doc__)
        for argument, text in stage.files.items():
            several = text.endswith("...")
            sub.add_argument(_option(argument), dest=argument, required=True, nargs="+" if several else None,
                             metavar="PATH", help=text.removesuffix(" ..."))
        for argument, (default, text, parse) in stage.extra.items():
            sub.add_argument(_option(argument), dest=argument, default=default, type=parse, metavar="VALUE",
                             help=text)
        for argument, cls in stage.settings.items():
            hints = typing.get_type_hints(cls)
            for field in dataclasses.fields(cls):
                if field.name in _NOT_OPTIONS.get(cls, ()):
                    continue
                default = (field.default if field.default is not dataclasses.MISSING
                           else field.default_factory() if field.default_factory is not dataclasses.MISSING
                           else None)
                required = default is None and field.default is dataclasses.MISSING and (
                    field.default_factory is dataclasses.MISSING)
                sub.add_argument(_option(field.name), dest=f"{argument}.{field.name}", default=default,
                                 required=required, type=str if hints[field.name] is str else _yaml_value,
                                 metavar="VALUE",
                                 help=f"{cls.__name__}.{field.name} (default: {default!r})")
    return parser


def _arguments(stage: Stage, args: argparse.Namespace) -> dict[str, Any]:
    """The stage function's keyword arguments: files, extras, and settings objects built from the options."""
    values = vars(args)
    kwargs = {name: values[name] for name in [*stage.files, *stage.extra]}
    for argument, cls in stage.settings.items():
        fields = {key.split(".", 1)[1]: value for key, value in values.items() if key.startswith(f"{argument}.")}
        kwargs[argument] = fields if cls is ModelConfig else cls(**fields)
    if "compare" in kwargs:  # the compare section's defaults
        kwargs["compare"] = {**schema_default("compare"), **kwargs["compare"]}
    return kwargs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stage = STAGES[args.stage]
    with logging_to(None, args.stage):
        kwargs = _arguments(stage, args)
        if args.stage == "train" and kwargs["resume"] is None:
            kwargs["resume"] = str(Path(kwargs["model"]).with_name("resume.pt"))
        stage.run(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
