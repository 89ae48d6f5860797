"""Mutation check: does the test suite fail when the code is wrong?

Applies each plausible one-line bug of ``mutations.yaml`` (beside this file) to a fresh copy of the repository,
one at a time, runs the mutation's test files against the copy (``pytest -x``: the first failure is enough) and
reports which mutations the tests catch and which they miss. Before the mutations it runs each test selection on
the unmutated copy: a selection that fails there says nothing, and its mutations are reported as ``broken``.

    python tests/mutations/check.py                       # every mutation, with its listed tests
    python tests/mutations/check.py --only bleu-on-pieces --only chrf-plus-plus
    python tests/mutations/check.py --tests-ref main      # the tests of another commit (e.g. before a change)
    python tests/mutations/check.py --out results/mutations.tsv

With ``--tests-ref REF`` the copy's ``tests/`` folder is REF's, and each mutation runs those of its listed test
files that exist at REF, and for the others the files that held the same module's tests before they got a file of
their own (``FORMER_HOMES``): a fair "before" for tests that were written later. Not part of CI: it takes minutes
(the table in the README's Development section says how long, on which CPU).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LIST = Path(__file__).with_name("mutations.yaml")
KEYS = ("id", "file", "original", "replacement", "why", "tests")
# Where the tests of a module lived before it got a test file of its own (issue 22 split them out).
FORMER_HOMES = {
    "tests/test_checkpoint.py": ["tests/test_training.py", "tests/test_translate.py"],
    "tests/test_evaluation.py": ["tests/test_metrics.py", "tests/test_explorer.py"],
    "tests/test_figures.py": ["tests/test_plots.py"],
    "tests/test_translate_command.py": ["tests/test_translate.py"],
    "tests/test_runlock.py": ["tests/test_workflow_pipeline.py"],
}


@dataclass
class Mutation:
    id: str
    file: str
    original: str
    replacement: str
    why: str
    tests: list[str]


def load_mutations(path: Path = LIST) -> list[Mutation]:
    """The list, checked: every key present, ids unique. Errors name the file and the entry."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of mutations")
    mutations, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != set(KEYS):
            raise ValueError(f"{path}: entry {number} must have exactly the keys {', '.join(KEYS)}")
        if entry["id"] in seen:
            raise ValueError(f"{path}: entry {number}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        mutations.append(Mutation(**entry))
    return mutations


def apply(mutation: Mutation, root: Path) -> None:
    """Replace the mutation's original text, which must occur exactly once, in ``root / mutation.file``."""
    check_applies(mutation, root)
    path = root / mutation.file
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(mutation.original, mutation.replacement), encoding="utf-8")


def check_applies(mutation: Mutation, root: Path) -> None:
    """ValueError naming the mutation and its file unless its original text occurs exactly once there."""
    path = root / mutation.file
    count = path.read_text(encoding="utf-8").count(mutation.original) if path.is_file() else 0
    if count != 1:
        raise ValueError(f"{mutation.id}: {mutation.file} holds the original text {count} times, expected once")


def source_files(repo: Path) -> list[str]:
    """The repository's files as git sees them: tracked, and untracked ones that are not ignored."""
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            check=True, capture_output=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (repo / name).is_file()]


def copy_repository(repo: Path, destination: Path, tests_ref: str | None) -> None:
    """A copy of the working tree (without ignored files: no venv, no results); ``tests/`` from ``tests_ref``."""
    for name in source_files(repo):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)
    if tests_ref:
        shutil.rmtree(destination / "tests")
        archive = subprocess.run(["git", "-C", str(repo), "archive", tests_ref, "tests"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)


def selection(mutation: Mutation, root: Path, tests_ref: str | None) -> tuple[str, ...]:
    """The pytest arguments that select the mutation's tests in the copy at ``root`` (see the module docstring)."""
    if not tests_ref:
        return tuple(mutation.tests)
    chosen: list[str] = []
    for test in mutation.tests:
        homes = [test] if (root / test.split("::")[0]).exists() else FORMER_HOMES.get(test.split("::")[0], [])
        chosen += [home for home in homes if home not in chosen and (root / home.split("::")[0]).exists()]
    return tuple(chosen)


def run_pytest(root: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, float, str]:
    """(exit status, seconds, last lines of output) of ``pytest -x`` on ``tests`` in the copy at ``root``; the
    copy's package comes first on the import path (before an editable install of the original)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "workflow"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",  # no xdist
               "--no-header", *tests]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - start, f"timed out after {timeout:.0f} s"
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return result.returncode, time.perf_counter() - start, "\n".join(lines[-15:])


def verdict(status: int) -> str:
    """pytest's exit status as an outcome: 1 (tests failed) and 2 (collection or import error) catch a mutation."""
    return {0: "missed", 1: "caught", 2: "caught"}.get(status, "error")


def first_failure(output: str) -> str:
    """The first FAILED/ERROR line of pytest's summary, shortened: which test caught the mutation."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].removeprefix("FAILED ").removeprefix("ERROR ")
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="run only this mutation id (repeatable)")
    parser.add_argument("--tests-ref", help="take tests/ from this git commit or branch (e.g. main)")
    parser.add_argument("--out", type=Path, help="write the results as a TSV file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run (default 900)")
    parser.add_argument("--list", type=Path, default=LIST, help="the mutation list (default: mutations.yaml)")
    args = parser.parse_args(argv)

    mutations = load_mutations(args.list)
    unknown = sorted(set(args.only) - {m.id for m in mutations})
    if unknown:
        parser.error(f"unknown mutation ids: {', '.join(unknown)}")
    chosen = [m for m in mutations if not args.only or m.id in args.only]
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutations-") as scratch:
        base = Path(scratch) / "base"
        copy_repository(REPO, base, args.tests_ref)
        for mutation in chosen:  # every original must be there before anything runs for minutes
            check_applies(mutation, base)
        baselines: dict[tuple[str, ...], tuple[int, str]] = {}
        for mutation in chosen:
            tests = selection(mutation, base, args.tests_ref)
            if tests not in baselines:
                status, seconds, output = run_pytest(base, tests, args.timeout)
                baselines[tests] = (status, output)
                print(f"baseline ({len(tests)} test files): exit {status} in {seconds:.0f} s", flush=True)
                if status != 0:
                    print(output, flush=True)
            if baselines[tests][0] != 0:
                rows.append({"id": mutation.id, "file": mutation.file, "outcome": "broken", "seconds": 0.0,
                             "caught_by": "the unmutated copy fails these tests", "why": mutation.why})
                continue
            copy = Path(scratch) / mutation.id
            shutil.copytree(base, copy)
            apply(mutation, copy)
            status, seconds, output = run_pytest(copy, tests, args.timeout)
            shutil.rmtree(copy, ignore_errors=True)
            outcome = verdict(status)
            rows.append({"id": mutation.id, "file": mutation.file, "outcome": outcome, "seconds": round(seconds, 1),
                         "caught_by": first_failure(output) if outcome == "caught" else "", "why": mutation.why})
            print(f"{mutation.id}: {outcome} ({seconds:.0f} s) {rows[-1]['caught_by']}", flush=True)
            if outcome == "error":
                print(output, flush=True)
    total = time.perf_counter() - start
    print()
    print("| mutation | file | outcome | caught by |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| `{row['id']}` | `{row['file'].removeprefix('workflow/seq2seq/')}` | {row['outcome']} | "
              f"{row['caught_by']} |")
    missed = [row["id"] for row in rows if row["outcome"] != "caught"]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} caught in {total / 60:.1f} minutes"
          + (f"; not caught: {', '.join(missed)}" if missed else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["id"], delimiter="\t",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
