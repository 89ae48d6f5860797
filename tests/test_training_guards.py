"""What stops training before anything wrong is published: a damaged resume state, a diverging loss, a signal
(saved mid-epoch, resumed to the uninterrupted result), a full disk."""

import errno
import re
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import Killed, kill_after_epoch
from seq2seq import checkpoint as checkpoint_module
from seq2seq.checkpoint import CheckpointError, content_digest, load_checkpoint
from seq2seq.fileio import DiskFullError, atomic_open
from seq2seq.guards import DIVERGENCE_FACTOR, TrainingDiverged, divergence_limit
from seq2seq.logs import Interrupted, logging_to
from seq2seq.metadata import Metadata
from seq2seq.models.gru_config import GRUConfig
from seq2seq.settings import TrainConfig
from seq2seq.training import Hooks, TrainingData, TrainingFiles, train_model
from seq2seq.vocab import WordVocabulary

WORDS = [f"w{i}" for i in range(8)]
OUTPUTS = ("model.pt", "last.pt", "history.tsv")


def _pairs(n, seed):
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        pairs.append((" ".join(words), " ".join(reversed(words)).upper()))
    return pairs


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus():
    train, valid = _pairs(160, 0), _pairs(24, 1)
    return train, valid, WordVocabulary.build(s for s, _ in train), WordVocabulary.build(t for _, t in train)


def _run(folder: Path, corpus, epochs=3, attention="bahdanau", epoch_callback=None, batch_callback=None,
         **overrides):
    train, valid, source, target = corpus
    config = TrainConfig.from_dict({"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu",
                                    **overrides})
    model_config = GRUConfig(len(source), len(target), attention, hidden_size=24, dropout=0.1, max_length=11)
    files = TrainingFiles(folder / "model.pt", folder / "last.pt", folder / "history.tsv", folder / "resume.pt")
    return train_model(TrainingData(train, valid, source, target), model_config, config, files,
                       Metadata(pair="fra-eng", model_name="m"), threads=1,
                       hooks=Hooks(after_epoch=epoch_callback, after_batch=batch_callback))


def _losses(summary):
    return [(row["train_loss"], row["valid_loss"], row["valid_bleu"]) for row in summary.history]


# ---------------------------------------------------------------------------------------------- the digest

@pytest.fixture(scope="module")
def resume_state(tmp_path_factory, corpus):
    """A resume state saved after epoch 1 of 3 (training killed right after saving it)."""
    folder = tmp_path_factory.mktemp("resume")
    with pytest.raises(Killed):
        _run(folder, corpus, epoch_callback=kill_after_epoch(1), average={"epochs": 2})
    return (folder / "resume.pt").read_bytes()


def _member_spans(data: bytes) -> dict[str, tuple[int, int]]:
    """name -> (start, end) of each stored member's bytes in a torch zip (members are stored uncompressed)."""
    import io
    import zipfile

    spans = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            header = info.header_offset
            name_length = int.from_bytes(data[header + 26: header + 28], "little")
            extra_length = int.from_bytes(data[header + 28: header + 30], "little")
            start = header + 30 + name_length + extra_length
            spans[info.filename] = (start, start + info.compress_size)
    return spans


def _flip(data: bytes, position: int, count: int = 16) -> bytes:
    damaged = bytearray(data)
    for i in range(position, min(position + count, len(damaged))):
        damaged[i] ^= 0xFF
    return bytes(damaged)


def _damage_positions(data: bytes) -> dict[str, int]:
    """Where to flip bytes: the file's start, middle and end, and inside every part of the payload (each tensor
    storage: weights, optimizer moments, the random-number state, the best and kept weights; the pickle)."""
    spans = _member_spans(data)
    positions = {"start": 0, "middle": len(data) // 2, "end": len(data) - 16}
    for name, (start, end) in spans.items():
        if end - start >= 16 and (name.endswith("data.pkl") or "/data/" in name):
            positions[name] = (start + end) // 2 - 8
    return positions


def test_the_digest_covers_every_part_of_a_resume_state(resume_state, tmp_path):
    """16 bytes flipped anywhere (the start, the middle, the end; the pickled plain data; every tensor: weights,
    optimizer moments, RNG state, best and kept weights) make the state unreadable or refused."""
    positions = _damage_positions(resume_state)
    storages = [name for name in positions if "/data/" in name]
    state = load_checkpoint_bytes(resume_state, tmp_path / "intact.pt")
    assert state["training_state"]["kept_states"] and state["training_state"]["best_model_state"]
    assert len(storages) > 3 * len(state["model_state"])  # weights, two Adam moments, best and kept weights, RNG
    refused = []
    for name, position in positions.items():
        path = tmp_path / "damaged.pt"
        path.write_bytes(_flip(resume_state, position))
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error), name
            assert re.search(r"damaged|not a readable|not a checkpoint", str(error)), name
            refused.append(name)
        else:  # damage to bytes that hold no content (the zip's closing record): what loads is what was written
            assert content_digest(loaded) == state["sha256"], name
    assert set(positions) - set(refused) <= {"end"}


