#!/usr/bin/env python3
"""Peer benchmark: train JoeyNMT 2.3 with a model matched to ours, for a fixed time, on our data splits.

Standalone: run it with the Python of a virtual environment that has joeynmt (2.3.0), torch, sentencepiece,
sacrebleu and PyYAML (a JoeyNMT dependency); of this project it imports only ``machine.py`` beside it (standard
library only), none of the package. Without joeynmt it prints one ``SKIP: ...`` line and exits 0.

What it does, in ``--work-dir``:

1. converts ``--data-dir``'s ``{train,valid,test}.tsv`` (header ``source<TAB>target``, already normalized and
   space-tokenized) to JoeyNMT's plain files ``data/{train,dev,test}.{fr,en}``; with ``--level sentencepiece``
   it first trains one unigram sentencepiece model per side on the training split (fixed seed);
2. writes ``config.yaml``: recurrent (bi)GRU encoder, recurrent GRU decoder with Bahdanau attention, tied
   decoder embedding / output layer, label smoothing, Adam, gradient-norm clipping, plateau schedule;
3. trains JoeyNMT in a child process (this script again: ``--joeynmt-child train``) for ``--minutes`` minutes
   of training time (validation excluded; or of wall time with ``--clock wall``), validating and keeping a
   checkpoint every ``--validation-freq`` steps. JoeyNMT has no time limit: the child wraps
   ``TrainManager._train_step`` and, when the time is up, raises ``KeyboardInterrupt`` there, which JoeyNMT
   handles like Ctrl-C (it saves the current weights and stops);
4. decodes the test split (``--joeynmt-child decode``) greedily with the checkpoint at each time mark (every
   checkpoint by default, see ``--mark-minutes``) and with beam search with the last one, and scores the
   detokenized output with sacrebleu's corpus BLEU (13a, ``force=True``) against the references of our
   ``test.tsv``;
5. writes ``--out``: one TSV row per decoded checkpoint, each with the run's summary columns.

Times in the output: ``minutes`` is training time (wall clock since the first training step, minus the
time spent in JoeyNMT's validations, which include writing the checkpoint); ``wall_minutes`` includes the
validations; ``valid_minutes`` is their running total. Throughput (``tokens_per_s``, ``pairs_per_s``) is
the steady state: counted from the end of the first logging interval to the last training step, over
training time only. Tokens are target tokens incl. ``</s>`` as JoeyNMT counts them (``Batch.ntokens``),
i.e. words at ``--level word`` and sentencepiece pieces at ``--level sentencepiece``. Over the same window,
``cpu_share`` is the training process's CPU time over ``threads`` x training time, and ``other_load`` the
CPU time all other processes used, over cores x training time (Linux /proc/stat): a share well below 1 or
a load well above 0 means the run competed for the cores, and its speed is not the machine's.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from machine import cpu_model, package_version, thread_env

SRC_LANG, TRG_LANG = "fr", "en"
REQUIRED_MODULES = ("joeynmt", "torch", "sentencepiece", "sacrebleu", "yaml")
CHILD = "--joeynmt-child"  # first argument of the child processes: this script runs JoeyNMT's training or decoding
# JoeyNMT's default special symbols (config.py: unk 0, pad 1, bos 2, eos 3); sentencepiece is trained with the
# same ids, so its pieces and JoeyNMT's vocabulary line up one to one.
SPECIAL_IDS = {"unk_id": 0, "pad_id": 1, "bos_id": 2, "eos_id": 3}
LR_PATIENCE_EPOCHS = 2  # ours: ReduceLROnPlateau(factor=0.5, patience=2) on the validation loss, once an epoch
TSV_COLUMNS = (
    "level", "checkpoint", "steps", "minutes", "wall_minutes", "valid_minutes", "test_bleu_greedy",
    "greedy_decode_s", "test_bleu_beam", "beam_decode_s", "beam_size", "tokens_per_s", "pairs_per_s",
    "cpu_share", "other_load", "joeynmt_logged_tokens_per_s", "params", "src_vocab", "trg_vocab", "train_pairs",
    "test_pairs", "validation_freq", "batch_size", "hidden", "threads", "cpu", "torch", "joeynmt", "python",
)


# ------------------------------------------------------------------------------------------------ settings


@dataclass
class RunSettings:
    """Everything the parent decides before training (also written to ``work-dir/settings.json``)."""

    level: str
    minutes: float
    clock: str
    threads: int
    batch_size: int
    hidden: int
    dropout: float
    learning_rate: float
    label_smoothing: float
    clip_grad_norm: float
    validation_freq: int
    logging_freq: int
    lr_patience: int
    beam_size: int
    beam_alpha: float
    max_output_length: int
    eval_batch_size: int
    vocab_size: int
    seed: int
    flush_denormal: bool
    train_pairs: int = 0
    valid_pairs: int = 0
    test_pairs: int = 0


@dataclass
class Checkpoint:
    """One checkpoint that JoeyNMT wrote, with the training clock at the moment it was taken."""

    path: str
    steps: int
    train_s: float
    wall_s: float
    valid_s: float


@dataclass
class TrainRecord:
    """What the training child reported: checkpoints, throughput samples, model size."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    progress: list[dict] = field(default_factory=list)
    params: int = 0
    src_vocab: int = 0
    trg_vocab: int = 0
    cpus: int = 1
    stopped_by_clock: bool = False


