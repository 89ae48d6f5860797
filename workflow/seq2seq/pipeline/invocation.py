"""Mistakes in a Snakemake command line that Snakemake itself reports late or with a traceback, caught while the
workflow is read, before any work, with one line naming the option and the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
# Where the pipeline writes, and what it writes there: results/ holds JSON products (metrics.json, stats.json),
# data/ only the downloaded text (a user's local.yaml beside data/fra-eng.zip is a config file)
PRODUCT_SUFFIXES = {"results": CONFIG_SUFFIXES, "data": (".json",)}


def report_problem(argv: Sequence[str]) -> str | None:
    """Why the ``--report PATH`` of the command line ``argv`` cannot be written (Snakemake builds the whole
    report first, then fails to open the file with a 60-line traceback); None when it can, or when no report
    is asked for. ``PATH`` is relative to the working directory, as Snakemake reads it."""
    path = _option_value(argv, "--report")
    if path is None:
        return None
    folder = Path(path).parent
    fix = "write it into a folder you can write, e.g. --report results/report.html"
    if not folder.is_dir():
        return f"--report {path}: there is no folder {folder} ({fix}, or create the folder first)"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return f"--report {path}: cannot write into {folder} ({error.strerror or error}); {fix}"
    return None


def misplaced_target(configfiles: Sequence[str | os.PathLike[str]]) -> str | None:
    """A file given to ``--configfile`` that looks like one of the pipeline's products (not YAML/JSON by its name,
    or JSON under results/ or data/, or anything under results/): a target written after ``--configfile``, which
    takes every word after it as a config file. None when every file looks like a config file."""
    for file in configfiles:
        relative = Path(os.path.relpath(Path(file).resolve()))  # to the working directory, where products are
        inside = relative.parts[0] != os.pardir
        suffix = Path(file).suffix.lower()
        if suffix not in CONFIG_SUFFIXES or (inside and suffix in PRODUCT_SUFFIXES.get(relative.parts[0], ())):
            shown = relative if inside else file
            return (f"--configfile {shown}: a target, not a config file? --configfile takes every word after it "
                    f"as a config file: put targets before it (snakemake --cores 4 {shown} --configfile my.yaml)")
    return None


def _option_value(argv: Sequence[str], option: str) -> str | None:
    """The value of ``option`` in ``argv`` (``--option VALUE`` or ``--option=VALUE``; the last one wins)."""
    value = None
    for i, word in enumerate(argv):
        if word == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(f"{option}="):
            value = word.split("=", 1)[1]
    return value