def load_checkpoint_bytes(data: bytes, path: Path) -> dict:
    path.write_bytes(data)
    return load_checkpoint(path)


def test_a_damaged_rng_state_passes_torch_load_but_not_the_digest(resume_state, tmp_path):
    """The case of the issue: bytes of the RNG state (or of the best weights) damaged in place unpickle fine."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(resume_state)) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    payload = torch.load(io.BytesIO(resume_state), weights_only=True)
    rng = payload["rng_state"]["torch"]
    spans = _member_spans(resume_state)
    # the storage of the RNG state is the one whose bytes equal it
    name = next(n for n, (a, b) in spans.items() if resume_state[a:b] == rng.numpy().tobytes())
    start, end = spans[name]
    damaged = _flip(resume_state, (start + end) // 2)
    reloaded = torch.load(io.BytesIO(damaged), weights_only=True)  # torch itself notices nothing
    assert not torch.equal(reloaded["rng_state"]["torch"], rng)
    path = tmp_path / "resume.pt"
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError, match="its content does not match the sha256"):
        load_checkpoint(path)
    assert pickled  # the pickle itself was untouched


def test_a_damaged_resume_state_is_never_resumed_from(tmp_path, corpus, caplog):
    """Killed after epoch 1, the state damaged in its middle: one warning, and training starts afresh, ending
    where an uninterrupted run ends (not with NaN losses from garbage weights)."""
    uninterrupted = _run(tmp_path / "a", corpus, epochs=2)
    folder = tmp_path / "b"
    with pytest.raises(Killed):
        _run(folder, corpus, epochs=2, epoch_callback=kill_after_epoch(1))
    data = (folder / "resume.pt").read_bytes()
    (folder / "resume.pt").write_bytes(_flip(data, len(data) // 2))
    with caplog.at_level(logging.WARNING):
        summary = _run(folder, corpus, epochs=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("not resuming, training starts afresh: ")
    assert str(folder / "resume.pt") in warnings[0]
    assert summary.resumed_from_epoch is None
    assert _losses(summary) == _losses(uninterrupted)


def test_a_model_checkpoint_of_the_previous_format_still_loads(tmp_path, corpus):
    """Format 3 stored a digest of the weights only and named no model family: such a model.pt translates (as
    a GRU model); its bytes are still checked."""
    from seq2seq.checkpoint import load_model, state_digest
    from seq2seq.models.gru import GRUSeq2Seq

    folder = tmp_path / "run"
    _run(folder, corpus, epochs=1)
    payload = torch.load(folder / "model.pt", weights_only=True)
    del payload["sha256"]
    assert payload["model_config"].pop("family") == "gru"  # format 3 came before model families
    payload.update(format=3, weights_sha256=state_digest(payload["model_state"]))
    old = tmp_path / "format3.pt"
    torch.save(payload, old)
    model, source, target, metadata = load_model(old)
    assert metadata.model_name == "m" and len(target) == len(corpus[3])
    assert isinstance(model, GRUSeq2Seq) and model.config.attention == "bahdanau"
    new, _, _, _ = load_model(folder / "model.pt")
    assert all(torch.equal(tensor, new.state_dict()[name]) for name, tensor in model.state_dict().items())
    payload["model_state"]["decoder.out.bias"][0] += 1.0
    torch.save(payload, old)
    with pytest.raises(CheckpointError, match="the weights do not match the sha256"):
        load_model(old)


def test_a_training_state_of_the_previous_format_is_not_resumed(tmp_path, corpus, caplog):
    folder = tmp_path / "run"
    with pytest.raises(Killed):
        _run(folder, corpus, epochs=2, epoch_callback=kill_after_epoch(1))
    payload = torch.load(folder / "resume.pt", weights_only=True)
    del payload["sha256"]
    payload.update(format=3, weights_sha256=checkpoint_module.state_digest(payload["model_state"]))
    torch.save(payload, folder / "resume.pt")
    with caplog.at_level(logging.WARNING):
        summary = _run(folder, corpus, epochs=2)
    assert summary.resumed_from_epoch is None
    assert any("of format 3, from an earlier release" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------- divergence

def test_a_diverging_run_stops_at_once_and_publishes_nothing(tmp_path, corpus):
    """A learning rate of 1e6: the running loss leaves ln V behind within the first check; one line names the
    epoch, the batch and what to change."""
    batches_seen = []
    with pytest.raises(TrainingDiverged) as caught:
        _run(tmp_path, corpus, epochs=3, learning_rate=1e6, batch_size=4,
             batch_callback=lambda progress: batches_seen.append(progress.batches_done))
    message = str(caught.value)
    assert message.startswith("training diverged in epoch 1 (batch ")
    assert "lower training.learning_rate (now 1e+06)" in message and "nothing was published" in message
    assert "\n" not in message and len(batches_seen) <= 20  # checked every 20 batches: stopped at the first look
    assert not any((tmp_path / name).exists() for name in OUTPUTS)


def test_a_nan_loss_stops_the_run(tmp_path, corpus, monkeypatch):
    """A loss that turns NaN mid-epoch (garbage weights, an overflow) is caught at the next look, not trained on."""
    import seq2seq.training as training

    real = training.train_batch
    calls = []

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        calls.append(1)
        return loss * float("nan") if len(calls) == 13 else loss

    monkeypatch.setattr(training, "train_batch", poisoned)
    with pytest.raises(TrainingDiverged, match=r"training diverged in epoch 2 \(batch \d+ of \d+\): the training "
                                               r"loss became nan"):
        _run(tmp_path, corpus, epochs=3)
    assert not any((tmp_path / name).exists() for name in OUTPUTS)


def test_a_non_finite_gradient_norm_shows_in_the_loss():
    """Without a gradient scaler, train_batch reports an infinite gradient norm as a non-finite loss."""
    from seq2seq.batching import encode_pairs, make_batches
    from seq2seq.models.gru import GRUSeq2Seq
    from seq2seq.training import train_batch

    source = WordVocabulary.build([" ".join(WORDS)])
    target = WordVocabulary.build([" ".join(WORDS).upper()])
    batch = make_batches(encode_pairs(_pairs(8, 3), source, target), 8, shuffle=False, seed=0)[0]
    model = GRUSeq2Seq(GRUConfig(len(source), len(target), "bahdanau", hidden_size=16, dropout=0.0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    assert torch.isfinite(train_batch(model, batch, optimizer, clip_grad=1.0, teacher_forcing=1.0))
    model.decoder.out.bias.register_hook(lambda grad: grad * float("inf"))
    assert not torch.isfinite(train_batch(model, batch, optimizer, clip_grad=1.0, teacher_forcing=1.0))


def test_a_healthy_run_starts_below_the_divergence_limit(tmp_path, corpus):
    """An untrained model's loss is about ln V and training lowers it: the first epoch's mean is already below
    ln V, and the limit lies half as much again above it."""
    import math

    vocabulary = len(corpus[3])
    summary = _run(tmp_path, corpus, epochs=1)
    assert divergence_limit(vocabulary) == pytest.approx(DIVERGENCE_FACTOR * math.log(vocabulary))
    assert summary.history[0]["train_loss"] < math.log(vocabulary) < divergence_limit(vocabulary)


# ---------------------------------------------------------------------------------------------- signals

def _signal_at(epoch: int, batch: int, number: int = signal.SIGTERM):
    def callback(progress):
        if progress.epoch == epoch and progress.batches_done == batch:
            os.kill(os.getpid(), number)
    return callback


@pytest.mark.parametrize("attention,batch,schedule", [("bahdanau", 3, {}), ("luong", 1, {}), ("tutorial", 9, {}),
                                                      ("bahdanau", 5, {"lr_schedule": "cosine",
                                                                       "lr_warmup_steps": 4})])
def test_sigterm_saves_the_last_batch_and_a_rerun_ends_as_an_uninterrupted_run(tmp_path, corpus, attention, batch,
                                                                               schedule):
    """A wall-time limit's SIGTERM in the middle of epoch 2: the state after the last finished batch is saved,
    the run stops with one line and publishes nothing; the same call again resumes mid-epoch and ends with the
    losses and BLEU of a run that was never stopped (same bits; with a learning rate set per batch too)."""
    uninterrupted = _run(tmp_path / "a", corpus, epochs=3, attention=attention, **schedule)
    folder = tmp_path / "b"
    with pytest.raises(Interrupted) as caught:
        _run(folder, corpus, epochs=3, attention=attention, batch_callback=_signal_at(2, batch), **schedule)
    assert caught.value.signal_number == signal.SIGTERM
    assert str(caught.value) == (f"stopped by SIGTERM in epoch 2 after {batch} batches; its state is saved in "
                                 f"{folder / 'resume.pt'}: run the same command again to resume")
    assert not any((folder / name).exists() for name in OUTPUTS)
    saved = load_checkpoint(folder / "resume.pt")["training_state"]
    assert (saved["epoch"], saved["batches_done"]) == (1, batch)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
    resumed = _run(folder, corpus, epochs=3, attention=attention, **schedule)
    assert resumed.resumed_from_epoch == 1
    assert _losses(resumed) == _losses(uninterrupted)
    assert [r["learning_rate"] for r in resumed.history] == [r["learning_rate"] for r in uninterrupted.history]
    assert not (folder / "resume.pt").exists()
    first, second = load_checkpoint(tmp_path / "a" / "model.pt"), load_checkpoint(folder / "model.pt")
    assert all(torch.equal(first["model_state"][k], second["model_state"][k]) for k in first["model_state"])


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_sigterm_past_max_minutes_finishes_its_epoch_on_the_rerun_as_an_uninterrupted_run_does(
        tmp_path, corpus, monkeypatch, epoch):
    """The wall-time case: the budget runs out in the middle of an epoch and SIGTERM comes in the same epoch. An
    uninterrupted run finishes the epoch that crosses max_minutes, so the rerun must too: it used to stop at once,
    dropping that epoch (and after a SIGTERM in epoch 1 it wrote a model.pt without weights)."""
    real_clock, hour_later = time.perf_counter, [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + hour_later[0])

    def budget_runs_out(then_sigterm: bool):
        def callback(progress):
            if progress.epoch == epoch and progress.batches_done == 3:
                hour_later[0] = 3600.0
                if then_sigterm:
                    os.kill(os.getpid(), signal.SIGTERM)
        return callback

    uninterrupted = _run(tmp_path / "a", corpus, epochs=3, max_minutes=30, batch_callback=budget_runs_out(False))
    assert (uninterrupted.stop_reason, uninterrupted.epochs) == ("max_minutes", epoch)
    hour_later[0] = 0.0
    folder = tmp_path / "b"
    with pytest.raises(Interrupted):
        _run(folder, corpus, epochs=3, max_minutes=30, batch_callback=budget_runs_out(True))
    resumed = _run(folder, corpus, epochs=3, max_minutes=30)
    assert (resumed.stop_reason, resumed.epochs, resumed.resumed_from_epoch) == ("max_minutes", epoch, epoch - 1)
    assert _losses(resumed) == _losses(uninterrupted)
    first, second = load_checkpoint(tmp_path / "a" / "model.pt"), load_checkpoint(folder / "model.pt")
    assert all(torch.equal(first["model_state"][k], second["model_state"][k]) for k in first["model_state"])


def test_a_changed_validation_split_is_not_resumed_over(tmp_path, corpus, caplog):
    """The vocabularies come from the training split alone, so they miss a new validation split (another
    valid/test division of the same held-out pairs): its resume state was measured on other pairs."""
    train, valid, source, target = corpus
    with pytest.raises(Killed):
        _run(tmp_path, corpus, epoch_callback=kill_after_epoch(1))
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        rerun = _run(tmp_path, (train, valid[:-4], source, target))
    assert rerun.resumed_from_epoch is None
    assert "training data changed since it was saved; starting fresh" in caplog.text


def test_ctrl_c_between_epochs_saves_the_epoch_and_exits_with_one_line(tmp_path, corpus, capsys):
    folder = tmp_path / "run"
    log = tmp_path / "train.log"
    with pytest.raises(SystemExit) as caught, logging_to(log, "training"):
        _run(folder, corpus, epochs=3,
             epoch_callback=lambda epoch: epoch == 1 and os.kill(os.getpid(), signal.SIGINT))
    assert caught.value.code == 128 + signal.SIGINT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"training interrupted: stopped by SIGINT after epoch 1; its state is saved in "
                       f"{folder / 'resume.pt'}: run the same command again to resume")
    assert "Traceback" not in log.read_text()
    assert load_checkpoint(folder / "resume.pt")["training_state"]["epoch"] == 1


def test_ctrl_c_in_a_stage_is_one_line(tmp_path, capsys):
    log = tmp_path / "stage.log"
    with pytest.raises(SystemExit) as caught, logging_to(log, "prepare"):
        raise KeyboardInterrupt
    assert caught.value.code == 130
    assert capsys.readouterr().err == "prepare interrupted (Ctrl-C); nothing of this job was published\n"
    assert len(log.read_text().splitlines()) == 1


def test_sigterm_to_a_training_process_saves_and_exits_143(tmp_path):
    """The real thing, in a process of its own as Slurm sees it: SIGTERM while it trains."""
    script = tmp_path / "train.py"
    script.write_text(f"""
