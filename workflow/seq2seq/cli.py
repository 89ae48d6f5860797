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
from pathlib import Path
from typing import Any, Sequence


from .fileio import check_writable
from .logs import logging_to
from .metadata import Metadata
from .models import DEFAULT_FAMILY, FAMILIES, with_source_positions
from .schema import schema_default
from .settings import source_positions
from .stages import REQUIRED, STAGES, ModelEntry, Stage, yaml_value

# Fields that are not options: the vocabulary sizes come from the vocabularies, the rest of Metadata from training.
_VOCABULARY_SIZES = {"source_vocab_size", "target_vocab_size"}
_NOT_OPTIONS = {Metadata: {f.name for f in dataclasses.fields(Metadata)} - {"pair", "model_name", "normalization"}}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_model_options(sub: argparse.ArgumentParser, argument: str) -> None:
    """``--family`` and each family's config fields (only the options given reach the stage)."""
    sub.add_argument("--family", dest=f"{argument}.family", default=DEFAULT_FAMILY, choices=sorted(FAMILIES),
                     help=f"the model family (default: {DEFAULT_FAMILY})")
    added: set[str] = set()
    for family, cls in FAMILIES.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in added or field.name in _VOCABULARY_SIZES:
                continue
            added.add(field.name)
            default = "required" if field.default is dataclasses.MISSING else f"default: {field.default!r}"
            sub.add_argument(_option(field.name), dest=f"{argument}.{field.name}", default=argparse.SUPPRESS,
                             type=str if hints[field.name] is str else yaml_value, metavar="VALUE",
                             help=f"{family} models: {field.name} ({default})")


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line of every stage, or with ``only`` a stage's name: that stage's options alone (the others
    are bare names). A stage's help is its function's docstring, and reading it imports the function's module:
    ``python -m seq2seq prepare`` would import PyTorch and matplotlib for the other stages' help (5 s)."""
    parser = argparse.ArgumentParser(prog="python -m seq2seq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, stage in STAGES.items():
        if only is not None and name != only:
            commands.add_parser(name)
            continue
        sub = commands.add_parser(name, help=stage.doc.split("\n")[0], description=stage.doc)
        for argument, text in stage.files.items():
            several = text.endswith("...")
            sub.add_argument(_option(argument), dest=argument, required=True, nargs="+" if several else None,
                             metavar="PATH", help=text.removesuffix(" ..."))
        for argument, (default, text, parse) in stage.extra.items():
            required = default is REQUIRED
            sub.add_argument(_option(argument), dest=argument, default=None if required else default, type=parse,
                             required=required, metavar="VALUE", help=text)
        for argument, cls in stage.settings.items():
            if cls is ModelEntry:
                _add_model_options(sub, argument)
                continue
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
                                 required=required, type=str if hints[field.name] is str else yaml_value,
                                 metavar="VALUE",
                                 help=f"{cls.__name__}.{field.name} (default: {default!r})")
    return parser


def _arguments(stage: Stage, args: argparse.Namespace) -> dict[str, Any]:
    """The stage function's keyword arguments: files, extras, and settings objects built from the options."""
    values = vars(args)
    kwargs = {name: values[name] for name in [*stage.files, *stage.extra]}
    for argument, cls in stage.settings.items():
        fields = {key.split(".", 1)[1]: value for key, value in values.items() if key.startswith(f"{argument}.")}
        if cls is ModelEntry:  # as the pipeline does, for the prepare command's default --max-words
            fields = with_source_positions(fields, source_positions(schema_default("prepare.filter.max_words")))
        kwargs[argument] = fields if cls is ModelEntry else cls(**fields)
    if "compare" in kwargs:  # the compare section's defaults
        kwargs["compare"] = {**schema_default("compare"), **kwargs["compare"]}
    return kwargs


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv[0] if argv and argv[0] in STAGES else None).parse_args(argv)
    stage = STAGES[args.stage]
    with logging_to(None, stage.label):
        kwargs = _arguments(stage, args)
        for name, text in stage.files.items():  # before the work: by hand, no Snakemake made the folders
            if "to write" in text:
                for path in [kwargs[name]] if isinstance(kwargs[name], str) else kwargs[name]:
                    check_writable(path)
        if args.stage == "train" and kwargs["resume"] is None:
            kwargs["resume"] = str(Path(kwargs["model"]).with_name("resume.pt"))
        stage.run(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