# -------------------------------------------------------------------------------------------------- data


def read_pairs(path: Path, limit: int = 0) -> list[tuple[str, str]]:
    """Our TSV (header ``source<TAB>target``) -> [(source, target)], the first ``limit`` pairs if limit > 0."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t")[:2] != ["source", "target"]:
        raise ValueError(f"{path}: expected a header 'source<TAB>target'")
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            raise ValueError(f"{path}:{number}: expected two non-empty tab-separated cells")
        pairs.append((cells[0], cells[1]))
    return pairs[:limit] if limit > 0 else pairs


def write_plain(pairs: Sequence[tuple[str, str]], prefix: Path) -> None:
    """Write ``prefix.fr`` and ``prefix.en``, one sentence a line (JoeyNMT's ``plain`` dataset)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for index, lang in enumerate((SRC_LANG, TRG_LANG)):
        text = "".join(pair[index] + "\n" for pair in pairs)
        prefix.with_name(f"{prefix.name}.{lang}").write_text(text, encoding="utf-8")


def train_sentencepiece(sentences: Iterable[str], model_prefix: Path, vocab_size: int, seed: int,
                        threads: int) -> Path:
    """Train a unigram sentencepiece model on ``sentences``; returns the ``.model`` path.

    The text is already normalized, so the ``identity`` rule keeps decoding an exact inverse; the special
    ids are JoeyNMT's. ``vocab_size`` is an upper bound (``hard_vocab_limit=False``): a small side (the
    English of Tatoeba) may have fewer pieces to offer. Seeded, and deterministic for a given input.
    """
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)), model_prefix=str(model_prefix), vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, normalization_rule_name="identity", hard_vocab_limit=False,
        num_threads=threads, minloglevel=2, **SPECIAL_IDS,
    )
    return model_prefix.with_name(model_prefix.name + ".model")


def write_sentencepiece_vocab(model_path: Path, vocab_path: Path) -> int:
    """Write the model's pieces in id order as a JoeyNMT ``voc_file``; returns the vocabulary size."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model_path))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab_path.write_text("".join(piece + "\n" for piece in pieces), encoding="utf-8")
    return len(pieces)


def prepare_data(data_dir: Path, work_dir: Path, settings: RunSettings, valid_limit: int,
                 test_limit: int) -> tuple[dict[str, dict], list[str]]:
    """Convert the splits (and train sentencepiece models); returns JoeyNMT's src/trg data configs and the
    test references."""
    train = read_pairs(data_dir / "train.tsv")
    valid = read_pairs(data_dir / "valid.tsv", valid_limit)
    test = read_pairs(data_dir / "test.tsv", test_limit)
    settings.train_pairs, settings.valid_pairs, settings.test_pairs = len(train), len(valid), len(test)
    out = work_dir / "data"
    for name, pairs in (("train", train), ("dev", valid), ("test", test)):
        write_plain(pairs, out / name)
    sides: dict[str, dict] = {}
    for index, (key, lang) in enumerate((("src", SRC_LANG), ("trg", TRG_LANG))):
        side: dict[str, Any] = {"lang": lang, "lowercase": False, "normalize": False, "max_length": -1,
                                "min_length": -1, "voc_min_freq": 1}
        if settings.level == "word":
            side["level"] = "word"
        else:
            model = train_sentencepiece((pair[index] for pair in train), out / f"spm.{lang}", settings.vocab_size,
                                        settings.seed, settings.threads)
            write_sentencepiece_vocab(model, out / f"spm.{lang}.vocab.txt")
            side.update(level="bpe", tokenizer_type="sentencepiece", voc_file=str(out / f"spm.{lang}.vocab.txt"),
                        tokenizer_cfg={"model_file": str(model), "pretokenizer": "none", "alpha": 0.0})
        sides[key] = side
    return sides, [target for _, target in test]


# ------------------------------------------------------------------------------------------------ config


def build_config(work_dir: Path, sides: dict[str, dict], settings: RunSettings) -> dict:
    """The JoeyNMT 2.3 configuration of the matched model (see the module docstring)."""
    embeddings = {"embedding_dim": settings.hidden, "scale": False, "dropout": settings.dropout}
    data_dir = work_dir / "data"
    return {
        "name": f"joeynmt_peer_{settings.level}",
        "joeynmt_version": "2.3.0",
        "model_dir": str(work_dir / "model"),
        "use_cuda": False,
        "fp16": False,
        "random_seed": settings.seed,
        "data": {
            "train": str(data_dir / "train"), "dev": str(data_dir / "dev"), "test": str(data_dir / "test"),
            "dataset_type": "plain", "src": sides["src"], "trg": sides["trg"],
        },
        "testing": {
            "n_best": 1, "beam_size": 1, "beam_alpha": settings.beam_alpha, "batch_size": settings.eval_batch_size,
            "batch_type": "sentence", "max_output_length": settings.max_output_length, "min_output_length": 1,
            "eval_metrics": ["bleu"], "sacrebleu_cfg": {"tokenize": "13a"}, "generate_unk": True,
        },
        "training": {
            "random_seed": settings.seed, "optimizer": "adam", "adam_betas": [0.9, 0.999],
            "learning_rate": settings.learning_rate, "learning_rate_min": 1.0e-8, "weight_decay": 0.0,
            "clip_grad_norm": settings.clip_grad_norm, "loss": "crossentropy",
            "label_smoothing": settings.label_smoothing, "normalization": "tokens",
            "batch_size": settings.batch_size, "batch_type": "sentence", "batch_multiplier": 1,
            "scheduling": "plateau", "patience": settings.lr_patience, "decrease_factor": 0.5,
            "early_stopping_metric": "loss", "epochs": 100000, "validation_freq": settings.validation_freq,
            "logging_freq": settings.logging_freq, "model_dir": str(work_dir / "model"), "overwrite": True,
            "shuffle": True, "use_cuda": False, "fp16": False, "num_workers": 0, "print_valid_sents": [0, 1, 2],
            "keep_best_ckpts": -1,
        },
        "model": {
            "initializer": "xavier_uniform", "bias_initializer": "zeros", "embed_initializer": "xavier_uniform",
            "tied_embeddings": False, "tied_softmax": True,
            "encoder": {
                "type": "recurrent", "rnn_type": "gru", "embeddings": dict(embeddings), "hidden_size": settings.hidden,
                "bidirectional": True, "dropout": settings.dropout, "num_layers": 1,
            },
            "decoder": {
                "type": "recurrent", "rnn_type": "gru", "embeddings": dict(embeddings), "hidden_size": settings.hidden,
                "dropout": settings.dropout, "hidden_dropout": settings.dropout, "num_layers": 1,
                "input_feeding": True, "init_hidden": "bridge", "attention": "bahdanau",
            },
        },
    }


def write_config(config: dict, path: Path) -> None:
    """``config`` as JoeyNMT's YAML file (keys in the order given)."""
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def logging_freq_for(validation_freq: int, at_most: int = 25) -> int:
    """The largest divisor of ``validation_freq`` up to ``at_most`` (JoeyNMT needs one that divides it)."""
    return max(d for d in range(1, min(at_most, validation_freq) + 1) if validation_freq % d == 0)


# ------------------------------------------------------------------------------------------ child processes


def child_parser() -> argparse.ArgumentParser:
    """Command line of a child process: ``CHILD train ...`` or ``CHILD decode ...``, as :func:`child_command`
    writes it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, required=True)
    common.add_argument("--threads", type=int, required=True)
    common.add_argument("--flush-denormal", action="store_true")
    parser = argparse.ArgumentParser(prog=f"joeynmt_peer.py {CHILD}")
    tasks = parser.add_subparsers(dest="task", required=True)
    train = tasks.add_parser("train", parents=[common], help="train with a clock, reporting events as JSON lines")
    train.add_argument("--events", type=Path, required=True)
    train.add_argument("--minutes", type=float, required=True)
    train.add_argument("--clock", choices=("train", "wall"), required=True)
    train.add_argument("--logging-freq", type=int, required=True)
    decode = tasks.add_parser("decode", parents=[common], help="decode the test split with each checkpoint")
    decode.add_argument("--jobs", type=Path, required=True, help="JSON list of {checkpoint, beam_size}")
    decode.add_argument("--results", type=Path, required=True)
    return parser


def child_command(task: str, config_path: Path, settings: RunSettings, *options: str) -> list[str]:
    """The command that runs this script as the ``task`` child with the run's threads and denormal setting."""
    command = [sys.executable, str(Path(__file__).resolve()), CHILD, task, "--config", str(config_path),
               "--threads", str(settings.threads), *options]
    return command + (["--flush-denormal"] if settings.flush_denormal else [])


def child(argv: Sequence[str]) -> int:
    """Child process: set up torch and JoeyNMT (:func:`child_setup`), then run the task."""
    args = child_parser().parse_args(argv)
    cfg, logger = child_setup(args)
    return CHILD_TASKS[args.task](args, cfg, logger)


def child_setup(args: argparse.Namespace) -> tuple[dict, Any]:
    """Threads and denormals as the parent asked, JoeyNMT's config and its logger to ``<model_dir>/<task>.log``
    (training first empties the model folder and copies the config into it)."""
    import torch
    from joeynmt.config import load_config
    from joeynmt.helpers import make_model_dir
    from joeynmt.helpers_for_ddp import get_logger

    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    cfg = load_config(args.config)
    model_dir = Path(cfg["model_dir"])
    if args.task == "train":
        make_model_dir(model_dir, overwrite=True)
        shutil.copy2(args.config, model_dir / "config.yaml")
    return cfg, get_logger("", log_file=str(model_dir / f"{args.task}.log"))


def train_child(args: argparse.Namespace, cfg: dict, logger: Any) -> int:
    """Run JoeyNMT's training with a clock (:func:`install_clock`), reporting events as JSON lines."""
    from joeynmt.helpers import check_version
    from joeynmt.training import train

    logger.info("Hello! This is Joey-NMT (version %s), under joeynmt_peer.py's clock.", check_version("2.3.0"))
    with args.events.open("w", encoding="utf-8") as events:
        install_clock(events, 60.0 * args.minutes, args.clock, args.logging_freq)
        train(rank=0, world_size=None, cfg=cfg, skip_test=True)
    return 0


def decode_child(args: argparse.Namespace, cfg: dict, logger: Any) -> int:
    """Decode the test split with each checkpoint of ``args.jobs``; writes a JSON list of results."""
    from joeynmt.config import parse_global_args
    from joeynmt.helpers import load_checkpoint
    from joeynmt.prediction import predict, prepare

    jobs = json.loads(args.jobs.read_text(encoding="utf-8"))
    cfg["testing"]["load_model"] = jobs[0]["checkpoint"]
    run = parse_global_args(cfg, rank=0, mode="test")
    model, _, _, test_data = prepare(run, rank=0, mode="test")
    results = []
    for job in jobs:
        model.load_state_dict(load_checkpoint(Path(job["checkpoint"]), map_location=run.device)["model_state"])
        test_args = run.test._replace(beam_size=job["beam_size"], n_best=1, return_attention=False)
        start = time.perf_counter()
        hypotheses = predict(model=model, data=test_data, device=run.device, n_gpu=0, rank=0, compute_loss=False,
                             normalization=run.train.normalization, args=test_args, autocast=run.autocast)[2]
        results.append({**job, "seconds": time.perf_counter() - start, "hypotheses": hypotheses})
    args.results.write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    return 0


CHILD_TASKS: dict[str, Callable[[argparse.Namespace, dict, Any], int]] = {"train": train_child,
                                                                          "decode": decode_child}


def run_child(task: str, config_path: Path, settings: RunSettings, options: Sequence[str], log_path: Path,
              timeout: float | None = None) -> None:
    """Run the ``task`` child (:func:`child_command`) with its output in ``log_path`` and OpenMP/MKL at the
    run's threads. After ``timeout`` seconds (or on Ctrl-C) it gets SIGINT, on which JoeyNMT saves the current
    weights and stops; SIGKILL two minutes later. A failed child is a RuntimeError naming its log."""
    command = child_command(task, config_path, settings, *options)
    with log_path.open("w", encoding="utf-8") as log:
        child_process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         env=thread_env(settings.threads))
        try:
            code = child_process.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            child_process.send_signal(signal.SIGINT)
            try:
                code = child_process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child_process.kill()
                code = child_process.wait()
    if code != 0:
        raise RuntimeError(f"JoeyNMT's {task} child failed (exit {code}); see {log_path}")


def machine_busy_seconds() -> float:
    """CPU seconds all processes have used on this machine since boot (Linux /proc/stat), else NaN."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return float("nan")
    # cpu user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    values = [int(v) for v in fields[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall, own-CPU and machine-busy clocks that can leave out intervals (the validations)."""

    def __init__(self) -> None:
        self.start = (time.perf_counter(), time.process_time(), machine_busy_seconds())
        self.excluded = [0.0, 0.0, 0.0]
        self.paused_at: tuple[float, float, float] | None = None

    @staticmethod
    def now() -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), machine_busy_seconds()

    def pause(self) -> None:
        self.paused_at = self.now()

    def resume(self) -> float:
        """End a left-out interval; returns its wall seconds."""
        now = self.now()
        spans = [b - a for a, b in zip(self.paused_at, now)]
        self.excluded = [e + d for e, d in zip(self.excluded, spans)]
        self.paused_at = None
        return spans[0]

    def read(self, at: tuple[float, float, float] | None = None) -> dict[str, float]:
        """train_s, cpu_s, busy_s (each less the left-out intervals) and wall_s, valid_s at ``at`` (now)."""
        at = at or self.now()
        train, cpu, busy = (a - s - e for a, s, e in zip(at, self.start, self.excluded))
        return {"train_s": train, "cpu_s": cpu, "busy_s": busy, "wall_s": at[0] - self.start[0],
                "valid_s": self.excluded[0]}


def install_clock(events, budget_s: float, clock: str, log_every: int) -> None:
    """Wrap JoeyNMT's TrainManager: time the steps and validations, stop at the budget, log checkpoints.

    ``_train_step`` (one batch's forward/backward) is entered once per step with ``stats.steps`` counting the
    steps done so far; ``_validate`` runs the dev set and saves the checkpoint; ``_save_checkpoint`` is also
    called once more when training ends (here: by the KeyboardInterrupt raised at the budget). The clocks
    start at the first step, so data loading, vocabulary and model building are not counted.
    """
    from joeynmt.training import TrainManager

    state: dict[str, Any] = {"meter": None, "pairs": 0, "tokens": 0, "logged": -1}
    step, validate, save = TrainManager._train_step, TrainManager._validate, TrainManager._save_checkpoint

    def emit(**record: Any) -> None:
        events.write(json.dumps(record) + "\n")
        events.flush()

    def timed_step(self, batch):
        if state["meter"] is None:
            state["meter"] = Meter()
            emit(event="model", params=sum(p.numel() for p in self.model.parameters()),
                 src_vocab=len(self.model.src_vocab), trg_vocab=len(self.model.trg_vocab), cpus=os.cpu_count())
        clocks = state["meter"].read()
        steps = self.stats.steps
        if steps % log_every == 0 and steps != state["logged"]:
            state["logged"] = steps
            emit(event="progress", steps=steps, pairs=state["pairs"], tokens=state["tokens"], **clocks)
        if clocks["train_s" if clock == "train" else "wall_s"] >= budget_s:
            emit(event="stop", steps=steps, pairs=state["pairs"], tokens=state["tokens"], **clocks)
            raise KeyboardInterrupt(f"joeynmt_peer: {clock} time budget of {budget_s:.0f}s reached")
        result = step(self, batch)
        state["pairs"] += int(batch.nseqs)
        state["tokens"] += int(batch.ntokens)
        return result

    def timed_validate(self, valid_data):
        state["meter"].pause()
        try:
            return validate(self, valid_data)
        finally:
            emit(event="validation", steps=self.stats.steps, seconds=state["meter"].resume())

    def logged_save(self, new_best, score):
        result = save(self, new_best, score)
        meter = state["meter"]
        if meter is not None:  # a checkpoint inside a validation is stamped with the validation's start
            clocks = meter.read(meter.paused_at)
            emit(event="checkpoint", path=str(Path(self.model_dir) / f"{self.stats.steps}.ckpt"),
                 steps=self.stats.steps, train_s=clocks["train_s"], wall_s=clocks["wall_s"],
                 valid_s=clocks["valid_s"])
        return result

    TrainManager._train_step = timed_step
    TrainManager._validate = timed_validate
    TrainManager._save_checkpoint = logged_save


def run_training(config_path: Path, work_dir: Path, settings: RunSettings) -> TrainRecord:
    """Run the training child under ``settings.threads`` threads; returns what it reported."""
    events_path = work_dir / "events.jsonl"
    options = ["--events", str(events_path), "--minutes", str(settings.minutes), "--clock", settings.clock,
               "--logging-freq", str(settings.logging_freq)]
    # The child stops itself; this cap only guards against a hang (validations are not on the train clock).
    run_child("train", config_path, settings, options, work_dir / "train.stdout.log",
              timeout=3 * 60.0 * settings.minutes + 900.0)
    return read_events(events_path)


def read_events(path: Path) -> TrainRecord:
    """Parse the child's JSON lines (one checkpoint per step count: the first one written wins)."""
    record = TrainRecord()
    seen: set[int] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        kind = event.pop("event")
        if kind == "model":
            record.params, record.src_vocab, record.trg_vocab = event["params"], event["src_vocab"], event["trg_vocab"]
            record.cpus = event["cpus"] or 1
        elif kind in ("progress", "stop"):
            record.progress.append(event)
            record.stopped_by_clock = record.stopped_by_clock or kind == "stop"
        elif kind == "checkpoint" and event["steps"] not in seen and event["steps"] > 0:
            seen.add(event["steps"])
            record.checkpoints.append(Checkpoint(**event))
    return record


# ---------------------------------------------------------------------------------------------- throughput


@dataclass
class Throughput:
    """Steady-state training speed and how much of the machine the run had."""

    tokens_per_s: float = float("nan")
    pairs_per_s: float = float("nan")
    cpu_share: float = float("nan")  # own CPU time / (threads x training time)
    other_load: float = float("nan")  # other processes' CPU time / (cores x training time)


def steady_throughput(progress: Sequence[dict], threads: int, cpus: int) -> Throughput:
    """Throughput from the first logging mark after step 0 to the last sample, over training time only.

    A ``cpu_share`` well below 1 or an ``other_load`` well above 0 means the run shared the cores with
    other processes, so its speed is not the machine's.
    """
    samples = [p for p in progress if p["steps"] > 0]
    if len(samples) < 2:
        samples = list(progress)
    if len(samples) < 2 or samples[-1]["train_s"] <= samples[0]["train_s"]:
        return Throughput()
    first, last = samples[0], samples[-1]
    seconds = last["train_s"] - first["train_s"]
    cpu = last["cpu_s"] - first["cpu_s"]
    return Throughput(tokens_per_s=(last["tokens"] - first["tokens"]) / seconds,
                      pairs_per_s=(last["pairs"] - first["pairs"]) / seconds, cpu_share=cpu / (threads * seconds),
                      other_load=(last["busy_s"] - first["busy_s"] - cpu) / (max(cpus, 1) * seconds))


def logged_tokens_per_s(train_log: Path) -> float:
    """Median of JoeyNMT's own ``Tokens per Sec`` log lines, leaving out the first (warm-up) interval."""
    pattern = re.compile(r"Step:\s+(\d+),.*Tokens per Sec:\s+([\d.]+)")
    values = [float(m.group(2)) for m in map(pattern.search, train_log.read_text(encoding="utf-8").splitlines()) if m]
    values = values[1:] if len(values) > 1 else values
    return statistics.median(values) if values else float("nan")


def select_checkpoints(checkpoints: Sequence[Checkpoint], mark_minutes: float) -> list[Checkpoint]:
    """All checkpoints (``mark_minutes`` <= 0), else the first one at or after each multiple of
    ``mark_minutes`` of training time; the last checkpoint always."""
    ordered = sorted(checkpoints, key=lambda c: c.steps)
    if mark_minutes <= 0 or not ordered:
        return ordered
    chosen: list[Checkpoint] = []
    mark = mark_minutes
    for checkpoint in ordered:
        if checkpoint.train_s >= 60.0 * mark:
            chosen.append(checkpoint)
            while checkpoint.train_s >= 60.0 * mark:
                mark += mark_minutes
    if chosen[-1:] != ordered[-1:]:
        chosen.append(ordered[-1])
    return chosen


# ------------------------------------------------------------------------------------------------ decoding


