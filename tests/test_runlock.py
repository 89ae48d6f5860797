"""Releasing the Snakemake locks of a killed run: a dead run's locks go, a live run's stay (each run is a process
of its own here, as each Snakemake is)."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

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
