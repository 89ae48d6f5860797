"""Shared test helpers: a tiny synthetic corpus in the raw Tatoeba format and a Snakemake runner."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "benchmarks"))  # the benchmarks are not part of the package

# test_cuda.py needs CUDA (or SEQ2SEQ_CUDA_TESTS_DEVICE=cpu, which gpu_check.py's CPU dry run sets); elsewhere it is
# not collected, and the session header says so.
CUDA_TESTS = torch.cuda.is_available() or bool(os.environ.get("SEQ2SEQ_CUDA_TESTS_DEVICE"))
collect_ignore = [] if CUDA_TESTS else ["test_cuda.py"]


def pytest_report_header(config) -> str | None:
    return None if CUDA_TESTS else "test_cuda.py: not collected, CUDA is not available on this machine"

SUBJECTS = [
    ("I am", "Je suis"), ("He is", "Il est"), ("She is", "Elle est"),
    ("We are", "Nous sommes"), ("You are", "Tu es"), ("They are", "Ils sont"),
]
ADJECTIVES = [
    ("tall", "grand"), ("small", "petit"), ("happy", "content"), ("tired", "fatigué"),
    ("sad", "triste"), ("rich", "riche"), ("sick", "malade"), ("ready", "prêt"),
]
ADVERBS = [("", ""), ("very ", "très "), ("not ", "pas ")]


def tiny_pairs() -> list[tuple[str, str]]:
    """(English, French) pairs: 6 subjects x 8 adjectives x 3 adverbs = 144, all passing the tutorial filter."""
    pairs = []
    for (en_subject, fr_subject), (en_adj, fr_adj), (en_adv, fr_adv) in itertools.product(
        SUBJECTS, ADJECTIVES, ADVERBS
    ):
        pronoun, verb = fr_subject.split()
        if en_adv == "not ":
            negation = f"n'{verb}" if verb[0] in "aeiou" else f"ne {verb}"
            pairs.append((f"{en_subject} not {en_adj}.", f"{pronoun} {negation} pas {fr_adj}."))
        else:
            pairs.append((f"{en_subject} {en_adv}{en_adj}.", f"{fr_subject} {fr_adv}{fr_adj}."))
    return pairs


def write_raw_corpus(path: Path, attribution: bool = True) -> Path:
    """Write the pairs as `English<TAB>French[<TAB>attribution]` lines, as manythings.org ships them."""
    lines = []
    for i, (english, french) in enumerate(tiny_pairs()):
        extra = f"\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}" if attribution and i % 2 else ""
        lines.append(f"{english}\t{french}{extra}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def tiny_config(raw: Path, **overrides) -> dict:
    """A config override that runs the whole pipeline in seconds on the tiny corpus."""
    config = {
        "corpora": {"fra-eng": {"url": str(raw), "member": None, "sha256": None}},
        "pairs": ["fra-eng"],
        "models": {"bahdanau": {"attention": "bahdanau", "hidden_size": 24, "dropout": 0.0}},
        "training": {"epochs": 2, "batch_size": 16, "device": "cpu"},
        # min_interval_sentences: the tiny test split has 14 sentences (the default, 30, would give no interval)
        "evaluation": {"beam_size": 2, "bootstrap_resamples": 20, "batch_size": 32, "min_interval_sentences": 10},
        "figures": {"count": 2, "sentences": ["je suis tres content ."]},
        "resources": {"train": {"threads": 1}, "evaluate": {"threads": 1}},  # two jobs at once on 2 cores
    }
    for key, value in overrides.items():
        config[key] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None,
              timeout: float = 600, snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    """Run this repository's workflow with `--directory workdir`; on failure show its output."""
    run_env = dict(os.environ)
    # scripts run with the `python` on PATH: make it this interpreter's
    run_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{run_env.get('PATH', '')}"
    run_env.update(env or {})
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile),
               "--directory", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                    f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


def copy_workflow(destination: Path) -> Path:
    """A private copy of the workflow (Snakefile, config, rules, scripts, package) to edit in a test."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "Snakefile", destination / "Snakefile")
    shutil.copy2(REPO / "config.yaml", destination / "config.yaml")
    for folder in ("workflow", "envs"):
        shutil.copytree(REPO / folder, destination / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return destination / "Snakefile"


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> tuple[Path, Path]:
    """(workdir, configfile) with the tiny corpus written in the workdir."""
    workdir = tmp_path / "run"
    raw = write_raw_corpus(tmp_path / "corpus" / "fra-eng.txt")
    config = write_config(tmp_path / "tiny.yaml", tiny_config(raw))
    workdir.mkdir()
    return workdir, config


TWO_MODELS = {
    "bahdanau": {"attention": "bahdanau", "hidden_size": 24, "dropout": 0.0},
    "luong": {"attention": "luong", "hidden_size": 24, "dropout": 0.0},
}


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """One full run of the tiny corpus with two models on a private copy of the workflow, shared by the
    pipeline tests and the explorer's browser tests (those run first and only read it)."""
    root = tmp_path_factory.mktemp("pipeline")
    snakefile = copy_workflow(root / "workflow-copy")
    raw = write_raw_corpus(root / "corpus" / "fra-eng.txt")
    config = write_config(root / "tiny.yaml", tiny_config(raw, models=TWO_MODELS))
    workdir = root / "run"
    workdir.mkdir()
    snakemake(workdir, "--cores", "2", "--configfile", str(config), snakefile=snakefile)
    return workdir, config, snakefile
