"""The checkpoint format: a model round-trips; missing, damaged, foreign, other-release and inconsistent files are
refused with one line naming the file (the training-state side, resuming, is in test_training*.py)."""

from __future__ import annotations

import pytest
import torch

from helpers import save_tiny_checkpoint, tiny_trained_model
from seq2seq.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, Metadata, cpu_state, load_checkpoint, load_model,
                                save_checkpoint, save_model, state_digest)
from seq2seq.vocab import WordVocabulary


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model.pt of the shared tiny model, as the train stage writes it."""
    path, _ = save_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint") / "model.pt")
    return path


def resave(source, path, **changes):
    """``source``'s payload with ``changes``, written again with a valid digest (as a release would write it)."""
    payload = torch.load(source, weights_only=True)
    payload.update(changes)
    save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format", "sha256", "weights_sha256")})
    return path


def test_a_model_round_trips_with_its_vocabularies_and_metadata(saved):
    model, source_vocab, target_vocab, _ = tiny_trained_model()
    loaded, source, target, metadata = load_model(saved)
    assert not loaded.training and loaded.config == model.config
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert source.to_dict() == source_vocab.to_dict() and target.to_dict() == target_vocab.to_dict()
    assert (metadata.pair, metadata.model_name, metadata.epoch) == ("fra-eng", "bahdanau", 3)
    assert torch.load(saved, weights_only=True)["format"] == CHECKPOINT_FORMAT


def test_reading_never_unpickles_code(saved, monkeypatch):
    """Every read goes through torch.load(weights_only=True): a checkpoint is data, not a program."""
    calls = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or load(*a, **k))
    load_model(saved)
    assert calls == [True]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "truncated"])
def test_corrupt_or_missing_checkpoint_names_the_file(saved, tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(saved.read_bytes()[:1000] if content == "truncated" else content)
    says = "a damaged or truncated checkpoint" if content == "truncated" else "not a checkpoint"
    with pytest.raises(CheckpointError, match=f"broken.pt: {says}"):
        load_model(path)
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint file not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("version", [1, 2, CHECKPOINT_FORMAT + 1])
def test_a_checkpoint_of_another_format_version_is_refused_in_one_line_naming_the_file(saved, tmp_path, version):
    """Older releases' files (whose digest and vocabularies this release does not read) and newer ones alike:
    refused before anything is built from them, whatever else they hold."""
    payload = torch.load(saved, weights_only=True)
    payload["format"] = version
    payload["weights_sha256"] = state_digest(payload["model_state"])  # what formats 2 and 3 carried
    path = tmp_path / f"format{version}.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"{path}: checkpoint format {version} of another release") and "\n" not in message


@pytest.mark.parametrize("side", ["source_vocab", "target_vocab"])
@pytest.mark.parametrize("change", [+1, -1])
def test_a_vocabulary_of_another_size_than_the_model_is_refused_naming_the_file(saved, tmp_path, side, change):
    """A vocabulary that does not fit the embedding or output layer would map ids to the wrong words (or past the
    end): the file is refused, not translated with."""
    tokens = torch.load(saved, weights_only=True)[side]["tokens"]
    tokens = [*tokens, "zzz-extra"] if change > 0 else tokens[:-1]
    vocabulary = WordVocabulary(["<pad>", "<sos>", "<eos>", "<unk>", *tokens])
    path = resave(saved, tmp_path / "mismatch.pt", **{side: vocabulary.to_dict()})
    with pytest.raises(CheckpointError, match=rf"^{path}: vocabulary sizes do not match the model config$"):
        load_model(path)


def test_weights_of_another_model_config_are_refused_naming_the_file(saved, tmp_path):
    payload = torch.load(saved, weights_only=True)
    path = resave(saved, tmp_path / "wider.pt", model_config={**payload["model_config"], "hidden_size": 48})
    with pytest.raises(CheckpointError, match=rf"^{path}: incompatible checkpoint \("):
        load_model(path)


def test_save_model_writes_what_load_model_reads_for_any_metadata(tmp_path):
    model, source_vocab, target_vocab, _ = tiny_trained_model()
    metadata = Metadata(pair="deu-eng", model_name="x", normalization="unicode", epoch=7, parameters=5,
                        history=[{"epoch": 1}], averaged_epochs=[6, 7])
    save_model(tmp_path / "m.pt", model.config, cpu_state(model), source_vocab, target_vocab, metadata)
    assert load_model(tmp_path / "m.pt")[3] == metadata
