"""The model-family door: the registries agree with the config schema, a family defined here (not in the package)
trains with the real training loop, decodes with greedy and beam search and joins an ensemble without any edit of
training, search or ensembles; the model configs and the pipeline's start-up import no torch, and every package
module imports on its own (no import cycle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from helpers import REPO, model_config, tiny_pairs
from seq2seq import models
from seq2seq.attention import ATTENTIONS
from seq2seq.checkpoint import cpu_state, load_checkpoint, load_model, save_model
from seq2seq.corpus import normalize, write_split
from seq2seq.ensemble import Ensemble, load_system
from seq2seq.evaluation import evaluate_model
from seq2seq.metadata import Metadata
from seq2seq.models.base import Model
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.schema import schema_choices, schema_default
from seq2seq.search import beam_search, decode_in_batches, greedy
from seq2seq.settings import EvaluationSettings, TrainConfig
from seq2seq.tokens import PAD_INDEX, SOS_INDEX
from seq2seq.training import TrainingData, TrainingFiles, train_model
from seq2seq.translate import translate_sentences
from seq2seq.vocab import WordVocabulary

PACKAGE = REPO / "workflow" / "seq2seq"


# --------------------------------------------------------------------------------------------- registries

def test_the_attention_registry_is_the_schemas_attention_enum():
    """A variant registered but not in the schema could never be configured; one in the schema but not registered
    would pass the config check and fail in the train job."""
    assert list(ATTENTIONS) == schema_choices("models.*.attention")
    assert all(cls.name == name for name, cls in ATTENTIONS.items())


def test_the_families_are_the_schemas_family_enum():
    assert list(models.FAMILIES) == schema_choices("models.*.family")
    assert models.DEFAULT_FAMILY == schema_default("models.*.family")
    assert all(config.family == name for name, config in models.FAMILIES.items())
    with pytest.raises(ValueError, match=r"unknown model family 'transformer'; expected one of \['gru'\]"):
        models.config_from_dict({"family": "transformer", "source_vocab_size": 5, "target_vocab_size": 7})


# --------------------------------------------------------------------------------------------- a stand-in family

SELECTS: list[str] = []  # which of the stand-in's batch objects search and ensembles asked to pick rows


@dataclass
class BagEncoding:
    """The source as a bag of words: mask [B,S] (True on real tokens), summary [B,H] (their mean embedding)."""

    mask: Tensor
    summary: Tensor

    def select(self, index: Tensor) -> "BagEncoding":
        SELECTS.append("encoding")
        return BagEncoding(self.mask.index_select(0, index), self.summary.index_select(0, index))


@dataclass
class BagState:
    """hidden [B,H]: the decoder cell's state (not [L,B,H] as a GRU's: search must not assume a shape)."""

    hidden: Tensor

    def select(self, index: Tensor) -> "BagState":
        SELECTS.append("state")
        return BagState(self.hidden.index_select(0, index))


@dataclass
class BagConfig:
    """The stand-in family's config, as a family module would define it: plain data, ``family``, ``from_dict``
    and ``build``."""

    family: ClassVar[str] = "bag"

    source_vocab_size: int
    target_vocab_size: int
    hidden_size: int = 24

    @classmethod
    def from_dict(cls, data) -> "BagConfig":
        return cls(**data)

    def build(self) -> "BagOfWords":
        return BagOfWords(self)


class BagOfWords(Model):
    """No attention, no recurrent encoder: the mean of the source embeddings feeds a GRU cell at every step. It
    "looks" at every real source token alike (uniform weights, 0 on padding)."""

    def __init__(self, config: BagConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.source = nn.Embedding(config.source_vocab_size, hidden, padding_idx=PAD_INDEX)
        self.target = nn.Embedding(config.target_vocab_size, hidden, padding_idx=PAD_INDEX)
        self.cell = nn.GRUCell(2 * hidden, hidden)
        self.out = nn.Linear(hidden, config.target_vocab_size)

    def encode(self, src: Tensor, src_lengths: Tensor) -> BagEncoding:
        lengths = src_lengths.to(src.device)
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < lengths.unsqueeze(1)
        summary = (self.source(src) * mask.unsqueeze(2)).sum(1) / lengths.unsqueeze(1)
        return BagEncoding(mask, summary)

    def init_state(self, encoding: BagEncoding) -> BagState:
        return BagState(torch.tanh(encoding.summary))

    def _step(self, prev_tokens: Tensor, state: BagState, encoding: BagEncoding) -> tuple[Tensor, BagState, Tensor]:
        hidden = self.cell(torch.cat([self.target(prev_tokens), encoding.summary], dim=1), state.hidden)
        weights = encoding.mask.float() / encoding.mask.float().sum(1, keepdim=True)
        return self.out(hidden), BagState(hidden), weights

    def decode_step(self, prev_tokens: Tensor, state: BagState, encoding: BagEncoding
                    ) -> tuple[Tensor, BagState, Tensor]:
        logits, state, weights = self._step(prev_tokens, state, encoding)
        return F.log_softmax(logits.float(), dim=-1), state, weights

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
                ) -> tuple[Tensor, Tensor]:
        encoding = self.encode(src, src_lengths)
        state = self.init_state(encoding)
        logits_steps, weights_steps = [], []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            logits, state, weights = self._step(prev, state, encoding)
            logits_steps.append(logits)
            weights_steps.append(weights)
            if t + 1 < tgt_in.size(1):
                use_reference = torch.rand((), device=tgt_in.device) < teacher_forcing
                prev = torch.where(use_reference, tgt_in[:, t + 1], logits.detach().argmax(dim=-1))
        return torch.stack(logits_steps, 1), torch.stack(weights_steps, 1)


@pytest.fixture
def bag_family(monkeypatch):
    """The stand-in registered as family "bag" for the test (one line in FAMILIES, as a new family adds)."""
    monkeypatch.setitem(models.FAMILIES, "bag", BagConfig)
    SELECTS.clear()
    return BagConfig


@pytest.fixture(scope="module")
def data() -> TrainingData:
    pairs = [(normalize(fr), normalize(en)) for en, fr in tiny_pairs()]
    train, valid = [p for i, p in enumerate(pairs) if i % 6], pairs[::6]
    return TrainingData(train, valid, WordVocabulary.build(s for s, _ in train),
                        WordVocabulary.build(t for _, t in train))


def _train(folder: Path, data: TrainingData, architecture, epochs: int = 3):
    folder.mkdir(parents=True, exist_ok=True)
    training = TrainConfig(epochs=epochs, batch_size=16, learning_rate=0.01, device="cpu", seed=3)
    files = TrainingFiles(folder / "model.pt", folder / "last.pt", folder / "history.tsv", folder / "resume.pt")
    return train_model(data, architecture, training, files, Metadata(pair="fra-eng", model_name=architecture.family),
                       threads=1)


def _sources(data: TrainingData) -> list[list[int]]:
    return [data.source_vocab.encode(source) for source, _ in data.valid_pairs]


@torch.no_grad()
def _log_prob(model, source: list[int], tokens: list[int]) -> float:
    """log p(tokens | source) step by step through decode_step (the model's own scores, written out)."""
    encoding = model.encode(torch.tensor([source]), torch.tensor([len(source)]))
    state, prev, total = model.init_state(encoding), torch.tensor([SOS_INDEX]), 0.0
    for token in tokens:
        log_probs, state, _ = model.decode_step(prev, state, encoding)
        total += float(log_probs[0, token])
        prev = torch.tensor([token])
    return total


def test_a_family_from_outside_the_package_trains_with_the_real_loop(bag_family, data, tmp_path):
    config = BagConfig(len(data.source_vocab), len(data.target_vocab))
    result = _train(tmp_path / "bag", data, config)
    assert (result.epochs, result.stop_reason) == (3, "epochs")
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]  # it learns
    stored = load_checkpoint(tmp_path / "bag" / "model.pt")
    assert stored["model_config"] == {"family": "bag", **vars(config)}
    model, source_vocab, target_vocab, metadata = load_model(tmp_path / "bag" / "model.pt")
    assert isinstance(model, BagOfWords) and model.config == config and not model.training
    assert metadata.epoch == result.best_epoch and model.label == "bag"
    assert source_vocab.fingerprint() == data.source_vocab.fingerprint()