import logging, random, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from test_training_guards import _pairs
from seq2seq.logs import logging_to
from seq2seq.metadata import Metadata
from seq2seq.models.gru_config import GRUConfig
from seq2seq.settings import TrainConfig
from seq2seq.training import Hooks, TrainingData, TrainingFiles, train_model
from seq2seq.vocab import WordVocabulary
train, valid = _pairs(160, 0), _pairs(24, 1)
source, target = WordVocabulary.build(s for s, _ in train), WordVocabulary.build(t for _, t in train)
folder = __import__("pathlib").Path({str(tmp_path)!r})
def slow(progress):
    if progress.epoch == 1 and progress.batches_done == 2:
        print("ready", flush=True)
    time.sleep(0.05)
with logging_to(folder / "train.log", "training"):
    train_model(TrainingData(train, valid, source, target),
                GRUConfig(len(source), len(target), "bahdanau", hidden_size=16, max_length=11),
                TrainConfig.from_dict({{"epochs": 50, "batch_size": 16, "device": "cpu"}}),
                TrainingFiles(folder / "model.pt", folder / "last.pt", folder / "history.tsv", folder / "resume.pt"),
                Metadata(), threads=1, hooks=Hooks(after_batch=slow))
""")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1].startswith("training interrupted: stopped by SIGTERM in epoch 1 after ")
    assert "Traceback" not in err
    assert load_checkpoint(tmp_path / "resume.pt")["training_state"]["batches_done"] >= 2
    assert not (tmp_path / "model.pt").exists()


# ---------------------------------------------------------------------------------------------- full disk

def test_a_full_disk_at_the_resume_save_says_so_and_keeps_the_earlier_state(tmp_path, corpus, monkeypatch):
    import seq2seq.checkpoint as checkpoint

    folder = tmp_path / "run"
    real_save = torch.save
    saves = []

    def save(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:  # the resume state after epoch 2
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save)
    monkeypatch.setattr("seq2seq.fileio.free_bytes", lambda folder: 4096)  # what a full disk shows
    with pytest.raises(DiskFullError) as caught:
        _run(folder, corpus, epochs=3)
    message = str(caught.value)
    assert message.startswith("epoch 2 could not be saved, so a rerun starts from the state saved before it: "
                              f"{folder / 'resume.pt'}: cannot write it: no space left on the disk")
    assert "\n" not in message
    assert load_checkpoint(folder / "resume.pt")["training_state"]["epoch"] == 1  # the earlier state, intact
    assert sorted(p.name for p in folder.iterdir()) == ["resume.pt"]  # no temporary file, nothing published


def test_enospc_anywhere_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    target = tmp_path / "stats.json"
    log = tmp_path / "stage.log"
    with pytest.raises(SystemExit) as caught, logging_to(log, "prepare"):
        with atomic_open(target) as handle:
            handle.write("{}")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.code == 1
    assert capsys.readouterr().err.startswith(f"prepare failed: {target}: cannot write it: no space left on the disk")
    assert list(tmp_path.iterdir()) == [log]


def _small_file_system(tmp_path: Path) -> Path:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 3 MB tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    return mount


def test_a_real_full_disk_during_training(tmp_path, corpus):
    """results/ on a 3 MB file system: the first resume save fails; one line says the disk is full."""
    mount = _small_file_system(tmp_path)
    try:
        train, valid, source, target = corpus
        with pytest.raises(DiskFullError, match=r"^epoch 1 could not be saved, .*resume\.pt: cannot write it: no "
                                                r"space left on the disk"):
            train_model(TrainingData(train, valid, source, target),
                        GRUConfig(len(source), len(target), "bahdanau", hidden_size=256, tie_embeddings=False,
                                  max_length=11),
                        TrainConfig.from_dict({"epochs": 2, "batch_size": 64, "device": "cpu"}),
                        TrainingFiles(mount / "model.pt", mount / "last.pt", mount / "history.tsv",
                                      mount / "resume.pt"), Metadata(), threads=1)
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_in_the_prepare_stage_is_one_line(tmp_path, capsys):
    """The splits of 60,000 pairs on a 3 MB file system: one line naming the file and the full disk, no
    traceback, no half-written split."""
    from seq2seq.corpus import prepare_corpus
    from seq2seq.settings import PrepareSettings

    raw = tmp_path / "raw.txt"
    def word(i: int) -> str:  # letters only: the normalization drops digits
        return "".join(chr(97 + (i // 26 ** k) % 26) for k in range(4))

    raw.write_text("".join(f"I am {word(i)} of many here.\tJe suis {word(i)} de beaucoup ici.\n"
                           for i in range(60_000)), encoding="utf-8")
    mount = _small_file_system(tmp_path)
    try:
        out = mount / "data"
        with pytest.raises(SystemExit) as caught, logging_to(tmp_path / "prepare.log", "prepare"):
            prepare_corpus(raw, out / "train.tsv", out / "valid.tsv", out / "test.tsv", out / "stats.json",
                           PrepareSettings(target_prefixes=None))
        assert caught.value.code == 1
        err = capsys.readouterr().err
        assert re.fullmatch(rf"prepare failed: {out}/\w+\.tsv: cannot write it: no space left on the disk "
                            r"\([\d.]+ MB free once the partial file was removed\)\n", err), err
        assert "Traceback" not in (tmp_path / "prepare.log").read_text()
        assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary file left
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# ---------------------------------------------------------------------------------------------- learning rate

def test_the_scheduled_learning_rate_rises_then_falls_to_its_final_value():
    from seq2seq.optimization import scheduled_learning_rate

    def rate(step, shape):
        return scheduled_learning_rate(step, total_steps=110, peak=1e-3, final=1e-5, warmup_steps=10, shape=shape)

    for shape in ("cosine", "linear"):
        assert [rate(s, shape) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])
        assert rate(10, shape) == pytest.approx(1e-3) and rate(110, shape) == rate(500, shape) == pytest.approx(1e-5)
        falling = [rate(s, shape) for s in range(10, 111)]
        assert all(a >= b for a, b in zip(falling, falling[1:]))
    assert rate(60, "linear") == pytest.approx((1e-3 + 1e-5) / 2)
    assert rate(60, "cosine") == pytest.approx((1e-3 + 1e-5) / 2)  # halfway, cos(pi/2) = 0
    assert rate(35, "cosine") > rate(35, "linear")  # cosine stays high longer


def test_a_cosine_run_ends_at_its_final_rate_and_plateau_keeps_todays_rates(tmp_path, corpus):
    cosine = _run(tmp_path / "cos", corpus, epochs=3, learning_rate=3e-3, lr_schedule="cosine", lr_warmup_steps=5,
                  lr_min=1e-5)
    rates = [row["learning_rate"] for row in cosine.history]
    assert rates[0] == pytest.approx(3e-3 / 5) and rates[1] > rates[2] > 1e-5  # each epoch's first batch
    plateau = _run(tmp_path / "plateau", corpus, epochs=3, learning_rate=3e-3)
    assert [row["learning_rate"] for row in plateau.history][0] == 3e-3
