"""Command-line mistakes caught while the workflow is read: one line, exit status 1, nothing written."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import snakemake
from seq2seq.pipeline import invocation
from seq2seq.pipeline.invocation import misplaced_target, report_problem, stale_report, started_in


def test_a_report_into_a_missing_folder_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert report_problem(["snakemake", "--report", "results/report.html"]) == (
        "--report results/report.html: there is no folder results (write it into a folder you can write, e.g. "
        "--report results/report.html, or create the folder first)")
    (tmp_path / "results").mkdir()
    assert report_problem(["snakemake", "--report=results/report.html"]) is None
    assert report_problem(["snakemake", "-n"]) is None


def test_the_html_reporters_path_into_a_missing_folder_is_one_line(tmp_path, monkeypatch):
    """``--reporter html --report-html-path PATH`` writes the same page as ``--report``, and fails the same way."""
    monkeypatch.chdir(tmp_path)
    assert report_problem(["snakemake", "--reporter", "html", "--report-html-path", "out/report.html"]) == (
        "--report-html-path out/report.html: there is no folder out (write it into a folder you can write, e.g. "
        "--report results/report.html, or create the folder first)")
    assert report_problem(["snakemake", "--reporter", "html", "--report-html-path=report.html"]) is None


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into: a read-only tmpfs when root can mount one (root ignores permissions),
    else a folder without write permission."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "seq2seq-test", str(folder)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip("root, and no read-only file system to mount")
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_a_report_into_a_read_only_folder_is_one_line(read_only_folder, monkeypatch):
    monkeypatch.chdir(read_only_folder.parent)
    problem = report_problem(["snakemake", "--cores", "1", "--report", "read-only/report.html"])
    assert problem in (
        "--report read-only/report.html: cannot write into read-only (Read-only file system); write it into a "
        "folder you can write, e.g. --report results/report.html",
        "--report read-only/report.html: cannot write into read-only (Permission denied); write it into a "
        "folder you can write, e.g. --report results/report.html")
    assert list(read_only_folder.iterdir()) == []


def test_a_product_given_to_configfile_is_called_a_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert misplaced_target([tmp_path / "my.yaml", "workflow/configs/compare.yaml"]) is None
    message = ("--configfile results/fra-eng/bahdanau/metrics.json: a target, not a config file? --configfile "
               "takes every word after it as a config file: put targets before it (snakemake --cores 4 "
               "results/fra-eng/bahdanau/metrics.json --configfile my.yaml)")
    assert misplaced_target(["my.yaml", tmp_path / "results/fra-eng/bahdanau/metrics.json"]) == message
    assert misplaced_target(["results/summary.tsv"]).startswith("--configfile results/summary.tsv: a target")
    assert misplaced_target(["data/raw/stats.json"]).startswith("--configfile data/raw/stats.json: a target")
    assert misplaced_target(["results/my.yaml"]).startswith("--configfile results/my.yaml: a target")
    # a local corpus's override beside the shipped data/fra-eng.zip is a config file (it was called a target)
    assert misplaced_target(["data/local.yaml", tmp_path / "data" / "local.yml"]) is None


@pytest.mark.workflow
def test_snakemake_stops_with_the_line_before_any_work(finished_run):
    """Through Snakemake, `--report` into a missing folder: exit status 1 and the line, before the report is built;
    nothing written. (A target after `--configfile`: tests/test_workflow_reruns.py.)"""
    workdir, config, snakefile = finished_run
    before = sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*"))
    report = snakemake(workdir, "--report", "missing/report.html", "--configfile", str(config), check=False,
                       snakefile=snakefile)
    assert report.returncode == 1
    lines = (report.stdout + report.stderr).splitlines()
    assert ("--report missing/report.html: there is no folder missing (write it into a folder you can write, "
            "e.g. --report results/report.html, or create the folder first)") in lines
    assert len(lines) < 8, lines
    assert sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*")) == before
    assert not (workdir / "missing").exists()


def test_the_folder_snakemake_started_in_is_found_from_its_working_folder(tmp_path):
    parse = invocation._snakemake_parser().parse_args
    workdir = tmp_path / "runs" / "subword"
    workdir.mkdir(parents=True)
    (tmp_path / "my.yaml").write_text("{}\n", encoding="utf-8")
    assert started_in(parse(["--cores", "1"]), workdir, None) == workdir
    assert started_in(parse(["--directory", "runs/subword", "--configfile", "my.yaml"]), workdir, None) == tmp_path
    assert started_in(parse(["--dir", "runs/subword"]), workdir, "/elsewhere") == tmp_path  # an abbreviation
    assert started_in(parse(["-d./subword"]), workdir, None) == tmp_path / "runs"
    assert started_in(parse(["--directory", str(workdir)]), workdir, str(tmp_path)) == tmp_path  # the shell's PWD
    # through a link, counting parents finds the link's target's: only a folder that leads back to workdir counts
    (tmp_path / "link").symlink_to(workdir)
    assert started_in(parse(["--directory", "link"]), workdir.resolve(), str(tmp_path)) == tmp_path
    assert started_in(parse(["--directory", "link"]), workdir.resolve(), None) is None
    # a relative config file that is not there: not the folder it was started in
    assert started_in(parse(["--directory", str(workdir), "--configfile", "my.yaml"]), workdir, "/") is None


def test_a_report_is_checked_with_a_dry_run_of_the_same_command(tmp_path, monkeypatch):
    monkeypatch.delenv(invocation.CHECKING, raising=False)
    calls = []

    def dry_run(output):
        def run(command, **kwargs):
            calls.append((command, kwargs["cwd"], kwargs["env"].get(invocation.CHECKING)))
            return subprocess.CompletedProcess(command, 0, output, "")
        return run

    workdir = tmp_path / "run"
    workdir.mkdir()
    argv = ["snakemake", "--directory", "run", "--report", "results/r.html", "--report-stylesheet", "s.css",
            "all", "--configfile", str(tmp_path / "a.yaml")]
    planned = "Job stats:\njob      count\n-----  -------\ntrain        2\nall          1\ntotal        3\n"
    warning = stale_report(argv, workdir, None, dry_run(planned))
    assert warning.startswith("warning: --report: 3 jobs have to run before the results are those of this config")
    [(command, cwd, checking)] = calls
    assert command[1:] == ["-m", "snakemake", "--directory", "run", "all", "--configfile", str(tmp_path / "a.yaml"),
                           "--dry-run", "--quiet", "rules"]
    assert cwd == tmp_path and checking == "1"  # the dry run does not check itself
    assert stale_report(argv, workdir, None, dry_run("Nothing to be done (all requested files are present and up "
                                                     "to date).\n")) is None
    calls.clear()
    assert stale_report(["snakemake", "--cores", "4"], workdir, None, dry_run(planned)) is None
    assert stale_report([*argv, "--report-after-run"], workdir, None, dry_run(planned)) is None  # jobs run first
    monkeypatch.setenv(invocation.CHECKING, "1")
    assert stale_report(argv, workdir, None, dry_run(planned)) is None
    assert calls == []
