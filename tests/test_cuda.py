"""CUDA against the CPU: mixed precision trains like fp32, and a model decodes to the same tokens on either device.

Collected only where CUDA is available (tests/conftest.py; elsewhere the session header says it was not
collected). ``SEQ2SEQ_CUDA_TESTS_DEVICE=cpu`` runs them on the CPU instead, at a few steps: the CPU dry run of
workflow/benchmarks/gpu_check.py does that, so that these tests cannot rot while no GPU is at hand (there both
"devices" are the CPU, and bf16 autocast is the CPU's).

Decoding is compared in plain fp32 (TF32 off, which cuDNN's GRU would otherwise use on Ampere and later): two
devices then differ only in the order of floating-point sums, so a translation may differ only where two
continuations score the same within :data:`TIE_TOLERANCE`; such ties are counted and printed.
"""

from __future__ import annotations

import copy
import os
import statistics
from pathlib import Path

import pytest
import torch

from helpers import tiny_pairs
from seq2seq.batching import Batch, encode_pairs, make_batches, pad_sources
from seq2seq.checkpoint import load_model
from seq2seq.metadata import Metadata
from seq2seq.models.base import Model
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.models.gru_config import GRUConfig
from seq2seq.optimization import build_optimizer, resolve_amp
from seq2seq.schema import schema_choices
from seq2seq.search import decode_in_batches, length_penalty
from seq2seq.settings import TrainConfig
from seq2seq.tokens import SOS_INDEX
from seq2seq.training import TrainingData, TrainingFiles, train_batch, train_model
from seq2seq.vocab import Vocabulary, WordVocabulary

DEVICE = torch.device(os.environ.get("SEQ2SEQ_CUDA_TESTS_DEVICE", "cuda"))
ON_CUDA = DEVICE.type == "cuda"
if ON_CUDA and not torch.cuda.is_available():  # named on the command line: conftest.py's collect_ignore is skipped
    pytest.skip("CUDA is not available on this machine", allow_module_level=True)
VARIANTS = schema_choices("models.*.attention")
STEPS = 200 if ON_CUDA else 12  # training steps of the mixed-precision comparison
TIE_TOLERANCE = 1e-3  # log-probability: two scores closer than this are a tie between devices
CPU = torch.device("cpu")


# ---------------------------------------------------------------------------------------------- helpers

def corpus() -> tuple[list[tuple[str, str]], Vocabulary, Vocabulary]:
    """French -> English tiny pairs (already normalized: lower case, words and dots) and word vocabularies."""
    pairs = [(french.lower().replace(".", " ."), english.lower().replace(".", " ."))
             for english, french in tiny_pairs()]
    return pairs, WordVocabulary.build(s for s, _ in pairs), WordVocabulary.build(t for _, t in pairs)


def model_config(attention: str, source: Vocabulary, target: Vocabulary, hidden: int = 64) -> GRUConfig:
    return GRUConfig(source_vocab_size=len(source), target_vocab_size=len(target), attention=attention,
                       hidden_size=hidden, dropout=0.0, max_length=12)


def train_losses(attention: str, amp_dtype: torch.dtype | None, steps: int) -> list[float]:
    """Loss of each of ``steps`` optimizer steps on DEVICE from seed 0 (same batches, same initial weights)."""
    pairs, source, target = corpus()
    examples = encode_pairs(pairs, source, target)
    torch.manual_seed(0)
    model = GRUSeq2Seq(model_config(attention, source, target)).to(DEVICE)
    optimizer = build_optimizer(model, TrainConfig())
    losses: list[torch.Tensor] = []
    epoch = 0
    while len(losses) < steps:
        for batch in make_batches(examples, batch_size=16, shuffle=True, seed=0, epoch=epoch):
            losses.append(train_batch(model, batch.to(DEVICE), optimizer, clip_grad=1.0, teacher_forcing=1.0,
                                      scaler=None, amp_dtype=amp_dtype, label_smoothing=0.0))
            if len(losses) == steps:
                break
        epoch += 1
    return [float(loss) for loss in losses]