def run_decoding(config_path: Path, work_dir: Path, jobs: list[dict], settings: RunSettings) -> list[dict]:
    """Run the decode child for ``jobs`` ([{checkpoint, beam_size}]); returns them with seconds, hypotheses."""
    jobs_path, results_path = work_dir / "decode_jobs.json", work_dir / "decode_results.json"
    jobs_path.write_text(json.dumps(jobs), encoding="utf-8")
    run_child("decode", config_path, settings, ["--jobs", str(jobs_path), "--results", str(results_path)],
              work_dir / "decode.stdout.log")
    return json.loads(results_path.read_text(encoding="utf-8"))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU (13a tokenizer, ``force=True``: our text is already tokenized)."""
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return BLEU(force=True).corpus_score(list(hypotheses), [list(references)]).score


# ------------------------------------------------------------------------------------------------ report


def build_rows(settings: RunSettings, record: TrainRecord, chosen: Sequence[Checkpoint], decoded: Sequence[dict],
               references: Sequence[str], joey_tokens_per_s: float) -> list[dict]:
    """One row per decoded checkpoint, with BLEU, decode times and the run's summary columns."""
    speed = steady_throughput(record.progress, settings.threads, record.cpus)
    summary = {
        "level": settings.level, "tokens_per_s": f"{speed.tokens_per_s:.1f}",
        "pairs_per_s": f"{speed.pairs_per_s:.1f}", "cpu_share": f"{speed.cpu_share:.2f}",
        "other_load": f"{speed.other_load:.2f}",
        "joeynmt_logged_tokens_per_s": f"{joey_tokens_per_s:.1f}", "params": record.params,
        "src_vocab": record.src_vocab, "trg_vocab": record.trg_vocab, "train_pairs": settings.train_pairs,
        "test_pairs": settings.test_pairs, "validation_freq": settings.validation_freq,
        "batch_size": settings.batch_size, "hidden": settings.hidden, "threads": settings.threads, "cpu": cpu_model(),
        "torch": package_version("torch"), "joeynmt": package_version("joeynmt"),
        "python": platform.python_version(),
    }
    by_key = {(d["checkpoint"], d["beam_size"]): d for d in decoded}
    rows = []
    for checkpoint in chosen:
        greedy = by_key[(checkpoint.path, 1)]
        beam = by_key.get((checkpoint.path, settings.beam_size)) if settings.beam_size > 1 else None
        rows.append({
            **summary, "checkpoint": Path(checkpoint.path).name, "steps": checkpoint.steps,
            "minutes": f"{checkpoint.train_s / 60:.3f}", "wall_minutes": f"{checkpoint.wall_s / 60:.3f}",
            "valid_minutes": f"{checkpoint.valid_s / 60:.3f}",
            "test_bleu_greedy": f"{corpus_bleu(greedy['hypotheses'], references):.2f}",
            "greedy_decode_s": f"{greedy['seconds']:.1f}",
            "test_bleu_beam": f"{corpus_bleu(beam['hypotheses'], references):.2f}" if beam else "",
            "beam_decode_s": f"{beam['seconds']:.1f}" if beam else "",
            "beam_size": settings.beam_size if beam else "",
        })
    return rows


