"""Shared test helpers: the tiny synthetic corpus, configs that make the pipeline's models learn it, a Snakemake
runner, a GRUConfig factory and the shared tiny trained model. Fixtures built on these live in conftest.py."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# Where quiet_an_unreachable_slurm found no controller: what `scontrol ping` said, in the environment, so that the
# xdist workers (started after conftest.py ran it in the main process) know it too.
SLURM_UNREACHABLE_VARIABLE = "SEQ2SEQ_TESTS_SLURM_UNREACHABLE"


def quiet_an_unreachable_slurm() -> None:
    """Snakemake's SLURM plugin runs `scontrol show config` whenever Snakemake starts (as it loads its plugins).
    Where Slurm's commands are installed but no controller answers, that waits out a 10 s timeout, in each of
    the suite's many Snakemake starts. There (unless SLURM_CONF is set already) Slurm's commands get no config,
    so that they fail at once; the slurm tests are skipped then, with what `scontrol ping` said
    (:func:`slurm_unreachable`)."""
    if "SLURM_CONF" in os.environ or not shutil.which("scontrol"):
        return
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        said = "no answer within 15 s"
    else:
        if "UP" in ping.stdout:
            return
        said = (ping.stdout.strip() or ping.stderr.strip() or "no answer").splitlines()[0]
    os.environ[SLURM_UNREACHABLE_VARIABLE] = said
    os.environ["SLURM_CONF"] = os.devnull


def slurm_unreachable() -> str | None:
    """What `scontrol ping` said where :func:`quiet_an_unreachable_slurm` found no controller, else None."""
    return os.environ.get(SLURM_UNREACHABLE_VARIABLE)


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


# Models and training that learn the tiny corpus in a few seconds: after 5 epochs of 10 batches of 12 pairs at a
# learning rate of 0.02, greedy search gets most of the 14 unseen test sentences right (BLEU 90-100 over seeds 1-3,
# both attentions), so checks on the content of translations, scores and pages mean something. The defaults
# (hidden 256, lr 0.002) would learn nothing in that time. (test_workflow_reruns changes each of these keys to
# another value: keep them apart from its values.)
TINY_MODEL = {"hidden_size": 40, "dropout": 0.0}
# The tiny runs pin what config.yaml's recipe sets for the real corpus (subwords, a cosine schedule warming up over
# 140 batches): a tiny corpus has about 10 batches an epoch, and its tests read words.
TINY_TRAINING = {"epochs": 5, "batch_size": 12, "learning_rate": 0.02, "device": "cpu", "lr_schedule": "plateau",
                 "lr_warmup_steps": 0}
TINY_VOCAB = {"type": "word"}
TWO_MODELS = {
    "bahdanau": {"attention": "bahdanau", **TINY_MODEL},
    "luong": {"attention": "luong", **TINY_MODEL},
}
BLEU_FLOOR = 40.0  # greedy test BLEU a tiny run must reach; the code without attention bugs gets 70-100


def tiny_config(raw: Path, **overrides) -> dict:
    """A config override that runs the whole pipeline in seconds on the tiny corpus, with models that learn it."""
    config = {
        "corpora": {"fra-eng": {"url": str(raw), "member": None, "sha256": None}},
        "pairs": ["fra-eng"],
        "models": {"bahdanau": dict(TWO_MODELS["bahdanau"])},
        "vocab": dict(TINY_VOCAB),
        "training": dict(TINY_TRAINING),
        # min_interval_sentences: the tiny test split has 14 sentences (the default, 30, would give no interval)
        "evaluation": {"beam_size": 2, "bootstrap_resamples": 20, "batch_size": 32, "min_interval_sentences": 10},
        "figures": {"count": 2, "sentences": ["je suis tres content ."]},
        "resources": {"train": {"threads": 1}, "evaluate": {"threads": 1}},  # two jobs at once on 2 cores
    }
    config.update(overrides)
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def tiny_workdir_in(folder: Path) -> tuple[Path, Path]:
    """(workdir, configfile) in ``folder``: the tiny corpus, its config (:func:`tiny_config`) and an empty workdir."""
    config = write_config(folder / "tiny.yaml", tiny_config(write_raw_corpus(folder / "corpus" / "fra-eng.txt")))
    workdir = folder / "run"
    workdir.mkdir()
    return workdir, config


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


def snakemake_scratch(folder: str, names: list[str]) -> list[str]:
    """For shutil.copytree's ``ignore``: Snakemake's I/O cache and logs, which the dry runs of tests running beside
    the copy rewrite while it copies (the recorded metadata, what decides reruns, is copied)."""
    return [name for name in names if name in ("iocache", "log")] if Path(folder).name == ".snakemake" else []


def copy_finished_run(finished_run: tuple[Path, Path, Path], destination: Path) -> tuple[Path, Path, Path]:
    """A copy of the finished run's folder (the run, its config and its workflow copy; modification times kept, as
    by `cp -a`) to change in a test: (workdir, configfile, snakefile) of the copy."""
    root = finished_run[0].parent
    shutil.copytree(root, destination, symlinks=True, ignore=snakemake_scratch)
    workdir, config, snakefile = (destination / path.relative_to(root) for path in finished_run)
    return workdir, config, snakefile


def grouped_rules(dry_run_output: str) -> dict[str, str]:
    """The job-count table of `snakemake -n --quiet rules` as {rule: count}."""
    return dict(line.split() for line in dry_run_output.splitlines()
                if len(line.split()) == 2 and line.split()[1].isdigit())


# --------------------------------------------------------------------------------------------- models

def model_config(source_vocab_size: int = 13, target_vocab_size: int = 11, attention: str = "bahdanau", **settings):
    """A small GRUConfig: hidden 16, no dropout, untied embeddings unless ``settings`` say otherwise."""
    from seq2seq.models.gru_config import GRUConfig

    settings = {"hidden_size": 16, "dropout": 0.0, "tie_embeddings": False, **settings}
    return GRUConfig(source_vocab_size, target_vocab_size, attention, **settings)


def seeded_model(attention: str = "bahdanau", seed: int = 0, **settings):
    """A GRUSeq2Seq of :func:`model_config` with weights drawn from ``seed``, in eval mode."""
    from seq2seq.models.gru import GRUSeq2Seq

    torch.manual_seed(seed)
    return GRUSeq2Seq(model_config(attention=attention, **settings)).eval()


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block with ``count`` torch threads (tiny models are fastest on one, also on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_trained_model(attention: str = "bahdanau", steps: int = 120, seed: int = 0):
    """(model, source_vocab, target_vocab, pairs): a GRUSeq2Seq fitted for a few seconds on the tiny corpus.

    Trained once per (attention, steps, seed) and test session, at one thread, however it is called; every
    caller gets the same objects: do not modify the model.
    """
    return _trained(attention, steps, seed)


@functools.cache
def _trained(attention: str, steps: int, seed: int):
    from seq2seq.batching import collate, encode_pairs
    from seq2seq.corpus import normalize
    from seq2seq.models.gru import GRUSeq2Seq
    from seq2seq.models.gru_config import GRUConfig
    from seq2seq.tokens import PAD_INDEX
    from seq2seq.vocab import WordVocabulary

    pairs = [(normalize(fr), normalize(en)) for en, fr in tiny_pairs()]
    source_vocab = WordVocabulary.build(s for s, _ in pairs)
    target_vocab = WordVocabulary.build(t for _, t in pairs)
    with torch_threads(1):
        torch.manual_seed(seed)
        # max_length 11: the pipeline's (prepare.filter.max_words + 1), which the tutorial attention reads
        model = GRUSeq2Seq(GRUConfig(len(source_vocab), len(target_vocab), attention, hidden_size=32, dropout=0.0,
                                     max_length=11))
        batch = collate(encode_pairs(pairs, source_vocab, target_vocab))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(steps):
            logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(),
                                                     ignore_index=PAD_INDEX)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), source_vocab, target_vocab, pairs


def save_tiny_checkpoint(path, attention: str = "bahdanau", steps: int = 120, pair: str = "fra-eng",
                         model_name: str = "bahdanau"):
    """Save :func:`tiny_trained_model` as the train stage would; returns (path, pairs)."""
    from seq2seq.checkpoint import cpu_state, save_model
    from seq2seq.metadata import Metadata

    model, source_vocab, target_vocab, pairs = tiny_trained_model(attention, steps)
    metadata = Metadata(pair=pair, model_name=model_name, normalization="ascii", epoch=3,
                        parameters=sum(p.numel() for p in model.parameters()))
    save_model(path, model.config, cpu_state(model), source_vocab, target_vocab, metadata)
    return path, pairs


class Killed(Exception):
    """A training process killed between two epochs, as raised by :func:`kill_after_epoch`'s callback."""


def kill_after_epoch(epoch_to_kill: int):
    """An after-epoch callback that raises :class:`Killed` once epoch ``epoch_to_kill`` has ended (and its resume
    state is saved), as a kill at that moment would."""
    def callback(epoch: int) -> None:
        if epoch == epoch_to_kill:
            raise Killed
    return callback
