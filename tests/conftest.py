"""Fixtures shared by the test modules; the helpers they use are in helpers.py (`from helpers import ...`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from helpers import (
    REPO,
    TWO_MODELS,
    copy_workflow,
    quiet_an_unreachable_slurm,
    snakemake,
    tiny_config,
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
# on one worker, so that its module-scoped fixtures are built once, and so do the modules that share the session's
# `finished_run` (the scheduler below makes them one unit). The longest units go first: the Slurm scenarios mostly
# wait on the cluster while the other worker gets through the rest.
FINISHED_RUN_MODULES = ["test_workflow_pipeline", "test_explorer_browser", "test_workflow_report",
                        "test_workflow_reruns", "test_figure_bounds", "test_invocation"]
LONGEST_FIRST = ["test_workflow_slurm", "finished_run", "test_workflow_experiments", "test_gpu_check",
                 "test_workflow_data", "test_training", "test_training_guards", "test_workflow_cluster"]


def _unit(module: str) -> str:
    return "finished_run" if module in FINISHED_RUN_MODULES else module


@pytest.hookimpl(optionalhook=True)  # optional: xdist's hooks, unknown under `-p no:xdist`
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker more than the CPUs. Much of the suite waits on subprocesses (Snakemake, Slurm's
    scheduling and status polls), and the Slurm unit holds a worker for minutes while using little CPU."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) + 1


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return _unit(Path(module).stem) if module.endswith(".py") else super()._split_scope(nodeid)

    return SharedFixtureScheduling(config, log)


def pytest_collection_modifyitems(config, items) -> None:
    strays = sorted({item.module.__name__ for item in items if "finished_run" in item.fixturenames}
                    - set(FINISHED_RUN_MODULES))
    if strays:  # it would be built once more on another worker
        raise pytest.UsageError(f"tests/conftest.py: add {', '.join(strays)} to FINISHED_RUN_MODULES")

    def rank(item) -> int:
        unit = _unit(item.module.__name__)
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

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
    """(workdir, configfile) with the tiny corpus written in the workdir."""
    workdir = tmp_path / "run"
    raw = write_raw_corpus(tmp_path / "corpus" / "fra-eng.txt")
    config = write_config(tmp_path / "tiny.yaml", tiny_config(raw))
    workdir.mkdir()
    return workdir, config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """One full run of the tiny corpus with two models that learn it, on a private copy of the workflow, shared
    by the pipeline tests and the explorer's browser tests (those run first and only read it)."""
    root = tmp_path_factory.mktemp("pipeline")
    snakefile = copy_workflow(root / "workflow-copy")
    raw = write_raw_corpus(root / "corpus" / "fra-eng.txt")
    config = write_config(root / "tiny.yaml", tiny_config(raw, models=TWO_MODELS))
    workdir = root / "run"
    workdir.mkdir()
    snakemake(workdir, "--cores", "2", "--configfile", str(config), snakefile=snakefile)
    return workdir, config, snakefile