def test_the_stand_in_decodes_with_greedy_and_beam_search(bag_family, data, tmp_path):
    _train(tmp_path / "bag", data, BagConfig(len(data.source_vocab), len(data.target_vocab)), epochs=2)
    model, _, target_vocab, _ = load_model(tmp_path / "bag" / "model.pt")
    sources = _sources(data)
    found = decode_in_batches(model, sources, max_len=12, batch_size=8)
    beam_one = decode_in_batches(model, sources, max_len=12, batch_size=8, beam_size=1, alpha=0.6)
    beam = decode_in_batches(model, sources, max_len=12, batch_size=8, beam_size=3, alpha=0.0)
    assert {"encoding", "state"} <= set(SELECTS)  # search picked rows through the family's own select()
    assert beam_one.tokens == found.tokens
    for source, tokens, score, weights in zip(sources, found.tokens, found.scores, found.attention):
        assert score == pytest.approx(_log_prob(model, source, tokens), abs=1e-4)
        assert weights.shape == (len(tokens), len(source))
        assert torch.allclose(weights.sum(1), torch.ones(len(tokens)))
    for source, tokens, score in zip(sources, beam.tokens, beam.scores):
        assert score == pytest.approx(_log_prob(model, source, tokens), abs=1e-4)
    # the batched searches on a padded batch give each sentence's own result (padding never leaks in)
    src = torch.zeros(2, 6, dtype=torch.long)
    src[0, :4], src[1, :2] = torch.tensor(sources[0][:4]), torch.tensor(sources[1][:2])
    together = greedy(model, src, torch.tensor([4, 2]), max_len=8).tokens
    assert together[1] == greedy(model, src[1:, :2], torch.tensor([2]), max_len=8).tokens[0]
    assert beam_search(model, src, torch.tensor([4, 2]), 2, 0.0, 8).tokens[1] == \
        beam_search(model, src[1:, :2], torch.tensor([2]), 2, 0.0, 8).tokens[0]
    [translation] = translate_sentences(model, ["Je suis grand."], data.source_vocab, target_vocab, "ascii",
                                        max_len=12, batch_size=4, beam_size=2, alpha=0.6)
    [ids] = decode_in_batches(model, [data.source_vocab.encode("je suis grand .")], max_len=12, batch_size=4,
                              beam_size=2, alpha=0.6).tokens
    assert translation.output_tokens == target_vocab.labels(ids) and translation.text == target_vocab.decode(ids)


