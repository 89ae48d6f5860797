"""Releasing the Snakemake locks of a killed run: a dead run's locks go, a live run's stay (each run is a process
of its own here, as each Snakemake is); and end to end, a run killed with its training job recovers with one
command."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO, TINY_TRAINING, TWO_MODELS, snakemake, tiny_config, write_config, write_raw_corpus
from seq2seq.pipeline.runlock import RUNS_LOCK

REGISTER = ("import sys; from seq2seq.pipeline.runlock import release_stale_locks; "
            "print(release_stale_locks(sys.argv[1]))")
HOLD = REGISTER + "; sys.stdout.flush(); sys.stdin.read()"  # then stay alive until stdin closes or a kill


def run(folder: Path) -> list[str]:
    """What release_stale_locks removes when a new Snakemake process starts on ``folder``."""
    result = subprocess.run([sys.executable, "-c", REGISTER, str(folder)], capture_output=True, text=True,
                            check=True, timeout=60)
    return ast.literal_eval(result.stdout)  # a list of path strings, printed by the child


def leave_locks(folder: Path) -> list[Path]:
    """Lock files as a Snakemake killed with SIGKILL leaves them."""
    (folder / "locks").mkdir(parents=True, exist_ok=True)
    locks = [folder / "locks" / "0.input.lock", folder / "locks" / "0.output.lock"]
    for lock in locks:
        lock.write_text("/some/path\n")
    return locks


def test_the_locks_of_a_dead_run_are_removed(tmp_path):
    folder = tmp_path / ".snakemake"
    locks = leave_locks(folder)
    assert run(folder) == [str(lock) for lock in locks]
    assert not any(lock.exists() for lock in locks) and (folder / RUNS_LOCK).exists()
    assert run(folder) == []  # nothing left to remove


def test_the_locks_of_a_live_run_stay_until_it_is_killed(tmp_path):
    folder = tmp_path / ".snakemake"
    live = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert live.stdout.readline().strip() == "[]"  # registered as a live run
        locks = leave_locks(folder)  # the live run's own locks
        assert run(folder) == []  # a second run beside it must not take them away
        assert all(lock.exists() for lock in locks)
        os.kill(live.pid, signal.SIGKILL)  # no chance to clean up
        live.wait(timeout=60)
        assert run(folder) == [str(lock) for lock in locks]
        assert not any(lock.exists() for lock in locks)
    finally:
        if live.poll() is None:
            live.kill()
            live.wait(timeout=60)


@pytest.mark.workflow
def test_a_run_killed_with_its_training_job_recovers_with_one_command(tmp_path):
    """Snakemake and its training job killed together, as a closed laptop or a wall-time limit would (SIGKILL:
    no chance to clean up): the README's one command, `snakemake --cores N --rerun-incomplete`, resumes it,
    with no `--unlock` first."""
    raw = write_raw_corpus(tmp_path / "corpus" / "fra-eng.txt")
    models = {"bahdanau": dict(TWO_MODELS["bahdanau"])}
    training = {**TINY_TRAINING, "epochs": 12, "early_stopping": {"patience": 100}}
    config = write_config(tmp_path / "tiny.yaml", tiny_config(raw, models=models, training=training))
    workdir = tmp_path / "run"
    workdir.mkdir()
    snakemake(workdir, "--cores", "1", "results/fra-eng/vocab/source.json",
              "results/fra-eng/vocab/target.json", "--configfile", str(config))

    run = workdir / "results" / "fra-eng" / "bahdanau"
    resume = run / "resume.pt"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--cores", "1", "results/fra-eng/bahdanau/model.pt", "--configfile", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while not resume.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # let it get a little further than the first epoch
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and everything it started
    assert process.wait(timeout=60) != 0
    assert resume.exists(), "training never wrote its resume checkpoint"
    # nothing that a later rule or seq2seq-translate could take for the result
    assert not any((run / name).exists() for name in ("model.pt", "last.pt", "history.tsv"))
    assert list((workdir / ".snakemake" / "locks").glob("*.lock")), "expected the dead run's lock"

    result = snakemake(workdir, "--cores", "1", "--rerun-incomplete", "results/fra-eng/bahdanau/model.pt",
                       "--configfile", str(config))
    log = (workdir / "results" / "logs" / "train" / "fra-eng" / "bahdanau.log").read_text()
    assert "resum" in log.lower(), log
    history = pd.read_csv(run / "history.tsv", sep="\t")
    assert list(history["epoch"]) == list(range(1, 13))
    assert not resume.exists()
    assert "left by a Snakemake run that is no longer alive" in result.stderr


def test_a_job_that_outlives_its_killed_snakemake_keeps_the_run_alive(tmp_path):
    """Snakemake killed alone (kill -9, the OOM killer) leaves its training job running: the next run released
    the locks and trained the same model beside it, and the orphan's model of the old settings then stood as up
    to date (review). The job holds the run's lock too, so the locks stay until it ends."""
    folder = tmp_path / ".snakemake"
    folder.mkdir()
    job = subprocess.Popen([sys.executable, "-c", "import sys; from seq2seq.pipeline.runlock import "
                            "hold_while_running; hold_while_running(sys.argv[1]); print('held'); sys.stdout.flush(); "
                            "sys.stdin.read()", str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline().strip() == "held"
        locks = leave_locks(folder)  # its Snakemake's, killed
        assert run(folder) == [] and all(lock.exists() for lock in locks)
        job.stdin.close()  # the job ends
        job.wait(timeout=60)
        assert run(folder) == [str(lock) for lock in locks]
    finally:
        if job.poll() is None:
            job.kill()
            job.wait(timeout=60)