@torch.no_grad()
def step_log_probs(model: Model, source: list[int], tokens: list[int]) -> torch.Tensor:
    """[len(tokens), V] log-probabilities the model gives at each step of ``tokens`` (fed back as its inputs)."""
    model.eval()
    device = next(model.parameters()).device
    src, lengths = pad_sources([source])
    enc = model.encode(src.to(device), lengths.to(device))
    state = model.init_state(enc)
    prev = torch.tensor([SOS_INDEX], device=device)
    rows = []
    for token in tokens:
        log_probs, state, _ = model.decode_step(prev, state, enc)
        rows.append(log_probs[0].float().cpu())
        prev = torch.tensor([token], device=device)
    return torch.stack(rows) if rows else torch.empty(0)


def greedy_gap(model: Model, source: list[int], ours: list[int], theirs: list[int]) -> float:
    """At the first position where two greedy outputs differ, how much more ``model`` prefers its own token."""
    t = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)) - 1)
    log_probs = step_log_probs(model, source, ours[: t + 1])[t]
    return float(log_probs[ours[t]] - log_probs[theirs[t]])


def beam_score(model: Model, source: list[int], tokens: list[int], alpha: float) -> float:
    """The length-normalized score beam search ranks ``tokens`` by, under ``model``."""
    log_probs = step_log_probs(model, source, tokens)
    total = float(log_probs.gather(1, torch.tensor(tokens).unsqueeze(1)).sum())
    return total / length_penalty(len(tokens), alpha)


def unexplained(cpu_model: Model, sources: list[list[int]], on_cpu: list[list[int]], on_device: list[list[int]],
                beam: bool, alpha: float = 0.0) -> tuple[int, list[str]]:
    """(sentences whose outputs differ, descriptions of those where the difference is not a tie on the CPU)."""
    differing, bad = 0, []
    for i, (source, a, b) in enumerate(zip(sources, on_cpu, on_device)):
        if a == b:
            continue
        differing += 1
        if beam:
            gap = beam_score(cpu_model, source, a, alpha) - beam_score(cpu_model, source, b, alpha)
        else:
            gap = greedy_gap(cpu_model, source, a, b)
        if abs(gap) > TIE_TOLERANCE:
            bad.append(f"sentence {i}: CPU {a} vs {DEVICE} {b}, score gap {gap:.2e} on the CPU")
    return differing, bad


