"""Training: config parsing, learning a tiny task, determinism, resuming, checkpoints."""

import csv
import logging
import random
from pathlib import Path

import pytest
import torch

from seq2seq.batching import encode_pairs, make_batches
from seq2seq.checkpoint import load_checkpoint, load_model, save_checkpoint
from seq2seq.model import Seq2Seq
from seq2seq.settings import ModelConfig
from seq2seq.settings import TrainConfig
from seq2seq.checkpoint import Metadata
from seq2seq.training import HISTORY_COLUMNS, resolve_amp, sequence_loss, train_batch, train_model
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


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from more threads, and one thread stays fast on a busy machine.
    train_model(threads=1) also sets the process-wide value: restore it afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus():
    train, valid = _pairs(160, 0), _pairs(24, 1)
    source = WordVocabulary.build(s for s, _ in train)
    target = WordVocabulary.build(t for _, t in train)
    return train, valid, source, target


def _run(tmp_path: Path, corpus, epochs=3, callback=None, attention="bahdanau", **overrides):
    train, valid, source, target = corpus
    config = TrainConfig.from_dict({"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu",
                                    **overrides})
    model_config = ModelConfig(len(source), len(target), attention, hidden_size=24, dropout=0.1)
    return train_model(train, valid, source, target, model_config, config, tmp_path / "model.pt",
                       tmp_path / "last.pt", tmp_path / "history.tsv", tmp_path / "resume.pt",
                       Metadata(pair="fra-eng", model_name="m", normalization="ascii"), threads=1,
                       log=logging.getLogger("test"), epoch_callback=callback)


def test_train_config_from_dict():
    config = TrainConfig.from_dict({"epochs": 2, "early_stopping": {"patience": 3}})
    assert config.early_stopping == {"metric": "valid_bleu", "patience": 3}
    with pytest.raises(ValueError, match=r"config: training: unknown keys \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 2})
    with pytest.raises(ValueError, match="early_stopping"):
        TrainConfig.from_dict({"early_stopping": {"metric": "bleu"}})


@pytest.mark.parametrize("attention,reverse", [("bahdanau", True), ("luong", False), ("tutorial", False)])
def test_learns_a_tiny_task(attention, reverse):
    torch.manual_seed(0)
    source = WordVocabulary.build([" ".join(WORDS)])
    target = WordVocabulary.build([" ".join(WORDS).upper()])
    examples = encode_pairs(_pairs(256, 2, reverse), source, target)
    model = Seq2Seq(ModelConfig(len(source), len(target), attention, hidden_size=48, dropout=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for epoch in range(25):
        for batch in make_batches(examples, 32, shuffle=True, seed=0, epoch=epoch):
            losses.append(float(train_batch(model, batch, optimizer, clip_grad=1.0, teacher_forcing=1.0)))
    assert losses[0] > 2.0 and sum(losses[-8:]) / 8 < 0.05


def test_outputs_history_and_checkpoints(tmp_path, corpus):
    summary = _run(tmp_path, corpus, epochs=2)
    with open(tmp_path / "history.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert tuple(rows[0]) == HISTORY_COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]
    assert not (tmp_path / "resume.pt").exists()
    model, source, target, metadata = load_model(tmp_path / "model.pt")
    assert not model.training and len(source) == len(corpus[2]) and len(target) == len(corpus[3])
    assert metadata.pair == "fra-eng" and metadata.normalization == "ascii"
    assert metadata.epoch == summary["best_epoch"] and len(metadata.history) == summary["best_epoch"]
    assert metadata.training["epochs"] == 2 and "label_smoothing" in metadata.training
    assert metadata.parameters == sum(p.numel() for p in model.parameters())
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["metadata"]["epoch"] == 2 and "optimizer_state" in last and "rng_state" in last


def test_deterministic_on_cpu(tmp_path, corpus):
    first = _run(tmp_path / "a", corpus, epochs=2)
    second = _run(tmp_path / "b", corpus, epochs=2)
    assert [r["train_loss"] for r in first["history"]] == [r["train_loss"] for r in second["history"]]
    assert [r["valid_loss"] for r in first["history"]] == [r["valid_loss"] for r in second["history"]]


class Killed(Exception):
    pass


def _kill_after(epoch_to_kill):
    def callback(epoch):
        if epoch == epoch_to_kill:
            raise Killed
    return callback


@pytest.mark.parametrize("attention", ["tutorial", "luong"])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, corpus, attention):
    overrides = {"teacher_forcing": 0.5} if attention == "tutorial" else {}
    full = _run(tmp_path / "full", corpus, epochs=3, attention=attention, **overrides)
    with pytest.raises(Killed):
        _run(tmp_path / "cut", corpus, epochs=3, callback=_kill_after(1), attention=attention, **overrides)
    assert (tmp_path / "cut" / "resume.pt").exists()
    # a killed run leaves no output that could pass for the result
    assert not any((tmp_path / "cut" / name).exists() for name in ("model.pt", "last.pt", "history.tsv"))
    resumed = _run(tmp_path / "cut", corpus, epochs=3, attention=attention, **overrides)
    assert resumed["resumed_from_epoch"] == 1
    for key in ("train_loss", "valid_loss", "valid_bleu"):
        assert [r[key] for r in resumed["history"]] == [r[key] for r in full["history"]]
    assert (tmp_path / "cut" / "model.pt").exists() and not (tmp_path / "cut" / "resume.pt").exists()


def test_incompatible_resume_checkpoint_starts_fresh(tmp_path, corpus, caplog):
    with pytest.raises(Killed):
        _run(tmp_path, corpus, epochs=2, callback=_kill_after(1))
    with caplog.at_level(logging.WARNING):
        summary = _run(tmp_path, corpus, epochs=2, learning_rate=1e-3)
    assert summary["resumed_from_epoch"] is None and "starting fresh" in caplog.text
    assert [r["epoch"] for r in summary["history"]] == [1, 2]


@pytest.mark.parametrize("damage", ["rng_state", "model_state"])
def test_resume_failing_halfway_starts_exactly_fresh(tmp_path, corpus, caplog, damage):
    """A checkpoint that passes the config checks but fails while loading (here after the model, optimizer
    and scheduler were already loaded) must leave nothing behind: the run equals one without it."""
    fresh = _run(tmp_path / "fresh", corpus, epochs=2)
    with pytest.raises(Killed):
        _run(tmp_path / "cut", corpus, epochs=2, callback=_kill_after(1))
    resume = tmp_path / "cut" / "resume.pt"
    data = torch.load(resume, weights_only=True)
    if damage == "rng_state":
        del data["rng_state"]["python"]
    else:  # as after renaming a parameter: every other tensor matches and is copied before the error
        data["model_state"]["renamed.weight"] = data["model_state"].pop("decoder.out.weight")
    save_checkpoint(resume, {k: v for k, v in data.items() if k not in ("format", "weights_sha256")})
    with caplog.at_level(logging.WARNING):
        summary = _run(tmp_path / "cut", corpus, epochs=2)
    assert summary["resumed_from_epoch"] is None and "cannot resume" in caplog.text
    assert [r["epoch"] for r in summary["history"]] == [1, 2]
    for key in ("train_loss", "valid_loss", "valid_bleu"):
        assert [r[key] for r in summary["history"]] == [r[key] for r in fresh["history"]]
    assert (tmp_path / "cut" / "model.pt").exists()


def test_resume_checkpoint_of_other_code_starts_fresh(tmp_path, corpus, caplog, monkeypatch):
    """After an edit of the training code (Snakemake reruns `train` for it) a resume would mix two versions."""
    with pytest.raises(Killed):
        _run(tmp_path, corpus, epochs=2, callback=_kill_after(1))
    monkeypatch.setattr("seq2seq.dependencies.source_fingerprint", lambda path: "edited")
    with caplog.at_level(logging.WARNING):
        summary = _run(tmp_path, corpus, epochs=2)
    assert summary["resumed_from_epoch"] is None and "package code changed since it was saved" in caplog.text
    assert [r["epoch"] for r in summary["history"]] == [1, 2]


def test_early_stopping_has_its_own_patience(tmp_path, corpus):
    summary = _run(tmp_path, corpus, epochs=10, learning_rate=1e-9,
                   early_stopping={"metric": "valid_loss", "patience": 1}, lr_patience=5)
    assert summary["stop_reason"] == "early_stopping" and summary["epochs"] < 10


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_corrupt_or_missing_checkpoint_names_the_file(tmp_path, corpus, content):
    path = tmp_path / "broken.pt"
    if content is None:
        _run(tmp_path, corpus, epochs=1)
        path.write_bytes((tmp_path / "model.pt").read_bytes()[:1000])  # truncated
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.pt"):
        load_model(path)
    with pytest.raises(ValueError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


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


@pytest.mark.parametrize(("capability", "expected"), [
    ((7, 0), (torch.float16, True)), ((7, 5), (torch.float16, True)),
    ((8, 0), (torch.bfloat16, False)), ((9, 0), (torch.bfloat16, False)),
])
def test_mixed_precision_is_bf16_only_where_the_gpu_computes_in_it(monkeypatch, capability, expected):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    assert resolve_amp(True, torch.device("cuda", 1)) == expected
    assert asked == [torch.device("cuda", 1)]  # the training device, not the current one
    assert resolve_amp(False, torch.device("cuda", 1)) == (None, False)
    assert resolve_amp(True, torch.device("cpu")) == (None, False)


@pytest.mark.parametrize("select", ["last", "best"])
def test_checkpoint_averaging_publishes_the_mean_of_the_kept_epochs(tmp_path, corpus, select):
    from seq2seq.training import average_states

    summary = _run(tmp_path, corpus, epochs=4, average={"epochs": 3, "select": select})
    assert len(summary["averaged_epochs"]) == 3
    history = {row["epoch"]: row["valid_bleu"] for row in summary["history"]}
    if select == "last":
        assert summary["averaged_epochs"] == [2, 3, 4]
    else:
        assert summary["averaged_epochs"] == sorted(sorted(history, key=lambda e: (history[e], e))[-3:])
    kept = load_checkpoint(tmp_path / "last.pt")["training_state"]["kept_states"]
    published = load_checkpoint(tmp_path / "model.pt")
    expected = average_states([kept[e] for e in summary["averaged_epochs"]])
    assert all(torch.allclose(published["model_state"][k], expected[k]) for k in expected)
    assert published["metadata"]["averaged_epochs"] == summary["averaged_epochs"]


def test_tensorboard_event_files_are_written_next_to_the_run(tmp_path, corpus):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _run(tmp_path, corpus, epochs=2, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train_loss", "valid_loss", "valid_bleu", "learning_rate"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("valid_bleu")] == [1, 2]
