"""Fixtures shared by the test modules; the helpers they use are in helpers.py (`from helpers import ...`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from helpers import REPO, TWO_MODELS, copy_workflow, snakemake, tiny_config, write_config, write_raw_corpus

sys.path.insert(0, str(REPO / "workflow" / "benchmarks"))  # the benchmarks are not part of the package

# test_cuda.py needs CUDA (or SEQ2SEQ_CUDA_TESTS_DEVICE=cpu, which gpu_check.py's CPU dry run sets); elsewhere it is
# not collected, and the session header says so.
CUDA_TESTS = torch.cuda.is_available() or bool(os.environ.get("SEQ2SEQ_CUDA_TESTS_DEVICE"))
collect_ignore = [] if CUDA_TESTS else ["test_cuda.py"]


def pytest_report_header(config) -> str | None:
    return None if CUDA_TESTS else "test_cuda.py: not collected, CUDA is not available on this machine"


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
