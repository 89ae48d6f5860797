"""Mistakes in a Snakemake command line that Snakemake itself reports late or with a traceback, caught while the
workflow is read, before any work, with one line naming the option and the fix."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
# Where the pipeline writes, and what it writes there: results/ holds JSON products (metrics.json, stats.json),
# data/ only the downloaded text (a user's local.yaml beside data/fra-eng.zip is a config file)
PRODUCT_SUFFIXES = {"results": CONFIG_SUFFIXES, "data": (".json",)}


def report_problem(argv: Sequence[str]) -> str | None:
    """Why the report file of the command line ``argv`` (``--report PATH``, or the html reporter's
    ``--report-html-path PATH``) cannot be written (Snakemake builds the whole report first, then fails to open the
    file with a 60-line traceback); None when it can, or when no report is asked for. ``PATH`` is relative to the
    working directory, as Snakemake reads it."""
    args = _report_command_line(argv)
    if args is None:
        return None
    fix = "write it into a folder you can write, e.g. --report results/report.html"
    for option, path in (("--report", args.report), ("--report-html-path", args.report_html_path)):
        if not isinstance(path, (str, os.PathLike)):  # not given (None, or the html path's sentinel)
            continue
        folder = Path(path).parent
        if not folder.is_dir():
            return f"{option} {path}: there is no folder {folder} ({fix}, or create the folder first)"
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            return f"{option} {path}: cannot write into {folder} ({error.strerror or error}); {fix}"
    return None


# What a report needs of the command line: every option of Snakemake's report (it has no short forms)
REPORT_DESTINATIONS = {"report", "report_after_run", "report_stylesheet", "report_metadata", "reporter",
                       "report_html_path", "report_html_stylesheet_path"}
CHECKING = "SEQ2SEQ_REPORT_CHECK"  # set in the dry run's environment: it must not check itself


def stale_report(argv: Sequence[str], workdir: Path, shell_folder: str | None,
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> str | None:
    """A warning for a report (``--report`` or ``--reporter``) of results that are not those of this config and
    code: the jobs that a dry run of the same command plans, run in the folder Snakemake was started in (found from
    the working folder ``workdir`` it changed into; see :func:`started_in`). Snakemake reports the outputs on disk,
    under the params of the config given, without a word. A warning, not a refusal: a report of the runs that have
    finished while others train is a report people want. None when nothing is to be done, when no report is asked
    for, or with ``--report-after-run`` (the jobs run first)."""
    args = None if os.environ.get(CHECKING) else _report_command_line(argv)
    if args is None:
        return None
    if (args.report is None and args.reporter is None) or args.report_after_run:
        return None
    folder = started_in(args, workdir, shell_folder)
    if folder is None:
        return ("warning: --report: the results were not checked against the config (the folder Snakemake was "
                "started in is not clear from the command line): snakemake -n says whether any job has to run")
    kept = _without_report_options(argv[1:], _snakemake_parser())
    command = [sys.executable, "-m", "snakemake", *kept, "--dry-run", "--quiet", "rules"]
    done = run(command, cwd=folder, capture_output=True, text=True, env={**os.environ, CHECKING: "1"})
    output = f"{done.stdout}\n{done.stderr}"
    if done.returncode != 0:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output").strip()
        return f"warning: --report: could not check the results against the config: its dry run failed ({last})"
    total = re.search(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    if total is None:
        return None
    return (f"warning: --report: {total.group(1)} jobs have to run before the results are those of this config "
            f"and code (snakemake -n lists them and why); this report shows the results on disk: to report these "
            f"settings' results, run the same command without --report first, or add --report-after-run")


def started_in(args: Any, workdir: Path, shell_folder: str | None) -> Path | None:
    """The folder Snakemake was started in (where the command line's relative paths point), from Snakemake's parsed
    ``args`` and the working folder ``workdir`` it changed into: a folder whose ``--directory`` is ``workdir``
    (``workdir`` itself without one; ``workdir``'s parents or the shell's ``PWD`` for a relative one, checked, since
    links and ``..`` defeat counting parents; ``PWD`` for an absolute one) in which the relative Snakefile and
    config files exist. None when no folder fits."""
    directory = args.directory
    if directory is None:
        candidates = [workdir]
    elif Path(directory).is_absolute():
        candidates = [Path(shell_folder)] if shell_folder else [workdir]
    else:
        ancestors = [workdir, *workdir.parents][: len(Path(directory).parts) + 1]
        candidates = [folder for folder in [ancestors[-1], *([Path(shell_folder)] if shell_folder else [])]
                      if (folder / directory).resolve() == workdir.resolve()]
    files = [Path(f) for f in [args.snakefile, *(args.configfile or [])] if f is not None and not Path(f).is_absolute()]
    return next((folder for folder in candidates if all((folder / f).exists() for f in files)), None)


def _report_command_line(argv: Sequence[str]) -> Any:
    """``argv`` as Snakemake's parser reads it, when a word of it starts with ``--rep`` (every command reads
    common.smk: no parser is built for the many that ask for no report); else None, and None for what is not a
    Snakemake command line (an API call: the parser's complaint about it is not shown)."""
    return _parsed(tuple(argv)) if any(word.startswith("--rep") for word in argv) else None


@functools.cache  # read once for both checks of a command
def _parsed(argv: tuple[str, ...]) -> Any:
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return _snakemake_parser().parse_args(list(argv[1:]))
    except (SystemExit, Exception):
        return None


@functools.cache
def _snakemake_parser() -> Any:
    from snakemake.cli import get_argument_parser  # only ever called inside Snakemake

    return get_argument_parser()


def _without_report_options(args: Sequence[str], parser: Any) -> list[str]:
    """``args`` without Snakemake's report options (as its parser reads them: ``--rep`` is ``--report``) and their
    values."""
    kept: list[str] = []
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        name = word.split("=", 1)[0]
        action = parser._option_string_actions.get(name) if word.startswith("--") else None
        if action is None and word.startswith("--"):  # an abbreviation, where it names one option
            actions = {id(a): a for option, a in parser._option_string_actions.items() if option.startswith(name)}
            action = next(iter(actions.values())) if len(actions) == 1 else None
        if action is None or action.dest not in REPORT_DESTINATIONS:
            kept.append(word)
            continue
        if "=" in word or action.nargs == 0:
            continue
        if action.nargs is None:
            i += 1
        elif action.nargs == "?" and i < len(words) and not words[i].startswith("-"):
            i += 1
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