def test_the_stand_in_joins_an_ensemble_with_a_gru_model(bag_family, data, tmp_path):
    """Members of two families decode as one system: the mean of their log-probabilities at every step, each
    member's state and encoding its own (picked by its own select())."""
    _train(tmp_path / "bag", data, BagConfig(len(data.source_vocab), len(data.target_vocab)), epochs=2)
    torch.manual_seed(0)
    gru = GRUSeq2Seq(model_config(len(data.source_vocab), len(data.target_vocab), "luong", layers=2)).eval()
    save_model(tmp_path / "gru.pt", gru.config, cpu_state(gru), data.source_vocab, data.target_vocab,
               Metadata(pair="fra-eng", model_name="gru", parameters=11))
    system, _, target_vocab, metadata = load_system([tmp_path / "bag" / "model.pt", tmp_path / "gru.pt"])
    assert isinstance(system, Ensemble) and system.label == "ensemble"
    bag = system.members[0]
    assert isinstance(bag, BagOfWords) and metadata.parameters == sum(p.numel() for p in bag.parameters()) + 11
    sources = _sources(data)
    src, lengths = torch.tensor([sources[0]]), torch.tensor([len(sources[0])])
    encoding = system.encode(src, lengths)
    log_probs, _, attention = system.decode_step(torch.tensor([SOS_INDEX]), system.init_state(encoding), encoding)
    alone = [m.decode_step(torch.tensor([SOS_INDEX]), m.init_state(m.encode(src, lengths)), m.encode(src, lengths))
             for m in (bag, gru)]
    assert torch.allclose(log_probs, (alone[0][0] + alone[1][0]) / 2, atol=1e-6)
    assert torch.allclose(attention, (alone[0][2] + alone[1][2]) / 2, atol=1e-6)
    for beam_size in (1, 3):
        found = decode_in_batches(system, sources, max_len=12, batch_size=8, beam_size=beam_size)
        for source, tokens, score in zip(sources, found.tokens, found.scores):
            assert score == pytest.approx(_log_prob(system, source, tokens), abs=1e-4)
    assert {"encoding", "state"} <= set(SELECTS)