@pytest.fixture
def plain_fp32():
    """Plain fp32 matrix products on CUDA for the duration of a test (TF32 off), as on the CPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def amp_dtype() -> torch.dtype:
    """What training's ``amp: auto`` picks on DEVICE; on the CPU (the dry run) the CPU's bf16 autocast."""
    dtype, _ = resolve_amp("auto", DEVICE)
    return dtype or torch.bfloat16


# ---------------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("attention", VARIANTS)
def test_mixed_precision_losses_follow_fp32_from_the_same_seed(attention: str) -> None:
    fp32 = train_losses(attention, None, STEPS)
    mixed = train_losses(attention, amp_dtype(), STEPS)
    assert all(map(torch.isfinite, torch.tensor(mixed))), f"{attention}: non-finite loss in {amp_dtype()}"
    # Step by step at first (same weights, same batches: only rounding differs) ...
    early = [abs(a - b) for a, b in zip(fp32[:20], mixed[:20])]
    assert max(early) <= 0.05, f"{attention}: first 20 losses differ by up to {max(early):.4f}: {fp32[:5]} {mixed[:5]}"
    # ... then windows of the curve (the runs drift apart by rounding, but must learn alike).
    window = max(1, min(50, STEPS // 4))
    for start in range(0, STEPS, window):
        a, b = statistics.mean(fp32[start:start + window]), statistics.mean(mixed[start:start + window])
        assert abs(a - b) <= 0.05 * max(a, b) + 0.02, f"{attention}: steps {start}+{window}: fp32 {a:.4f}, {b:.4f}"
    assert statistics.mean(mixed[-3:]) < 0.9 * mixed[0], f"{attention}: {amp_dtype()} did not learn: {mixed}"
    print(f"{attention}: {STEPS} steps, first loss {fp32[0]:.4f}/{mixed[0]:.4f}, last {fp32[-1]:.4f}/"
          f"{mixed[-1]:.4f} (fp32/{amp_dtype()}), largest early gap {max(early):.2e}")


def test_a_checkpoint_trained_on_the_device_translates_alike_on_the_cpu(tmp_path: Path, plain_fp32) -> None:
    pairs, source, target = corpus()
    valid = pairs[::8]
    train = [p for i, p in enumerate(pairs) if i % 8]
    config = model_config("bahdanau", source, target, hidden=48)
    training = TrainConfig(epochs=3 if ON_CUDA else 1, batch_size=16, device=str(DEVICE), amp="auto")
    files = TrainingFiles(tmp_path / "model.pt", tmp_path / "last.pt", tmp_path / "history.tsv",
                          resume=tmp_path / "resume.pt")
    summary = train_model(TrainingData(train, valid, source, target), config, training, files,
                          metadata=Metadata(pair="fra-eng", model_name="bahdanau"))
    assert summary.device.startswith(DEVICE.type)
    expected_amp, _ = resolve_amp("auto", DEVICE)
    assert summary.amp == (str(expected_amp) if expected_amp else None)
    on_cpu, _, _, _ = load_model(tmp_path / "model.pt", CPU)
    on_device, _, _, _ = load_model(tmp_path / "model.pt", DEVICE)
    assert next(on_device.parameters()).device.type == DEVICE.type
    sources = [ids for ids, _ in encode_pairs(pairs, source, target)]
    cpu_tokens = decode_in_batches(on_cpu, sources, max_len=15, batch_size=32).tokens
    device_tokens = decode_in_batches(on_device, sources, max_len=15, batch_size=32).tokens
    differing, bad = unexplained(on_cpu, sources, cpu_tokens, device_tokens, beam=False)
    assert not bad, "\n".join(bad)
    print(f"checkpoint trained on {DEVICE} ({summary.amp}): {len(sources)} sentences greedy, "
          f"{differing} differ between CPU and {DEVICE}, all ties within {TIE_TOLERANCE}")


@pytest.mark.parametrize("attention", VARIANTS)
def test_greedy_and_beam_search_give_the_cpu_translations(attention: str, plain_fp32) -> None:
    pairs, source, target = corpus()
    examples = encode_pairs(pairs, source, target)
    torch.manual_seed(0)
    cpu_model = GRUSeq2Seq(model_config(attention, source, target))
    optimizer = build_optimizer(cpu_model, TrainConfig())
    for batch in make_batches(examples, batch_size=16, shuffle=True, seed=0)[:6]:  # a model that is not random
        train_batch(cpu_model, batch, optimizer, clip_grad=1.0, teacher_forcing=1.0)
    cpu_model.eval()
    device_model = copy.deepcopy(cpu_model).to(DEVICE).eval()
    sources = [ids for ids, _ in examples]
    report = []
    for beam_size, alpha in ((1, 0.0), (4, 0.6)):
        found = [decode_in_batches(model, sources, beam_size=beam_size, alpha=alpha, max_len=15, batch_size=32)
                 for model in (cpu_model, device_model)]
        differing, bad = unexplained(cpu_model, sources, found[0].tokens, found[1].tokens, beam_size > 1, alpha)
        assert not bad, f"{attention}, beam {beam_size}:\n" + "\n".join(bad)
        report.append(f"beam {beam_size}: {differing} of {len(sources)} differ (ties)")
    print(f"{attention} on CPU and {DEVICE}: " + "; ".join(report))


def test_batches_and_weights_land_on_the_device() -> None:
    pairs, source, target = corpus()
    batch: Batch = make_batches(encode_pairs(pairs, source, target), batch_size=8, shuffle=False, seed=0)[0]
    moved = (batch.pin_memory() if ON_CUDA else batch).to(DEVICE, non_blocking=True)
    assert {t.device.type for t in (moved.src, moved.tgt_in, moved.tgt_out)} == {DEVICE.type}
    model = GRUSeq2Seq(model_config("bahdanau", source, target)).to(DEVICE)
    logits, attention = model(moved.src, moved.src_lengths, moved.tgt_in)
    assert logits.device.type == DEVICE.type and logits.shape[:2] == moved.tgt_out.shape
    assert torch.allclose(attention.sum(-1), torch.ones_like(attention.sum(-1)), atol=1e-5)
