"""Fixtures shared by the test modules; the helpers they use are in helpers.py (`from helpers import ...`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from helpers import (
    REPO,
    TWO_MODELS,
    copy_workflow,
    quiet_an_unreachable_slurm,
    snakemake,
    tiny_config,
    tiny_workdir_in,
    write_config,
    write_raw_corpus,
)

quiet_an_unreachable_slurm()  # before anything starts Snakemake: see its docstring
sys.path.insert(0, str(REPO / "workflow" / "benchmarks"))  # the benchmarks are not part of the package

# test_cuda.py needs CUDA (or SEQ2SEQ_CUDA_TESTS_DEVICE=cpu, which gpu_check.py's CPU dry run sets); elsewhere it is
# not collected, and the session header says so.
CUDA_TESTS = torch.cuda.is_available() or bool(os.environ.get("SEQ2SEQ_CUDA_TESTS_DEVICE"))
collect_ignore = [] if CUDA_TESTS else ["test_cuda.py"]


def pytest_report_header(config) -> str | None:
    return None if CUDA_TESTS else "test_cuda.py: not collected, CUDA is not available on this machine"


# The suite runs on every core with pytest-xdist (`-n auto --dist loadscope` in pyproject.toml): each module stays
# on one worker, so that its module-scoped fixtures are built once. The session's `finished_run` is built once for
# all workers (see the fixture), so the modules reading it spread over the workers too. The longest modules go
# first: the Slurm scenarios mostly wait on the cluster while the other workers get through the rest, and the
# independent end-to-end modules run while the finished run is built.
LONGEST_FIRST = ["test_workflow_slurm", "test_explorer_browser", "test_workflow_experiments", "test_gpu_check",
                 "test_workflow_data", "test_runlock", "test_training", "test_training_guards", "test_workflow_reruns",
                 "test_workflow_pipeline", "test_workflow_cluster", "test_figure_bounds"]


@pytest.hookimpl(optionalhook=True)  # optional: xdist's hooks, unknown under `-p no:xdist`
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker more than the CPUs. Much of the suite waits on subprocesses (Snakemake, Slurm's
    scheduling and status polls), and the Slurm module holds a worker for minutes while using little CPU."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item) -> int:
        module = item.module.__name__
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: pytest's order within a rank


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread for every test: the tiny models here gain nothing from more, and one stays fast on a busy
    machine (at 2 threads the shared tiny model took 20-48 s there instead of 3). The process-wide value, which
    train_model(threads=N) also sets, is restored afterwards. Snakemake runs use the threads of their rules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> tuple[Path, Path]:
    """(workdir, configfile) with the tiny corpus written beside the workdir."""
    return tiny_workdir_in(tmp_path)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(workdir, configfile, snakefile): one full run of the tiny corpus with two models that learn it, on a
    private copy of the workflow, built once per test run. Under pytest-xdist the first worker that needs it
    builds it in the run's temporary folder, which all workers share, and the others wait for it (a file lock);
    a build that failed fails the others' tests at once, with its message. Tests only read it: one that changes
    the run or the workflow works on :func:`helpers.copy_finished_run`."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is a folder of the run's
        shared = shared.parent
    root, done, failed = shared / "finished-run", shared / "finished-run.done", shared / "finished-run.failed"
    paths = (root / "run", root / "tiny.yaml", root / "workflow-copy" / "Snakefile")
    with FileLock(str(shared / "finished-run.lock")):
        if failed.exists():
            pytest.fail(f"the shared finished run failed where it was built:\n{failed.read_text()}")
        if not done.exists():
            try:
                build_finished_run(root, *paths)
            except BaseException as error:
                failed.write_text(str(error)[-12000:] or type(error).__name__)
                raise
            done.touch()
    return paths


def build_finished_run(root: Path, workdir: Path, config: Path, snakefile: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    copy_workflow(snakefile.parent)
    raw = write_raw_corpus(root / "corpus" / "fra-eng.txt")
    write_config(config, tiny_config(raw, models=TWO_MODELS))
    workdir.mkdir()
    snakemake(workdir, "--cores", "2", "--configfile", str(config), snakefile=snakefile)

