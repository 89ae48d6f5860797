"""Training-throughput benchmark: our batched model against the PyTorch tutorial's training loops.

One run measures, on the same data and machine:

- ``baseline``: the 2017 tutorial ("Translation with a Sequence to Sequence Network and Attention",
  Sean Robertson): one pair per step, the encoder fed one token at a time from Python, an attention
  decoder whose ``attn`` layer scores a fixed ``max_length`` positions, SGD, teacher forcing ratio 0.5;
  timed first, in the process as PyTorch starts it, as the tutorial runs;
- ``baseline-tuned``: the same step after :func:`seq2seq.optimization.tune_cpu_runtime` (flushed denormals), the
  process setting our variants train under: the ratio to it isolates what batching and the model code gain,
  without the runtime tuning;
- ``tutorial2023``: the current tutorial: batches of 32 padded to ``max_length`` without a mask,
  Bahdanau attention recomputing ``Ua(keys)`` every step, Adam, teacher forcing 1.0, hidden 128;
- one row per attention variant of our model (the config schema's list) trained with
  :func:`seq2seq.training.train_batch`, plus ``bahdanau-h128`` at the 2023 tutorial's own settings;

and the machine's fp32 matrix-multiply rate, so each row can say what fraction of it training reaches.

FLOP counts come from :mod:`flops` (counted by torch's FlopCounterMode for our model, whatever its attention;
analytic for the tutorial loops), the tutorial loops from :mod:`tutorial_baselines`, the machine's description
from :mod:`machine` (all beside this module in workflow/benchmarks/, outside the package: no rule uses them);
this module times them and writes the table. :func:`build_model` is the one place the benchmarks name the
package's model classes.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from flops import TUTORIAL_FLOPS, DataShape, ModelSizes, count_flops, quantile_sample
from machine import machine_info, measure_matmul_flops, synchronize
from seq2seq.batching import Batch, encode_pairs, make_batches
from seq2seq.corpus import CorpusError, read_split
from seq2seq.devices import resolve_device
from seq2seq.fileio import atomic_open
from seq2seq import models
from seq2seq.optimization import build_optimizer, resolve_amp, tune_cpu_runtime
from seq2seq.runs import model_config
from seq2seq.schema import schema_choices, schema_default
from seq2seq.settings import TrainConfig
from seq2seq.training import train_batch
from seq2seq.vocab import Vocabulary, WordVocabulary, load_vocabulary
from tutorial_baselines import (
    Tutorial2017AttnDecoder, Tutorial2017Encoder, Tutorial2023AttnDecoder, Tutorial2023Encoder, pad_to_length,
    tutorial2017_train_step, tutorial2023_train_step,
)

log = logging.getLogger(__name__)

# every attention the pipeline can train, from the config schema (a variant added there is timed too)
OUR_VARIANTS: tuple[str, ...] = tuple(schema_choices("models.*.attention"))
BASELINES: tuple[str, ...] = ("baseline", "baseline-tuned")  # the 2017 tutorial step, batch 1
ALL_VARIANTS: tuple[str, ...] = (*BASELINES, *OUR_VARIANTS, "tutorial2023", "bahdanau-h128")
TUTORIAL2023_HIDDEN = 128
TUTORIAL2023_BATCH = 32
TABLE_COLUMNS: tuple[str, ...] = (
    "variant", "batch_size", "hidden_size", "pairs_per_s", "tokens_per_s", "ratio_to_baseline",
    "ratio_to_baseline_tuned", "mflops_per_pair", "mflops_counted", "achieved_gflops", "flops_fraction",
    "pairs_per_s_best", "round_spread", "seconds_measured", "steps", "pairs", "device", "threads",
    "parameters", "bidirectional", "tie_embeddings", "dropout", "label_smoothing", "batch_tokens",  # our rows only
)
# same on every row: where it was measured, and on what data (the vocabularies decide the sequence lengths)
MACHINE_COLUMNS: tuple[str, ...] = ("matmul_gflops", "cpu", "cores", "gpu", "torch", "data", "precision")


# --------------------------------------------------------------------------------------------------
# Results table
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelOptions:
    """Settings of our model's rows besides attention, hidden and batch size: by default the pipeline's own
    (the schema's defaults, as config.yaml trains them)."""

    bidirectional: bool = schema_default("models.*.bidirectional")
    tie_embeddings: bool = schema_default("models.*.tie_embeddings")
    dropout: float = schema_default("models.*.dropout")
    label_smoothing: float = schema_default("training.label_smoothing")
    batch_tokens: int | None = None  # instead of the batch size: batches of at most this many padded tokens

    def describe(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in asdict(self).items())


@dataclass
class Measurement:
    """What one timed variant did: ``pairs`` and ``target_tokens`` (incl. <eos>, no padding) in ``seconds``."""

    variant: str
    batch_size: int
    hidden_size: int
    steps: int
    pairs: int
    target_tokens: int
    seconds: float
    flops_per_pair: float
    device: str
    threads: int
    counted_flops_per_pair: float | None = None
    round_rates: list[float] = field(default_factory=list)  # pairs/s of consecutive ~2 s rounds
    model: ModelOptions | None = None  # None for the tutorial rows
    parameters: int | None = None  # our model's trainable weights (None for the tutorial rows)


def build_table(measurements: Sequence[Measurement], matmul_flops_per_s: float,
                baselines: Sequence[str] = BASELINES) -> list[dict]:
    """One row per measurement with rates, the ratios to the baseline rows and the fraction of matmul rate.

    ``ratio_to_<name>`` for each name in ``baselines`` (``-`` becomes ``_``) is NaN when no row has that
    name; ``flops_fraction`` is
    pairs_per_s * flops_per_pair / matmul_flops_per_s. ``pairs_per_s_best`` (fastest round) and
    ``round_spread`` ((max - min) / median of the round rates) show how much other load disturbed the run.
    """
    if matmul_flops_per_s <= 0:
        raise ValueError(f"matmul rate must be positive, got {matmul_flops_per_s}")
    rates = {m.variant: m.pairs / m.seconds for m in measurements if m.seconds > 0}
    rows = []
    for m in measurements:
        if m.seconds <= 0:
            raise ValueError(f"variant {m.variant!r}: measured time must be positive, got {m.seconds}")
        pairs_per_s = m.pairs / m.seconds
        achieved = pairs_per_s * m.flops_per_pair
        token_batches = m.model is not None and m.model.batch_tokens is not None
        rows.append({
            "variant": m.variant,
            "batch_size": "" if token_batches else m.batch_size,  # the batch_tokens column says what a batch is
            "hidden_size": m.hidden_size,
            "pairs_per_s": pairs_per_s,
            "tokens_per_s": m.target_tokens / m.seconds,
            **{f"ratio_to_{name.replace('-', '_')}": pairs_per_s / rates[name] if rates.get(name) else math.nan
               for name in baselines},
            "mflops_per_pair": m.flops_per_pair / 1e6,
            "mflops_counted": (m.counted_flops_per_pair / 1e6
                               if m.counted_flops_per_pair is not None else math.nan),
            "achieved_gflops": achieved / 1e9,
            "flops_fraction": achieved / matmul_flops_per_s,
            "pairs_per_s_best": max(m.round_rates) if m.round_rates else pairs_per_s,
            "round_spread": _spread(m.round_rates),
            "seconds_measured": m.seconds,
            "steps": m.steps,
            "pairs": m.pairs,
            "device": m.device,
            "threads": m.threads,
            "parameters": "" if m.parameters is None else m.parameters,
            **(asdict(m.model) if m.model is not None else dict.fromkeys(asdict(ModelOptions()), "")),
        })
    return rows


def _spread(rates: Sequence[float]) -> float:
    """(max - min) / median of per-round rates; NaN with fewer than two rounds."""
    if len(rates) < 2:
        return math.nan
    ordered = sorted(rates)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return (ordered[-1] - ordered[0]) / median


def _format_value(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def write_table(rows: Sequence[dict], path: str | os.PathLike[str], machine: dict | None = None) -> None:
    """Write rows as a tab-separated file with a header line, atomically; the ``machine`` description
    (:func:`machine_info`) fills the :data:`MACHINE_COLUMNS` of every row, so the file says where it was
    measured (empty where unknown)."""
    machine = machine or {}
    with atomic_open(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TABLE_COLUMNS + MACHINE_COLUMNS)
        for row in rows:
            writer.writerow([_format_value(row[c]) for c in TABLE_COLUMNS]
                            + [_format_value(machine.get(c, "")) for c in MACHINE_COLUMNS])


def format_report(rows: Sequence[dict], machine: dict) -> str:
    """Human-readable summary: a header describing the machine, then an aligned table of the main columns."""
    header = [f"{key}: {value}" for key, value in machine.items()]
    columns = ("variant", "batch_size", "hidden_size", "pairs_per_s", "tokens_per_s", "ratio_to_baseline",
               "ratio_to_baseline_tuned", "mflops_per_pair", "flops_fraction")
    cells = [list(columns)] + [[_format_value(row[c]) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in cells]
    return "\n".join(header + [""] + lines)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------

def synthetic_pairs(n_pairs: int = 9000, source_vocab: int = 4500, target_vocab: int = 2900,
                    min_words: int = 3, max_words: int = 10, seed: int = 0) -> list[tuple[str, str]]:
    """A corpus shaped like the filtered fra-eng data: Zipf-distributed words, 3-10 words a side.

    Every word of both vocabularies occurs at least once, so the built vocabularies have the given sizes.
    """
    rng = random.Random(seed)

    def side(prefix: str, vocab: int) -> list[list[str]]:
        lengths = [rng.randint(min_words, max_words) for _ in range(n_pairs)]
        words = [f"{prefix}{i}" for i in range(vocab)]
        weights = [1.0 / (rank + 1) for rank in range(vocab)]
        stream = words + rng.choices(words, weights=weights, k=max(0, sum(lengths) - vocab))
        rng.shuffle(stream)
        out, pos = [], 0
        for n in lengths:
            out.append(stream[pos:pos + n])
            pos += n
        return out

    sources, targets = side("s", source_vocab), side("t", target_vocab)
    return [(" ".join(s), " ".join(t)) for s, t in zip(sources, targets)]


@dataclass
class BenchmarkData:
    """Encoded pairs: sources and targets as index lists ending with <eos>, and their vocabularies."""

    examples: list[tuple[list[int], list[int]]]
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    description: str

    @property
    def shape(self) -> DataShape:
        n = len(self.examples)
        return DataShape(sum(len(s) for s, _ in self.examples) / n, sum(len(t) for _, t in self.examples) / n)

    @property
    def max_length(self) -> int:
        """Longest sentence, either side, in tokens incl. <eos>: the tutorials' MAX_LENGTH for this data."""
        return max(max(len(s), len(t)) for s, t in self.examples)


def prepare_data(pairs: Sequence[tuple[str, str]], description: str,
                 vocabularies: tuple[Vocabulary, Vocabulary] | None = None) -> BenchmarkData:
    """Encode the pairs with <eos> appended, with the given vocabularies or word vocabularies (min_freq 1)
    built from the pairs."""
    if not pairs:
        raise ValueError(f"{description}: no sentence pairs")
    source_vocab, target_vocab = vocabularies or (WordVocabulary.build(s for s, _ in pairs),
                                                  WordVocabulary.build(t for _, t in pairs))
    return BenchmarkData(encode_pairs(pairs, source_vocab, target_vocab), source_vocab, target_vocab, description)


def load_data(data_dir: str | os.PathLike[str] | None, seed: int = 0,
              vocab_dir: str | os.PathLike[str] | None = None, required: bool = False) -> BenchmarkData:
    """The real ``train.tsv`` of ``data_dir`` when it exists (encoded with the pipeline's vocabularies of
    ``vocab_dir`` when given, e.g. its sentencepiece models), otherwise the synthetic corpus; with ``required``
    a CorpusError instead (a comparison with rates measured on the real data)."""
    if data_dir is not None:
        path = Path(data_dir) / "train.tsv"
        if required and not path.exists():
            raise CorpusError(f"{path}: not found (run the pipeline's data stages first, or pass --data-dir)")
        if path.exists():
            vocabularies = None
            if vocab_dir is not None:
                vocabularies = (load_vocabulary(Path(vocab_dir) / "source.json"),
                                load_vocabulary(Path(vocab_dir) / "target.json"))
                description = f"{path} ({vocabularies[0].kind} vocabularies of {vocab_dir})"
            else:
                description = str(path)
            return prepare_data(read_split(path), description, vocabularies)
        log.warning("%s not found; using the synthetic corpus", path)
    return prepare_data(synthetic_pairs(seed=seed), f"synthetic (seed {seed})")


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------

Step = Callable[[], tuple[int, int]]
"""Runs one training step; returns (pairs, target tokens incl. <eos>) it trained on."""


@dataclass
class Timing:
    steps: int
    pairs: int
    target_tokens: int
    seconds: float
    round_rates: list[float] = field(default_factory=list)


def time_steps(step: Step, device: torch.device, seconds: float, warmup_steps: int,
               max_steps: int | None = None, round_seconds: float = 2.0) -> Timing:
    """Run ``warmup_steps`` untimed steps, then steps until ``seconds`` have passed (or ``max_steps``).

    Also records pairs/s of consecutive rounds of at least ``round_seconds`` (a device sync ends each
    round), to show how steady the machine was.
    """
    for _ in range(warmup_steps):
        step()
    synchronize(device)
    steps = pairs = tokens = round_pairs = 0
    rates: list[float] = []
    start = round_start = time.perf_counter()
    while True:
        p, t = step()
        steps, pairs, tokens, round_pairs = steps + 1, pairs + p, tokens + t, round_pairs + p
        done = (max_steps is not None and steps >= max_steps) or time.perf_counter() - start >= seconds
        if done or time.perf_counter() - round_start >= round_seconds:
            synchronize(device)
            now = time.perf_counter()
            if now - round_start >= round_seconds / 2:  # a short last round would be mostly noise
                rates.append(round_pairs / (now - round_start))
            round_start, round_pairs = now, 0
        if done:
            break
    return Timing(steps, pairs, tokens, time.perf_counter() - start, rates)


def cycle(items: Sequence, seed: int) -> Iterator:
    """Endless iterator over ``items``, reshuffled each pass (seeded)."""
    rng = random.Random(seed)
    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        for i in order:
            yield items[i]


def baseline_step(data: BenchmarkData, device: torch.device, hidden: int, seed: int) -> Step:
    """A :data:`Step` of the 2017 tutorial (one pair, SGD lr 0.01, teacher forcing ratio 0.5)."""
    max_length = max(len(s) for s, _ in data.examples)
    encoder = Tutorial2017Encoder(len(data.source_vocab), hidden).to(device)
    decoder = Tutorial2017AttnDecoder(hidden, len(data.target_vocab), 0.1, max_length).to(device)
    enc_opt = torch.optim.SGD(encoder.parameters(), lr=0.01)
    dec_opt = torch.optim.SGD(decoder.parameters(), lr=0.01)
    criterion = nn.NLLLoss()
    # tensorsFromPair is done up front in the tutorial's trainIters too: [S,1] / [T,1] tensors.
    tensors = [(torch.tensor(s, device=device).view(-1, 1), torch.tensor(t, device=device).view(-1, 1))
               for s, t in data.examples]
    pairs = cycle(tensors, seed)
    rng = random.Random(seed)

    def step() -> tuple[int, int]:
        src, tgt = next(pairs)
        tutorial2017_train_step(src, tgt, encoder, decoder, enc_opt, dec_opt, criterion, max_length, 0.5, rng)
        return 1, tgt.size(0)

    return step


def tutorial2023_step(data: BenchmarkData, device: torch.device, hidden: int, batch_size: int,
                      seed: int) -> Step:
    """A :data:`Step` of the 2023 tutorial (DataLoader with RandomSampler, Adam lr 0.001, NLLLoss)."""
    from torch.utils.data import DataLoader, RandomSampler, TensorDataset

    max_length = data.max_length
    src = pad_to_length([s for s, _ in data.examples], max_length)
    tgt = pad_to_length([t for _, t in data.examples], max_length)
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(src, tgt)
    loader = DataLoader(dataset, sampler=RandomSampler(dataset, generator=generator), batch_size=batch_size)
    encoder = Tutorial2023Encoder(len(data.source_vocab), hidden).to(device)
    decoder = Tutorial2023AttnDecoder(hidden, len(data.target_vocab), max_length).to(device)
    enc_opt = torch.optim.Adam(encoder.parameters(), lr=0.001)
    dec_opt = torch.optim.Adam(decoder.parameters(), lr=0.001)
    criterion = nn.NLLLoss()
    batches = iter(())

    def step() -> tuple[int, int]:
        nonlocal batches
        try:
            s, t = next(batches)
        except StopIteration:
            batches = iter(loader)
            s, t = next(batches)
        tokens = int((t != 0).sum())  # real target tokens: words + <eos>, padding zeros excluded
        s, t = s.to(device), t.to(device)
        tutorial2023_train_step(s, t, encoder, decoder, enc_opt, dec_opt, criterion)
        return s.size(0), tokens

    return step


def build_model(entry: Mapping[str, Any], source_vocab_size: int, target_vocab_size: int) -> nn.Module:
    """Our model from one entry of a config's ``models`` section and the vocabulary sizes, of the entry's family
    (:mod:`seq2seq.models`; its ``config`` attribute is the checkpointed model config): the one place the
    benchmarks name the package's model."""
    return models.build_model(model_config(entry, source_vocab_size, target_vocab_size))


class Seq2SeqStep:
    """Our model as the pipeline trains it: its optimizer and training settings (the schema's defaults), fp32
    unless ``amp``, the model and loss ``options``.

    Calling it is a :data:`Step` (the next batch of seeded, shuffled epochs); :meth:`train` trains one given
    batch and :meth:`epoch` lists an epoch's batches, for counting FLOPs on chosen ones.
    """

    def __init__(self, data: BenchmarkData, device: torch.device, attention: str, hidden: int, batch_size: int,
                 seed: int, amp: bool = False, options: ModelOptions = ModelOptions()) -> None:
        entry = {"attention": attention, "hidden_size": hidden, "max_length": max(len(s) for s, _ in data.examples),
                 "bidirectional": options.bidirectional, "tie_embeddings": options.tie_embeddings,
                 "dropout": options.dropout}
        self.model = build_model(entry, len(data.source_vocab), len(data.target_vocab)).to(device)
        self.training = TrainConfig(label_smoothing=options.label_smoothing)
        self.optimizer = build_optimizer(self.model, self.training)
        self.amp_dtype, needs_scaler = resolve_amp(amp, device)
        self.scaler = torch.amp.GradScaler(device.type) if needs_scaler else None
        self.batching = ({"batch_size": None, "batch_tokens": options.batch_tokens} if options.batch_tokens
                         else {"batch_size": batch_size})
        self.examples, self.device, self.seed = data.examples, device, seed
        self.epochs = 0
        self.batches: Iterator[Batch] = iter(())

    def epoch(self, number: int) -> list[Batch]:
        """The batches of epoch ``number``: length-bucketed, shuffled, seeded, as the pipeline makes them."""
        return make_batches(self.examples, shuffle=True, seed=self.seed, epoch=number, **self.batching)

    def train(self, batch: Batch) -> tuple[int, int]:
        """One optimizer step on ``batch``; returns (pairs, target tokens incl. <eos>)."""
        train_batch(self.model, batch.to(self.device), self.optimizer, clip_grad=self.training.clip_grad,
                    teacher_forcing=self.training.teacher_forcing, scaler=self.scaler, amp_dtype=self.amp_dtype,
                    label_smoothing=self.training.label_smoothing)
        return batch.size, int(batch.target_tokens)

    def __call__(self) -> tuple[int, int]:
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.epoch(self.epochs))
            self.epochs += 1
            batch = next(self.batches)
        return self.train(batch)


# --------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------

@dataclass
class BenchmarkConfig:
    hidden: int = 256
    batch_size: int = 64
    threads: int = 2
    seconds: float = 20.0
    baseline_seconds: float | None = None  # None: same as ``seconds``
    warmup_steps: int = 5
    device: str = "cpu"
    variants: Sequence[str] = ALL_VARIANTS
    seed: int = 0
    count_flops: bool = True  # False: our rows get no FLOP count (their flops_fraction is NaN)
    flop_samples: int = 8  # steps counted per variant (our model: batches at quantiles of their length)
    amp: bool = False  # mixed precision for our model on CUDA (the matmul rate stays fp32)
    model: ModelOptions = field(default_factory=ModelOptions)  # our model's rows, bahdanau-h128 included


@dataclass
class BenchmarkResult:
    rows: list[dict]
    machine: dict
    data: str
    shape: DataShape
    measurements: list[Measurement] = field(default_factory=list)




def make_step(variant: str, data: BenchmarkData, device: torch.device,
              config: BenchmarkConfig) -> tuple[Step, int, int]:
    """The step function of a variant, with its (batch size, hidden size)."""
    if variant in BASELINES:
        return baseline_step(data, device, config.hidden, config.seed), 1, config.hidden
    if variant == "tutorial2023":
        return (tutorial2023_step(data, device, TUTORIAL2023_HIDDEN, TUTORIAL2023_BATCH, config.seed),
                TUTORIAL2023_BATCH, TUTORIAL2023_HIDDEN)
    if variant == "bahdanau-h128":
        return (Seq2SeqStep(data, device, "bahdanau", TUTORIAL2023_HIDDEN, TUTORIAL2023_BATCH, config.seed,
                            config.amp, config.model),
                TUTORIAL2023_BATCH, TUTORIAL2023_HIDDEN)
    if variant in OUR_VARIANTS:
        return (Seq2SeqStep(data, device, variant, config.hidden, config.batch_size, config.seed, config.amp,
                            config.model),
                config.batch_size, config.hidden)
    raise ValueError(f"unknown variant {variant!r}; expected one of {ALL_VARIANTS}")


def count_flops_per_pair(variant: str, data: BenchmarkData, config: BenchmarkConfig) -> float:
    """Training FLOPs per pair of ``variant``, counted by torch's FlopCounterMode on ``config.flop_samples``
    steps of a fresh copy on the CPU in fp32 (see :func:`flops.count_flops`): for our model, real steps on the
    batches of an epoch at evenly spaced quantiles of their padded length (the data's shapes, padding
    included); for a tutorial loop, consecutive steps."""
    torch.manual_seed(config.seed)
    step, _, _ = make_step(variant, data, torch.device("cpu"), replace(config, amp=False))
    if isinstance(step, Seq2SeqStep):
        batches = quantile_sample(step.epoch(0), config.flop_samples,
                                  key=lambda batch: batch.src.size(1) + batch.tgt_out.size(1))
        runs = [partial(step.train, batch) for batch in batches]
    else:
        runs = [step] * config.flop_samples
    counts = [count_flops(run) for run in runs]
    return sum(flops for flops, _ in counts) / sum(pairs for _, (pairs, _) in counts)


def measure_variant(variant: str, data: BenchmarkData, device: torch.device,
                    config: BenchmarkConfig) -> Measurement:
    """Time one variant (seeded, after warm-up) and count its FLOPs per pair (the tutorial loops' FLOPs per
    pair are their analytic useful work; the count is their cross-check)."""
    torch.manual_seed(config.seed)
    step, batch_size, hidden = make_step(variant, data, device, config)
    baseline = variant in BASELINES
    seconds = config.baseline_seconds if baseline and config.baseline_seconds is not None else config.seconds
    timing = time_steps(step, device, seconds, config.warmup_steps * (10 if baseline else 1))
    counted = count_flops_per_pair(variant, data, config) if config.count_flops else None
    if variant in TUTORIAL_FLOPS:
        sizes = ModelSizes(len(data.source_vocab), len(data.target_vocab), hidden,
                           max_length=max(len(s) for s, _ in data.examples))
        flops_per_pair = TUTORIAL_FLOPS[variant](sizes, data.shape)
    else:
        flops_per_pair = math.nan if counted is None else counted
    ours = isinstance(step, Seq2SeqStep)
    return Measurement(variant, batch_size, hidden, timing.steps, timing.pairs, timing.target_tokens,
                       timing.seconds, flops_per_pair, str(device), config.threads, counted, timing.round_rates,
                       config.model if ours else None,
                       sum(p.numel() for p in step.model.parameters() if p.requires_grad) if ours else None)


def run_benchmark(data: BenchmarkData, config: BenchmarkConfig,
                  progress: Callable[[str], None] = log.info) -> BenchmarkResult:
    """Time every requested variant on ``data``; returns the table rows and the machine description."""
    unknown = [v for v in config.variants if v not in ALL_VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; expected some of {list(ALL_VARIANTS)}")
    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    variants = list(config.variants)
    if device.type == "cpu" and "baseline" in variants:
        # The process-wide tuning cannot be undone, so the tutorial as it runs is timed before it.
        variants.remove("baseline")
        variants.insert(0, "baseline")
    elif device.type != "cpu" and "baseline-tuned" in variants:
        progress(f"baseline-tuned: skipped, the CPU runtime tuning does not apply to {device}")
        variants.remove("baseline-tuned")
    shape = data.shape
    progress(f"data: {data.description}: {len(data.examples)} pairs, vocabularies {len(data.source_vocab)}/"
             f"{len(data.target_vocab)}, mean lengths {shape.source_length:.2f}/{shape.target_length:.2f}")
    measurements = []
    matmul = None
    for variant in variants:
        if matmul is None and variant != "baseline":
            if device.type == "cpu":
                tune_cpu_runtime()  # as the pipeline's training does
            matmul = measure_matmul_flops(device)
            progress(f"matmul: {matmul / 1e9:.1f} GFLOP/s")
        measurements.append(measure_variant(variant, data, device, config))
        m = measurements[-1]
        progress(f"{variant}: {m.pairs / m.seconds:.1f} pairs/s ({m.steps} steps in {m.seconds:.1f} s)")
    if matmul is None:
        matmul = measure_matmul_flops(device)
    machine = machine_info(device, config.threads, matmul)
    return BenchmarkResult(build_table(measurements, matmul), machine, data.description, shape, measurements)


def profile_variant(variant: str, data: BenchmarkData, config: BenchmarkConfig, steps: int = 10,
                    row_limit: int = 25) -> str:
    """torch.profiler table (sorted by self CPU time) of ``steps`` training steps of one variant."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    step, _, _ = make_step(variant, data, device, config)
    for _ in range(config.warmup_steps):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit)
