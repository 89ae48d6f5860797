"""Mistakes in a Snakemake command line that Snakemake itself reports late or with a traceback, caught while the
workflow is read, before any work, with one line naming the option and the fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

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


# Snakemake's report options, each with the value it takes (--report's is optional; --report-after-run has none)
REPORT_OPTIONS = {"--report": "optional", "--report-stylesheet": "one", "--report-metadata": "one", "--reporter": "one",
                  "--report-after-run": "none"}


def stale_report(argv: Sequence[str], cwd: str | os.PathLike[str],
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> str | None:
    """A warning for a ``--report`` of results that are not those of this config and code: the jobs that a dry
    run of the same command (run in ``cwd``, the folder Snakemake was started in) plans. Snakemake reports the
    outputs on disk, under the params of the config given, without a word. A warning, not a refusal: a report of
    the runs that have finished while others train is a report people want. None when nothing is to be done,
    when no report is asked for, or with ``--report-after-run`` (the jobs run first)."""
    if _option_value(argv, "--report") is None and "--report" not in argv or "--report-after-run" in argv:
        return None
    command = [sys.executable, "-m", "snakemake", *_without_report_options(argv[1:]), "--dry-run", "--quiet", "rules"]
    done = run(command, cwd=cwd, capture_output=True, text=True)
    output = f"{done.stdout}\n{done.stderr}"
    if done.returncode != 0:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
        return f"warning: --report: could not check the results against the config: its dry run failed ({last.strip()})"
    total = re.search(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    if total is None:
        return None
    return (f"warning: --report: {total.group(1)} jobs have to run before the results are those of this config "
            f"and code (snakemake -n lists them and why); this report shows the results on disk: to report these "
            f"settings' results, run the same command without --report first, or add --report-after-run")


def started_in(argv: Sequence[str], workdir: Path, shell_folder: str | None) -> Path:
    """The folder Snakemake was started in, where the command line's relative paths point, from the working folder
    it changed into: ``workdir`` less a relative ``--directory``; for an absolute one the shell's ``PWD`` (a shell
    keeps it; the working folder where there is none)."""
    directory = _option_value(argv, "--directory") or _option_value(argv, "-d")
    if directory is None:
        return workdir
    relative = Path(directory)
    if not relative.is_absolute() and os.pardir not in relative.parts:
        folder = workdir
        for _ in relative.parts:
            folder = folder.parent
        return folder
    return Path(shell_folder) if shell_folder and Path(shell_folder).is_dir() else workdir


def _without_report_options(args: Sequence[str]) -> list[str]:
    """``args`` without Snakemake's report options and their values."""
    kept, skip = [], False
    for i, word in enumerate(args):
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        takes = REPORT_OPTIONS.get(name)
        if takes is None:
            kept.append(word)
        elif "=" not in word and (takes == "one" or takes == "optional" and i + 1 < len(args)
                                  and not args[i + 1].startswith("-")):
            skip = True
    return kept


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
