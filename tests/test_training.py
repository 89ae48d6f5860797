"""Training: config parsing, learning a tiny task, determinism, resuming, checkpoints."""

import csv
import logging
import random
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import Killed, kill_after_epoch, model_config, seeded_model
from seq2seq import training
from seq2seq.batching import collate, encode_pairs, make_batches
from seq2seq.checkpoint import load_checkpoint, load_model, save_checkpoint
from seq2seq.formats import HISTORY_COLUMNS
from seq2seq.metadata import Metadata
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.optimization import cpu_computes_bf16, cpu_flags, resolve_amp
from seq2seq.settings import TrainConfig
from seq2seq.training import (Hooks, TrainingData, TrainingFiles, TrainingResult, Validation, sequence_loss,
                              train_batch, train_model)
from seq2seq.vocab import WordVocabulary

WORDS = [f"w{i}" for i in range(8)]


def _pairs(n, seed, reverse=True):
    """Synthetic task: translate lowercase words to uppercase, reversed (or copied) order."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        pairs.append((" ".join(words), " ".join(reversed(words) if reverse else words).upper()))
    return pairs




@pytest.fixture(scope="module")
def corpus():
    train, valid = _pairs(160, 0), _pairs(24, 1)
    source = WordVocabulary.build(s for s, _ in train)
    target = WordVocabulary.build(t for _, t in train)
    return train, valid, source, target


def _run(tmp_path: Path, corpus, epochs=3, callback=None, attention="bahdanau", **overrides) -> TrainingResult:
    train, valid, source, target = corpus
    config = TrainConfig.from_dict({"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu",
                                    **overrides})
    settings = model_config(len(source), len(target), attention, hidden_size=24, dropout=0.1, tie_embeddings=True,
                            **({"max_length": 11} if attention == "tutorial" else {}))
    files = TrainingFiles(tmp_path / "model.pt", tmp_path / "last.pt", tmp_path / "history.tsv",
                          tmp_path / "resume.pt")
    return train_model(TrainingData(train, valid, source, target), settings, config, files,
                       Metadata(pair="fra-eng", model_name="m", normalization="ascii"), threads=1,
                       hooks=Hooks(after_epoch=callback))


def test_train_config_from_dict():
    config = TrainConfig.from_dict({"epochs": 2, "early_stopping": {"patience": 3}})
    assert config.early_stopping == {"metric": "valid_bleu", "patience": 3}
    with pytest.raises(ValueError, match=r"config: training: unknown keys \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 2})
    with pytest.raises(ValueError, match="early_stopping"):
        TrainConfig.from_dict({"early_stopping": {"metric": "bleu"}})


# Luong's attention (no input feeding) ends this task with a noisier loss, 0.03-0.07 over the last batches (three
# model seeds), where the others reach 0.002-0.008.
@pytest.mark.parametrize("attention,reverse,final_loss", [("bahdanau", True, 0.05), ("luong", False, 0.12),
                                                          ("tutorial", False, 0.05)])
def test_learns_a_tiny_task(attention, reverse, final_loss):
    torch.manual_seed(0)
    source = WordVocabulary.build([" ".join(WORDS)])
    target = WordVocabulary.build([" ".join(WORDS).upper()])
    examples = encode_pairs(_pairs(256, 2, reverse), source, target)
    model = GRUSeq2Seq(model_config(len(source), len(target), attention, hidden_size=48, tie_embeddings=True,
                                    **({"max_length": 11} if attention == "tutorial" else {})))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for epoch in range(25):
        for batch in make_batches(examples, 32, shuffle=True, seed=0, epoch=epoch):
            losses.append(float(train_batch(model, batch, optimizer, clip_grad=1.0, teacher_forcing=1.0)))
    assert losses[0] > 2.0 and sum(losses[-8:]) / 8 < final_loss


def test_outputs_history_and_checkpoints(tmp_path, corpus):
    summary = _run(tmp_path, corpus, epochs=2)
    with open(tmp_path / "history.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert tuple(rows[0]) == HISTORY_COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]
    assert not (tmp_path / "resume.pt").exists()
    model, source, target, metadata = load_model(tmp_path / "model.pt")
    assert not model.training and len(source) == len(corpus[2]) and len(target) == len(corpus[3])
    assert metadata.pair == "fra-eng" and metadata.normalization == "ascii"
    assert metadata.epoch == summary.best_epoch and len(metadata.history) == summary.best_epoch
    assert metadata.training["epochs"] == 2 and "label_smoothing" in metadata.training
    assert metadata.parameters == sum(p.numel() for p in model.parameters())
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["metadata"]["epoch"] == 2 and "optimizer_state" in last and "rng_state" in last


def test_deterministic_on_cpu(tmp_path, corpus):
    first = _run(tmp_path / "a", corpus, epochs=2)
    second = _run(tmp_path / "b", corpus, epochs=2)
    assert [r["train_loss"] for r in first.history] == [r["train_loss"] for r in second.history]
    assert [r["valid_loss"] for r in first.history] == [r["valid_loss"] for r in second.history]


@pytest.mark.parametrize("attention", ["tutorial", "luong"])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, corpus, attention):
    overrides = {"teacher_forcing": 0.5} if attention == "tutorial" else {}
    full = _run(tmp_path / "full", corpus, epochs=3, attention=attention, **overrides)
    with pytest.raises(Killed):
        _run(tmp_path / "cut", corpus, epochs=3, callback=kill_after_epoch(1), attention=attention, **overrides)
    assert (tmp_path / "cut" / "resume.pt").exists()
    # a killed run leaves no output that could pass for the result
    assert not any((tmp_path / "cut" / name).exists() for name in ("model.pt", "last.pt", "history.tsv"))
    resumed = _run(tmp_path / "cut", corpus, epochs=3, attention=attention, **overrides)
    assert resumed.resumed_from_epoch == 1
    for key in ("train_loss", "valid_loss", "valid_bleu"):
        assert [r[key] for r in resumed.history] == [r[key] for r in full.history]
    assert (tmp_path / "cut" / "model.pt").exists() and not (tmp_path / "cut" / "resume.pt").exists()


def test_incompatible_resume_checkpoint_starts_fresh(tmp_path, corpus, caplog):
    with pytest.raises(Killed):
        _run(tmp_path, corpus, epochs=2, callback=kill_after_epoch(1))
    with caplog.at_level(logging.WARNING):
        summary = _run(tmp_path, corpus, epochs=2, learning_rate=1e-3)
    assert summary.resumed_from_epoch is None and "starting fresh" in caplog.text
    assert [r["epoch"] for r in summary.history] == [1, 2]


@pytest.mark.parametrize("damage", ["rng_state", "model_state"])
def test_resume_failing_halfway_starts_exactly_fresh(tmp_path, corpus, caplog, damage):
    """A checkpoint that passes the config checks but fails while loading (here after the model, optimizer
    and scheduler were already loaded) must leave nothing behind: the run equals one without it."""
    fresh = _run(tmp_path / "fresh", corpus, epochs=2)
    with pytest.raises(Killed):
        _run(tmp_path / "cut", corpus, epochs=2, callback=kill_after_epoch(1))
    resume = tmp_path / "cut" / "resume.pt"
    data = torch.load(resume, weights_only=True)
    if damage == "rng_state":
        del data["rng_state"]["python"]
    else:  # as after renaming a parameter: every other tensor matches and is copied before the error
        data["model_state"]["renamed.weight"] = data["model_state"].pop("decoder.out.weight")
    save_checkpoint(resume, {k: v for k, v in data.items() if k not in ("format", "weights_sha256")})
    with caplog.at_level(logging.WARNING):
        summary = _run(tmp_path / "cut", corpus, epochs=2)
    assert summary.resumed_from_epoch is None and "cannot resume" in caplog.text
    assert [r["epoch"] for r in summary.history] == [1, 2]
    for key in ("train_loss", "valid_loss", "valid_bleu"):
        assert [r[key] for r in summary.history] == [r[key] for r in fresh.history]
    assert (tmp_path / "cut" / "model.pt").exists()


def test_resume_checkpoint_of_other_code_starts_fresh(tmp_path, corpus, caplog, monkeypatch):
    """After an edit of the training code (Snakemake reruns `train` for it) a resume would mix two versions."""
    with pytest.raises(Killed):
        _run(tmp_path, corpus, epochs=2, callback=kill_after_epoch(1))
    monkeypatch.setattr("seq2seq.pipeline.dependencies.source_fingerprint", lambda path: "edited")
    with caplog.at_level(logging.WARNING):
        summary = _run(tmp_path, corpus, epochs=2)
    assert summary.resumed_from_epoch is None and "package code changed since it was saved" in caplog.text
    assert [r["epoch"] for r in summary.history] == [1, 2]


def test_early_stopping_has_its_own_patience(tmp_path, corpus):
    summary = _run(tmp_path, corpus, epochs=10, learning_rate=1e-9,
                   early_stopping={"metric": "valid_loss", "patience": 1}, lr_patience=5)
    assert summary.stop_reason == "early_stopping" and summary.epochs < 10


class Scripted:
    """A stand-in for training.validate that returns the scores of a script, one epoch after the other, and
    moves a fake clock (training.time.perf_counter) on by ``seconds`` per epoch."""

    def __init__(self, bleu=None, loss=None, seconds=0.0):
        self.bleu, self.loss, self.seconds = bleu, loss, seconds
        self.epochs = 0
        self.clock = 1000.0

    def validate(self, *args, **kwargs) -> Validation:
        self.epochs += 1
        self.clock += self.seconds
        e = self.epochs - 1
        return Validation(loss=self.loss[e] if self.loss else 1.0, bleu=self.bleu[e] if self.bleu else 0.0)

    def install(self, monkeypatch) -> "Scripted":
        monkeypatch.setattr(training, "validate", self.validate)
        monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: self.clock))
        return self


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stopping_stops_after_exactly_patience_epochs_without_improvement(tmp_path, corpus, monkeypatch,
                                                                                patience):
    """Validation BLEU 10, 20 (the best), then 15 forever: with patience p the run trains epochs 3 .. 2 + p
    without improving and stops there, and model.pt holds epoch 2."""
    script = Scripted(bleu=[10.0, 20.0] + [15.0] * 10).install(monkeypatch)
    summary = _run(tmp_path, corpus, epochs=12, early_stopping={"metric": "valid_bleu", "patience": patience})
    assert (summary.stop_reason, summary.epochs, summary.best_epoch) == ("early_stopping", 2 + patience, 2)
    assert script.epochs == 2 + patience
    assert [row["valid_bleu"] for row in summary.history] == [10.0, 20.0] + [15.0] * patience
    assert load_model(tmp_path / "model.pt")[3].epoch == 2


def test_early_stopping_on_the_loss_keeps_the_lowest_loss(tmp_path, corpus, monkeypatch):
    Scripted(loss=[3.0, 2.0, 2.5, 2.6, 1.0], bleu=[50.0, 1.0, 2.0, 3.0, 4.0]).install(monkeypatch)
    summary = _run(tmp_path, corpus, epochs=5, early_stopping={"metric": "valid_loss", "patience": 2})
    assert (summary.stop_reason, summary.epochs, summary.best_epoch) == ("early_stopping", 4, 2)
    assert summary.best_valid_loss == 2.0


@pytest.mark.parametrize(("minutes", "epochs"), [(2.0, 3), (2.5, 3), (0.5, 1)])
def test_the_time_budget_stops_after_the_epoch_that_crosses_it(tmp_path, corpus, monkeypatch, minutes, epochs):
    """Each epoch takes 50 s of a fake clock: a budget of 2 minutes ends after epoch 3 (150 s), the first epoch
    whose end is past it; the budget is checked between epochs, so at least one epoch always runs."""
    Scripted(bleu=[float(e) for e in range(1, 11)], seconds=50.0).install(monkeypatch)
    summary = _run(tmp_path, corpus, epochs=10, max_minutes=minutes)
    assert (summary.stop_reason, summary.epochs) == ("max_minutes", epochs)
    assert summary.seconds == pytest.approx(50.0 * epochs)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sequence_loss_is_the_smoothed_cross_entropy_of_the_real_tokens(smoothing, reduction):
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 7, requires_grad=True)
    target = torch.randint(1, 7, (3, 4))
    target[0, 2:] = 0  # padding is ignored
    target[2, 1] = 0
    loss = sequence_loss(logits, target, smoothing, reduction)
    log_probs = logits.log_softmax(-1)[target != 0]  # [real tokens, V]
    picked = log_probs.gather(1, target[target != 0].unsqueeze(1)).squeeze(1)
    per_token = -(1 - smoothing) * picked - smoothing * log_probs.mean(dim=1)
    expected = per_token.mean() if reduction == "mean" else per_token.sum()
    assert torch.allclose(loss, expected, atol=1e-6)
    (grad,) = torch.autograd.grad(loss, logits)
    assert bool((grad[0, 2:] == 0).all()) and bool((grad[2, 1] == 0).all())


def test_cpu_threads_are_capped_at_the_available_cpus():
    from seq2seq.devices import available_cpus, set_cpu_threads

    before = torch.get_num_threads()
    try:
        assert set_cpu_threads(available_cpus() + 3) == available_cpus() == torch.get_num_threads()
        assert set_cpu_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("amp", [True, "auto"])
@pytest.mark.parametrize(("capability", "expected"), [
    ((7, 0), (torch.float16, True)), ((7, 5), (torch.float16, True)),
    ((8, 0), (torch.bfloat16, True)), ((8, 6), (torch.bfloat16, True)), ((9, 0), (torch.bfloat16, True)),
])
def test_mixed_precision_is_bf16_only_where_the_gpu_computes_in_it(monkeypatch, capability, expected, amp):
    """bf16 from compute capability 8.0; a gradient scaler always on CUDA, since autocast runs cuDNN's GRUs in
    fp16 whatever dtype it was given."""
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    assert resolve_amp(amp, torch.device("cuda", 1)) == expected
    assert asked == [torch.device("cuda", 1)]  # the training device, not the current one
    assert resolve_amp(False, torch.device("cuda", 1)) == (None, False)
    resolve_amp(amp, torch.device("cpu"))
    assert len(asked) == 1  # no GPU is asked about for the CPU or with amp off


@pytest.mark.parametrize(("flags", "native"), [
    ({"avx2", "fma", "avx512f", "avx512bw"}, False),  # AVX-512 without its BF16 extension: emulated
    ({"avx2", "avx512f", "avx512_bf16"}, True),  # Cooper Lake, Zen 4
    ({"amx_bf16", "amx_tile", "amx_int8"}, True),  # Sapphire Rapids
    (set(), False),
])
def test_native_bf16_is_read_from_the_cpus_flags(flags, native):
    assert cpu_computes_bf16(flags) is native


def test_the_cpu_flags_come_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()  # no /proc (macOS): no flags, so no native bf16


def test_on_the_cpu_amp_true_trains_in_bf16_and_auto_stays_in_fp32(caplog):
    cpu = torch.device("cpu")
    for flags in ({"avx512_bf16"}, {"avx2"}):
        # measured on a native-bf16 CPU: 1.11-1.19x the pipeline's fp32 training speed (1.12x over 15 runs),
        # below the 1.15x a default needs
        assert resolve_amp("auto", cpu, flags) == (None, False)
        assert resolve_amp(False, cpu, flags) == (None, False)
    with caplog.at_level("WARNING", logger="seq2seq.optimization"):
        assert resolve_amp(True, cpu, {"amx_bf16"}) == (torch.bfloat16, False)
        assert not caplog.records
        assert resolve_amp(True, cpu, {"avx2"}) == (torch.bfloat16, False)
    [warning] = caplog.records
    assert "emulated" in warning.getMessage() and "avx512_bf16" in warning.getMessage()


def test_amp_off_trains_as_before_and_amp_on_trains_under_bf16_on_the_cpu(tmp_path, corpus):
    """`amp: false` and `auto` (fp32 on the CPU) give the same run; `amp: true` another, under bf16 autocast."""
    runs = {amp: _run(tmp_path / str(amp), corpus, epochs=2, amp=amp) for amp in (False, "auto", True)}
    histories = {amp: pd.read_csv(tmp_path / str(amp) / "history.tsv", sep="\t") for amp in runs}
    assert runs[False].amp is None and runs["auto"].amp is None and runs[True].amp == "torch.bfloat16"
    assert histories[False]["train_loss"].tolist() == histories["auto"]["train_loss"].tolist()
    assert histories[False]["train_loss"].tolist() != histories[True]["train_loss"].tolist()
    assert histories[True]["train_loss"].tolist() == pytest.approx(histories[False]["train_loss"].tolist(), rel=0.05)
    weights = {amp: torch.load(tmp_path / str(amp) / "model.pt", weights_only=True)["model_state"] for amp in runs}
    assert all(torch.equal(weights[False][k], weights["auto"][k]) for k in weights[False])
    assert all(w.dtype == torch.float32 for w in weights[True].values() if w.is_floating_point())


def _amp_step(amp_dtype, scaler=None):
    """One train_batch of a tiny model on the CPU: (loss, dtypes the output layer computed in, model before,
    model after)."""
    model = seeded_model("bahdanau").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = collate([([4, 5, 6, 7, 2], [4, 5, 6, 2]), ([8, 2], [7, 8, 9, 10, 2]), ([9, 10, 11, 2], [5, 2])])
    seen = []
    model.decoder.out.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = train_batch(model, batch, optimizer, clip_grad=1.0, teacher_forcing=1.0, scaler=scaler,
                       amp_dtype=amp_dtype)
    return loss, seen, before, model


def test_a_mixed_precision_step_computes_in_bf16_and_updates_fp32_weights():
    """The bf16 path of train_batch on the CPU (as on an A100 or H100): the forward pass runs in bf16 under
    autocast, the loss is the fp32 loss up to bf16 rounding, and the fp32 weights take the step."""
    loss, seen, before, model = _amp_step(torch.bfloat16)
    full, full_seen, _, full_model = _amp_step(None)
    assert set(seen) == {torch.bfloat16} and set(full_seen) == {torch.float32}
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert float(loss) == pytest.approx(float(full), rel=0.02)
    state = model.state_dict()
    assert all(state[k].dtype == torch.float32 for k in state)
    changed = [k for k in state if not torch.equal(state[k], before[k])]
    assert "decoder.out.weight" in changed and "encoder.embedding.weight" in changed
    # the bf16 step moves the weights about as the fp32 one does
    step = state["decoder.out.weight"] - before["decoder.out.weight"]
    full_step = full_model.state_dict()["decoder.out.weight"] - before["decoder.out.weight"]
    assert torch.nn.functional.cosine_similarity(step.flatten(), full_step.flatten(), dim=0) > 0.95


def test_a_scaled_fp16_step_unscales_before_clipping():
    """The fp16 path (V100, T4) with a gradient scaler of scale 1024: the step clips the unscaled gradients,
    so it moves the weights as far as the unscaled fp32 step does, not 1024 times less."""
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    loss, seen, before, model = _amp_step(torch.float16, scaler)
    _, _, _, full_model = _amp_step(None)
    assert set(seen) == {torch.float16} and torch.isfinite(loss)
    key = "decoder.out.weight"
    step = (model.state_dict()[key] - before[key]).norm()
    full_step = (full_model.state_dict()[key] - before[key]).norm()
    assert float(step) == pytest.approx(float(full_step), rel=0.1)


@pytest.mark.parametrize(("select", "averaged"), [("last", [3, 4]), ("best", [1, 4])])
def test_checkpoint_averaging_publishes_the_mean_of_the_kept_epochs(tmp_path, corpus, monkeypatch, select, averaged):
    """Validation BLEU 30, 10, 20, 25: the last two epochs are 3 and 4, the best two 1 and 4. model.pt is the
    mean of those epochs' own weights (read from resume.pt as each epoch ends)."""
    from seq2seq.training import average_states

    Scripted(bleu=[30.0, 10.0, 20.0, 25.0]).install(monkeypatch)
    weights = {}

    def keep(epoch: int) -> None:
        weights[epoch] = load_checkpoint(tmp_path / "resume.pt")["model_state"]

    summary = _run(tmp_path, corpus, epochs=4, callback=keep, average={"epochs": 2, "select": select},
                   early_stopping={"patience": 10})
    assert summary.averaged_epochs == averaged
    published = load_checkpoint(tmp_path / "model.pt")
    expected = average_states([weights[e] for e in averaged])
    assert all(torch.allclose(published["model_state"][k], expected[k]) for k in expected)
    assert not all(torch.equal(weights[3][k], weights[1][k]) for k in expected)  # the epochs did differ
    assert published["metadata"]["averaged_epochs"] == averaged


def test_tensorboard_event_files_are_written_next_to_the_run(tmp_path, corpus):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _run(tmp_path, corpus, epochs=2, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train_loss", "valid_loss", "valid_bleu", "learning_rate"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("valid_bleu")] == [1, 2]


def test_sources_longer_than_the_models_max_length_are_counted_in_a_warning(caplog) -> None:
    pairs = [("a b c d", "x"), ("a b", "y"), ("a b c d e f", "z")]  # 5, 3 and 7 tokens with <eos>
    vocab = WordVocabulary.build(source for source, _ in pairs)
    with caplog.at_level(logging.WARNING, logger="seq2seq.training"):
        assert training.warn_about_cut_sources(pairs, vocab, limit=7) == 0
        assert not caplog.records
        assert training.warn_about_cut_sources(pairs, vocab, limit=4) == 2
    [record] = caplog.records
    assert record.getMessage().startswith("2 of 3 training sources (66.7%) are longer than the model's max_length=4")
    assert "the longest has 7" in record.getMessage()


@pytest.mark.parametrize("patience", [0, 1, 2])
def test_plateau_reduces_the_rate_after_more_than_lr_patience_epochs_without_improvement(patience):
    """What the README and the schema say: with the default 2, the third epoch in a row without an improvement
    halves the rate (PyTorch's ReduceLROnPlateau; early stopping counts its own patience differently)."""
    from seq2seq.optimization import LearningRate

    config = TrainConfig(lr_schedule="plateau", lr_patience=patience, learning_rate=1.0, lr_factor=0.5)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = LearningRate(optimizer, config, steps_per_epoch=10)
    rates = []
    for loss in [1.0, 1.0 - 1e-6, 1.0, 1.0, 1.0, 1.0]:  # the best at epoch 1 (a gain under 0.01% is none)
        schedule.after_epoch(loss)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[:patience + 2] == [1.0] * (patience + 1) + [0.5], rates  # epoch 1, then patience + 1 stalls
