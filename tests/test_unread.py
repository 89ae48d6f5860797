"""Settings a run does not read are set to their defaults in the train rule's params (seq2seq.pipeline.unread):
changing them leaves the params alone, changing a read one does not, and every key called unread really is
(a short training with it changed gives the same weights). The workflow side, a finished run planning nothing,
is in test_workflow_reruns.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import tiny_pairs
from seq2seq.metadata import Metadata
from seq2seq.pipeline import unread
from seq2seq.runs import model_config
from seq2seq.schema import deep_merge, schema_default
from seq2seq.settings import TrainConfig
from seq2seq.training import TrainingData, TrainingFiles, train_model
from seq2seq.vocab import WordVocabulary

# A value other than the schema's default for each key that some run leaves unread.
OTHER_VALUES = {"lr_factor": 0.2, "lr_patience": 0, "lr_warmup_steps": 5, "lr_min": 1e-3, "batch_size": 5,
                "average.select": "last", "luong_score": "dot"}
# Runs of each kind that leaves keys unread: a plateau and a cosine schedule, token batches, one averaged epoch.
TRAININGS = {
    "plateau": {"lr_schedule": "plateau"},
    "cosine": {"lr_schedule": "cosine", "lr_warmup_steps": 3},
    "linear-tokens-average1": {"lr_schedule": "linear", "batch_tokens": 60, "average": {"epochs": 1}},
}
SMALL = {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu", "seed": 3}


def full(training: dict) -> dict:
    """Training settings with every key, as the pipeline's config has them (schema defaults filled in)."""
    return TrainConfig.from_dict(deep_merge(SMALL, training)).to_dict()


def changed(settings: dict, keys: list[str]) -> dict:
    """``settings`` with each dotted key in ``keys`` set to its value in :data:`OTHER_VALUES`."""
    result = deep_merge(settings, {})
    for key in keys:
        *parents, last = key.split(".")
        target = result
        for parent in parents:
            target = target[parent]
        target[last] = OTHER_VALUES[key]
    return result


@pytest.mark.parametrize("schedule,unread_keys,read_keys", [
    ("plateau", ["lr_warmup_steps", "lr_min"], ["lr_factor", "lr_patience"]),
    ("cosine", ["lr_factor", "lr_patience"], ["lr_warmup_steps", "lr_min"]),
    ("linear", ["lr_factor", "lr_patience"], ["lr_warmup_steps", "lr_min"]),
])
def test_a_schedules_settings_move_the_params_under_it_only(schedule, unread_keys, read_keys) -> None:
    settings = full({"lr_schedule": schedule})
    assert unread.training_params(changed(settings, unread_keys)) == unread.training_params(settings)
    for key in read_keys:
        assert unread.training_params(changed(settings, [key])) != unread.training_params(settings), key


def test_batch_size_under_token_batches_and_the_selection_of_one_averaged_epoch_are_unread() -> None:
    tokens = full({"batch_tokens": 60})
    assert unread.training_params(changed(tokens, ["batch_size"])) == unread.training_params(tokens)
    pairs = full({})
    assert unread.training_params(changed(pairs, ["batch_size"])) != unread.training_params(pairs)
    for epochs in (0, 1):
        one = full({"average": {"epochs": epochs}})
        assert unread.training_params(changed(one, ["average.select"])) == unread.training_params(one)
    averaged = full({"average": {"epochs": 3}})
    assert unread.training_params(changed(averaged, ["average.select"])) != unread.training_params(averaged)


def test_the_unread_keys_go_to_the_schemas_defaults_and_the_read_ones_stay() -> None:
    settings = changed(full({"lr_schedule": "cosine", "lr_warmup_steps": 3}), ["lr_factor", "lr_patience"])
    params = unread.training_params(settings)
    assert params["lr_factor"] == schema_default("training.lr_factor") != settings["lr_factor"]
    assert params["lr_patience"] == schema_default("training.lr_patience") != settings["lr_patience"]
    assert {k: v for k, v in params.items() if k not in ("lr_factor", "lr_patience")} == {
        k: v for k, v in settings.items() if k not in ("lr_factor", "lr_patience")}
    assert settings["lr_factor"] == OTHER_VALUES["lr_factor"]  # the caller's settings are not changed


def test_luong_score_moves_the_params_of_a_luong_model_only() -> None:
    for attention in ("bahdanau", "tutorial", "none"):
        entry = {"attention": attention, "luong_score": "general", "hidden_size": 16}
        assert unread.model_params({**entry, "luong_score": "dot"}) == unread.model_params(entry), attention
    luong = {"attention": "luong", "luong_score": "general", "hidden_size": 16}
    assert unread.model_params({**luong, "luong_score": "dot"}) != unread.model_params(luong)


# ---------------------------------------------------------------------------------------------- really unread

def _corpus():
    """The tests' tiny French-English pairs: 120 to train on, 24 to validate, and their word vocabularies."""
    pairs = [(french, english) for english, french in tiny_pairs()]
    train, valid = pairs[:120], pairs[120:]
    return train, valid, WordVocabulary.build(s for s, _ in train), WordVocabulary.build(t for _, t in train)


def _weights(folder: Path, training: dict, model: dict) -> dict[str, torch.Tensor]:
    """The weights of a short training with these raw settings (nothing set to defaults), as the train stage
    builds its model and training config from its params."""
    train, valid, source, target = _corpus()
    architecture = model_config(model, len(source), len(target))
    files = TrainingFiles(folder / "model.pt", folder / "last.pt", folder / "history.tsv", folder / "resume.pt")
    train_model(TrainingData(train, valid, source, target), architecture, TrainConfig.from_dict(training), files,
                Metadata(pair="fra-eng", model_name="m", normalization="ascii"), threads=1)
    return torch.load(folder / "model.pt", weights_only=True)["model_state"]


@pytest.mark.parametrize("name", TRAININGS)
def test_every_key_called_unread_leaves_the_trained_weights_unchanged(tmp_path, name) -> None:
    """Training with every key the params call unread changed, straight from the settings (not through the
    params), gives the very weights of the run without the change: the params hide nothing a run reads."""
    training = full(TRAININGS[name])
    model = {"attention": "bahdanau", "hidden_size": 16, "dropout": 0.1}
    keys = unread.unread_training_keys(training)
    model_keys = unread.unread_model_keys(model)
    assert set(keys) | set(model_keys) <= set(OTHER_VALUES), "give each unread key another value to train with"
    base = _weights(tmp_path / "base", training, model)
    other = _weights(tmp_path / "other", changed(training, keys), changed(model, model_keys))
    assert keys and base.keys() == other.keys()
    assert all(torch.equal(base[k], other[k]) for k in base), f"{name}: {keys + model_keys} changed the weights"


def test_no_stage_imports_the_module_so_editing_it_reruns_nothing() -> None:
    from test_dependencies import stage_sources

    from seq2seq.stages import STAGES

    assert all("pipeline/unread.py" not in stage_sources(stage) for stage in STAGES)
