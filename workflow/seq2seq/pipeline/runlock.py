"""Releasing the locks of a Snakemake run that was killed (SIGKILL, a wall-time limit, a closed laptop).

Snakemake locks the working directory while it runs (``.snakemake/locks/``) and removes the lock when it
ends; a process killed outright cannot, and every later run then stops with "Directory cannot be locked"
until someone runs ``snakemake --unlock``. Snakemake's lock files do not say who wrote them, so this module
adds what it needs to tell a live run from a dead one: every Snakemake process of this workflow, and every
job it runs, holds a shared ``flock`` on ``.snakemake/seq2seq-runs.lock`` for as long as it lives (the kernel
drops it when the process dies, however it dies; a job outlives a Snakemake killed alone). A process that
can take the lock *exclusively* is the only one alive, so any Snakemake lock it finds was left by a dead run
and is removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock; stale locks need `snakemake --unlock` there
    fcntl = None  # type: ignore[assignment]

RUNS_LOCK = "seq2seq-runs.lock"

_held: list[IO[bytes]] = []  # the open lock file of this process, kept open (and so locked) until it exits


def release_stale_locks(persistence_dir: str | os.PathLike[str] = ".snakemake") -> list[str]:
    """Register this process as a live run and remove Snakemake locks left by dead ones.

    Returns the lock files removed (empty when there were none or another run of ours is alive). Call it
    once per Snakemake process, while the Snakefile is parsed (before Snakemake checks its locks).
    """
    if fcntl is None:
        return []
    folder = Path(persistence_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / RUNS_LOCK, "ab")
    removed: list[str] = []
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another run of this workflow is alive: its locks are real
        pass
    else:
        locks = folder / "locks"
        for lock in sorted(locks.glob("*.lock")) if locks.is_dir() else []:
            lock.unlink(missing_ok=True)
            removed.append(str(lock))
    fcntl.flock(handle, fcntl.LOCK_SH)  # from exclusive (or nothing) to shared: others may run beside us
    _held.append(handle)
    return removed


def hold_while_running(persistence_dir: str | os.PathLike[str] = ".snakemake") -> None:
    """Mark this job's process as part of a live run for as long as it lives. A job outlives its Snakemake when
    only Snakemake is killed (kill -9, the OOM killer); without this, the next run released the locks and
    trained the same model beside the orphan, whose result, of the old settings, then stood as up to date."""
    folder = Path(persistence_dir)
    if fcntl is None or not folder.is_dir():  # not a job of a Snakemake run in this folder
        return
    handle = open(folder / RUNS_LOCK, "ab")
    fcntl.flock(handle, fcntl.LOCK_SH)
    _held.append(handle)