def write_tsv(rows: Sequence[dict], path: Path) -> None:
    """Write ``rows`` with :data:`TSV_COLUMNS` as the header, through a temporary file (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TSV_COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)


def write_hypotheses(work_dir: Path, decoded: Sequence[dict]) -> None:
    """Keep every decoded test output as ``hyps/<checkpoint>.<greedy|beamK>.txt``."""
    out = work_dir / "hyps"
    out.mkdir(exist_ok=True)
    for result in decoded:
        kind = "greedy" if result["beam_size"] == 1 else f"beam{result['beam_size']}"
        name = f"{Path(result['checkpoint']).stem}.{kind}.txt"
        (out / name).write_text("".join(h + "\n" for h in result["hypotheses"]), encoding="utf-8")


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with our train/valid/test.tsv")
    parser.add_argument("--work-dir", type=Path, required=True, help="JoeyNMT data, config, model, logs")
    parser.add_argument("--level", choices=("word", "sentencepiece"), default="word")
    parser.add_argument("--minutes", type=float, required=True, help="training budget (see --clock)")
    parser.add_argument("--clock", choices=("train", "wall"), default="train",
                        help="train: the budget excludes validation time; wall: it includes it")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch")
    parser.add_argument("--hidden", type=int, default=256, help="hidden and embedding size")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--learning-rate", type=float, default=0.002)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--clip-grad-norm", type=float, default=1.0)
    parser.add_argument("--validation-freq", type=int, default=0,
                        help="steps between validations/checkpoints; 0: one epoch (word), 100 (sentencepiece)")
    parser.add_argument("--valid-limit", type=int, default=0, help="validate on the first N valid pairs (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="decode the first N test pairs (0: all)")
    parser.add_argument("--mark-minutes", type=float, default=0.0,
                        help="decode the first checkpoint past each multiple of this (0: every checkpoint)")
    parser.add_argument("--beam-size", type=int, default=5, help="beam for the last checkpoint (1: no beam run)")
    parser.add_argument("--beam-alpha", type=float, default=0.6, help="GNMT length penalty exponent, as ours")
    parser.add_argument("--max-output-length", type=int, default=None,
                        help="decoding limit; default 30 (word, as ours), -1 = JoeyNMT's 1.5 x source (sentencepiece)")
    parser.add_argument("--eval-batch-size", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=8000, help="sentencepiece vocabulary per side")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flush-denormal", action="store_true",
                        help="torch.set_flush_denormal(True), as our training does (stock JoeyNMT does not)")
    parser.add_argument("--out", type=Path, required=True, help="result TSV")
    return parser.parse_args(argv)


def make_settings(args: argparse.Namespace) -> RunSettings:
    """Resolve defaults that depend on the level and the data size."""
    train_pairs = max(0, len((args.data_dir / "train.tsv").read_text(encoding="utf-8").splitlines()) - 1)
    steps_per_epoch = max(1, math.ceil(train_pairs / args.batch_size))
    validation_freq = args.validation_freq or (steps_per_epoch if args.level == "word" else 100)
    max_output_length = args.max_output_length
    if max_output_length is None:
        max_output_length = 30 if args.level == "word" else -1
    return RunSettings(
        level=args.level, minutes=args.minutes, clock=args.clock, threads=args.threads, batch_size=args.batch_size,
        hidden=args.hidden, dropout=args.dropout, learning_rate=args.learning_rate,
        label_smoothing=args.label_smoothing, clip_grad_norm=args.clip_grad_norm, validation_freq=validation_freq,
        logging_freq=logging_freq_for(validation_freq),
        # ours waits LR_PATIENCE_EPOCHS epochs; JoeyNMT counts validations
        lr_patience=max(1, round(LR_PATIENCE_EPOCHS * steps_per_epoch / validation_freq)),
        beam_size=args.beam_size, beam_alpha=args.beam_alpha, max_output_length=max_output_length,
        eval_batch_size=args.eval_batch_size, vocab_size=args.vocab_size, seed=args.seed,
        flush_denormal=args.flush_denormal,
    )


def missing_module() -> str | None:
    """The first of :data:`REQUIRED_MODULES` that cannot be imported, else None."""
    for name in REQUIRED_MODULES:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare, train, decode, score, write the TSV."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [CHILD]:
        return child(argv[1:])
    args = parse_args(argv)
    missing = missing_module()
    if missing is not None:
        print(f"SKIP: {missing} is not importable by {sys.executable} (install joeynmt==2.3.0 in this venv)")
        return 0
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = make_settings(args)
    started = time.perf_counter()
    sides, references = prepare_data(args.data_dir, work_dir, settings, args.valid_limit, args.test_limit)
    (work_dir / "settings.json").write_text(json.dumps(asdict(settings), indent=2) + "\n", encoding="utf-8")
    config_path = work_dir / "config.yaml"
    write_config(build_config(work_dir, sides, settings), config_path)
    print(f"data: {settings.train_pairs} train / {settings.valid_pairs} valid / {settings.test_pairs} test pairs; "
          f"config {config_path}", flush=True)

    record = run_training(config_path, work_dir, settings)
    if not record.checkpoints:
        raise RuntimeError(f"JoeyNMT wrote no checkpoint; see {work_dir / 'train.stdout.log'}")
    speed = steady_throughput(record.progress, settings.threads, record.cpus)
    print(f"trained {record.checkpoints[-1].steps} steps, {len(record.checkpoints)} checkpoints; "
          f"{speed.tokens_per_s:.0f} target tokens/s, {speed.pairs_per_s:.1f} pairs/s; own CPU share "
          f"{speed.cpu_share:.2f}, other processes' load {speed.other_load:.2f}", flush=True)

    chosen = select_checkpoints(record.checkpoints, args.mark_minutes)
    jobs = [{"checkpoint": c.path, "beam_size": 1} for c in chosen]
    if settings.beam_size > 1:
        jobs.append({"checkpoint": chosen[-1].path, "beam_size": settings.beam_size})
    decoded = run_decoding(config_path, work_dir, jobs, settings)
    write_hypotheses(work_dir, decoded)
    rows = build_rows(settings, record, chosen, decoded, references,
                      logged_tokens_per_s(work_dir / "model" / "train.log"))
    write_tsv(rows, args.out)
    last = rows[-1]
    print(f"wrote {args.out}: last checkpoint {last['checkpoint']} at {last['minutes']} min: greedy BLEU "
          f"{last['test_bleu_greedy']} ({last['greedy_decode_s']} s), beam BLEU {last['test_bleu_beam'] or '-'} "
          f"({last['beam_decode_s'] or '-'} s); total {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