def test_the_evaluate_stage_runs_the_stand_in_alone_and_in_an_ensemble(bag_family, data, tmp_path):
    _train(tmp_path / "bag", data, BagConfig(len(data.source_vocab), len(data.target_vocab)), epochs=1)
    write_split(tmp_path / "test.tsv", list(data.valid_pairs))
    settings = EvaluationSettings(beam_size=2, bootstrap_resamples=20, batch_size=8, min_interval_sentences=10)
    out = tmp_path / "eval"
    metrics = evaluate_model([tmp_path / "bag" / "model.pt"], tmp_path / "test.tsv", out / "translations.tsv",
                             out / "metrics.json", out / "attention.json.gz", settings, threads=1, device="cpu")
    assert metrics["attention"] == "bag" and metrics["greedy"]["sentences"] == len(data.valid_pairs)
    both = evaluate_model([tmp_path / "bag" / "model.pt"] * 2, tmp_path / "test.tsv", out / "t2.tsv",
                          out / "m2.json", out / "a2.json.gz", settings, threads=1, device="cpu")
    assert both["attention"] == "ensemble" and both["greedy"]["bleu"] == pytest.approx(metrics["greedy"]["bleu"])


# --------------------------------------------------------------------------------------------- import boundaries

def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (the package from this checkout)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO / "workflow")}, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_building_a_model_needs_neither_the_config_checks_nor_the_corpus_code():
    """seq2seq-translate and the evaluate stage rebuild a model from its checkpoint's config: that path stays
    free of the schema engine (jsonschema), the settings and the corpus code."""
    loaded = _modules_after("import seq2seq.models\n"
                            "config = seq2seq.models.config_from_dict({'attention': 'tutorial', 'max_length': 11, "
                            "'source_vocab_size': 5, 'target_vocab_size': 7})\n"
                            "seq2seq.models.build_model(config)")
    assert "torch" in loaded and "seq2seq.models.gru" in loaded  # it did build the model
    assert not {"jsonschema", "seq2seq.settings", "seq2seq.schema", "seq2seq.corpus", "seq2seq.runs"} & loaded


@pytest.mark.parametrize("code", [
    "import seq2seq.models",
    "import seq2seq.models; seq2seq.models.config_from_dict({'attention': 'luong', 'source_vocab_size': 5, "
    "'target_vocab_size': 7})",
    "import seq2seq.stages",
    # what the Snakefile and workflow/rules/common.smk import while the workflow is read
    "import seq2seq.schema, seq2seq.settings, seq2seq.runs, seq2seq.stages, seq2seq.download, "
    "seq2seq.pipeline.invocation, seq2seq.pipeline.dependencies, seq2seq.pipeline.runlock",
], ids=["models", "model-config", "stages", "pipeline-start-up"])
def test_configs_and_the_pipelines_start_up_import_no_torch(code):
    loaded = _modules_after(code)
    assert "torch" not in loaded, sorted(m for m in loaded if m.startswith("seq2seq"))


def test_an_installed_package_holds_every_sub_package():
    """pip install (not editable) copies the packages pyproject.toml lists: seq2seq-translate needs
    seq2seq.models, the pipeline seq2seq.pipeline."""
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {".".join(path.parent.relative_to(PACKAGE.parent).parts) for path in PACKAGE.rglob("__init__.py")}
    assert {"seq2seq.models", "seq2seq.pipeline"} <= found
    assert set(setuptools["packages"]) == found


def _package_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts != ["__main__"]:  # runs the command line
            names.append(".".join(["seq2seq", *parts]))
    return names


def test_every_package_module_imports_on_its_own():
    """No import cycle: each module imported first, into an interpreter that holds none of the package (a
    cycle shows as an ImportError or AttributeError of a half-initialized module, for some import orders only)."""
    names = _package_modules()
    assert {"seq2seq.models.gru", "seq2seq.attention", "seq2seq.pipeline.jobs", "seq2seq.training"} <= set(names)
    script = f"""
import importlib, sys, traceback
failed = []
for name in {names!r}:
    for loaded in [m for m in sys.modules if m == "seq2seq" or m.startswith("seq2seq.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(REPO / "workflow")}, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout
