"""Each stage's typed settings, and the part of a pipeline config each stage reads.

The settings classes (:class:`PrepareSettings`, :class:`TrainConfig`, ...) take their field defaults from the
config schema (:mod:`seq2seq.schema`) and check themselves against it when built, so the pipeline, a stage run
by hand and a test all get the same settings from the same words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Mapping

from .schema import ConfigError, check, deep_merge, fill_defaults, schema_default, subschema


class Section:
    """Base of the settings classes: built from a plain dict (unknown keys are an error) and checked against
    the schema of their config section ``SECTION`` when built, so every way of making one is validated once,
    with one message style."""

    SECTION: ClassVar[str]

    def __post_init__(self) -> None:
        check(asdict(self), self.SECTION)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"config: {cls.SECTION}: unknown keys {unknown}; expected some of {sorted(names)}")
        return cls(**data)


@dataclass
class PrepareSettings(Section):
    """Settings of the prepare stage: the columns of one corpus and the ``prepare`` section."""

    SECTION = "prepare"

    source_column: int = schema_default("corpora.*.source_column")
    target_column: int = schema_default("corpora.*.target_column")
    normalization: str = schema_default("prepare.normalization")
    max_words: int = schema_default("prepare.filter.max_words")
    target_prefixes: str | list[str] | None = schema_default("prepare.filter.target_prefixes")
    valid_fraction: float = schema_default("prepare.split.valid")
    test_fraction: float = schema_default("prepare.split.test")
    seed: int = schema_default("prepare.split.seed")
    max_malformed_fraction: float = schema_default("prepare.max_malformed_fraction")
    max_line_chars: int = schema_default("prepare.max_line_chars")

    def __post_init__(self) -> None:
        check({"normalization": self.normalization, "max_malformed_fraction": self.max_malformed_fraction,
                "max_line_chars": self.max_line_chars,
                "filter": {"max_words": self.max_words, "target_prefixes": self.target_prefixes},
                "split": {"valid": self.valid_fraction, "test": self.test_fraction, "seed": self.seed}}, "prepare")
        for name in ("source_column", "target_column"):
            check(getattr(self, name), f"corpora.*.{name}")
        if self.source_column == self.target_column:
            raise ConfigError(f"config: corpora: source_column and target_column are both {self.source_column}")
        # Training needs validation pairs (early stopping) and evaluation test pairs: neither may be empty.
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError(f"config: prepare.split: valid ({self.valid_fraction}) and test ({self.test_fraction})"
                              f" must sum to less than 1, to leave pairs for training")


@dataclass
class VocabSettings(Section):
    """The ``vocab`` section: the vocabulary stage's settings."""

    SECTION = "vocab"

    type: str = schema_default("vocab.type")  # word | sentencepiece
    size: int = schema_default("vocab.size")
    model_type: str = schema_default("vocab.model_type")  # unigram | bpe
    min_freq: int = schema_default("vocab.min_freq")


@dataclass
class TrainConfig(Section):
    """The ``training`` section of the pipeline config (with a model's own overrides merged in)."""

    SECTION = "training"

    epochs: int = schema_default("training.epochs")
    batch_size: int = schema_default("training.batch_size")
    batch_tokens: int | None = schema_default("training.batch_tokens")
    device: str = schema_default("training.device")  # auto | cpu | cuda[:N] | mps
    optimizer: str = schema_default("training.optimizer")  # adam | sgd
    learning_rate: float = schema_default("training.learning_rate")
    weight_decay: float = schema_default("training.weight_decay")
    clip_grad: float = schema_default("training.clip_grad")
    teacher_forcing: float = schema_default("training.teacher_forcing")
    label_smoothing: float = schema_default("training.label_smoothing")
    lr_schedule: str = schema_default("training.lr_schedule")  # plateau | cosine | linear
    lr_factor: float = schema_default("training.lr_factor")
    lr_patience: int = schema_default("training.lr_patience")
    lr_warmup_steps: int = schema_default("training.lr_warmup_steps")
    lr_min: float = schema_default("training.lr_min")
    early_stopping: dict = field(default_factory=lambda: schema_default("training.early_stopping"))
    max_minutes: float | None = schema_default("training.max_minutes")
    amp: bool | str = schema_default("training.amp")  # True | False | "auto"
    seed: int = schema_default("training.seed")
    average: dict = field(default_factory=lambda: schema_default("training.average"))
    tensorboard: bool = schema_default("training.tensorboard")

    def __post_init__(self) -> None:
        for name in ("early_stopping", "average"):
            setattr(self, name, fill_defaults(dict(getattr(self, name)), subschema(f"training.{name}")))
        super().__post_init__()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DownloadSettings(Section):
    """Where one corpus comes from (its ``corpora`` entry) and the ``download`` section."""

    SECTION = "download"

    url: str
    member: str | None = schema_default("corpora.*.member")
    sha256: str | None = schema_default("corpora.*.sha256")
    retries: int = schema_default("download.retries")
    timeout: float = schema_default("download.timeout")
    # the prepare stage's limits, applied while the file is copied: a file that prepare would refuse for its
    # long lines is refused before a copy of it is written (and before prepare reads such a line whole)
    max_line_chars: int = schema_default("prepare.max_line_chars")
    max_malformed_fraction: float = schema_default("prepare.max_malformed_fraction")

    def __post_init__(self) -> None:
        check({"url": self.url, "member": self.member, "sha256": self.sha256}, "corpora.*", "corpora")
        check({"retries": self.retries, "timeout": self.timeout}, "download")
        check({"max_line_chars": self.max_line_chars, "max_malformed_fraction": self.max_malformed_fraction},
               "prepare")


@dataclass
class EvaluationSettings(Section):
    """The ``evaluation`` section."""

    SECTION = "evaluation"

    beam_size: int = schema_default("evaluation.beam_size")
    length_penalty: float = schema_default("evaluation.length_penalty")
    max_length: int = schema_default("evaluation.max_length")
    batch_size: int = schema_default("evaluation.batch_size")
    bootstrap_resamples: int = schema_default("evaluation.bootstrap_resamples")
    seed: int = schema_default("evaluation.seed")
    min_interval_sentences: int = schema_default("evaluation.min_interval_sentences")


@dataclass
class FigureSettings(Section):
    """The ``figures`` section."""

    SECTION = "figures"

    count: int = schema_default("figures.count")
    sentences: list[str] = field(default_factory=lambda: schema_default("figures.sentences"))
    format: str = schema_default("figures.format")
    grid_columns: int = schema_default("figures.grid_columns")
    seed: int = schema_default("figures.seed")
    max_length: int = schema_default("figures.max_length")
    word_level: bool = schema_default("figures.word_level")


# --------------------------------------------------------------------------------------------- from a pipeline config

def download_settings(config: Mapping[str, Any], pair: str) -> DownloadSettings:
    corpus, prepare = config["corpora"][pair], config["prepare"]
    return DownloadSettings(url=corpus["url"], member=corpus["member"], sha256=corpus["sha256"],
                            retries=config["download"]["retries"], timeout=config["download"]["timeout"],
                            max_line_chars=prepare["max_line_chars"],
                            max_malformed_fraction=prepare["max_malformed_fraction"])


# Settings that decide how a stage runs but not what it writes: not in a rule's params, so that changing one
# reruns nothing (the stage reads them from the config). Resources (threads, memory, GPUs) are not params either.
RUN_ONLY_SETTINGS = {"download": ("retries", "timeout")}


def vocab_settings(config: Mapping[str, Any]) -> dict:
    """The keys of the ``vocab`` section that its ``type`` reads (word: ``min_freq``; sentencepiece: ``size``
    and ``model_type``): the vocab rule's params, so that a change to a key the type ignores reruns nothing."""
    vocab = config["vocab"]
    keys = ("type", "size", "model_type") if vocab["type"] == "sentencepiece" else ("type", "min_freq")
    return {key: vocab[key] for key in keys}


def prepare_settings(config: Mapping[str, Any], pair: str) -> PrepareSettings:
    corpus, prepare = config["corpora"][pair], config["prepare"]
    if corpus["source_column"] == corpus["target_column"]:  # here, where the corpus is known
        raise ConfigError(f"config: corpora.{pair}: source_column and target_column are both {corpus['source_column']}")
    return PrepareSettings(
        source_column=corpus["source_column"], target_column=corpus["target_column"],
        normalization=prepare["normalization"], max_words=prepare["filter"]["max_words"],
        target_prefixes=prepare["filter"]["target_prefixes"], valid_fraction=prepare["split"]["valid"],
        test_fraction=prepare["split"]["test"], seed=prepare["split"]["seed"],
        max_malformed_fraction=prepare["max_malformed_fraction"], max_line_chars=prepare["max_line_chars"])


def source_positions(max_words: int) -> int:
    """The GRU models' ``max_length`` (the tutorial attention's source positions) for the sentences the prepare
    stage keeps with ``prepare.filter.max_words``: fewer than ``max_words`` words, plus ``<eos>``."""
    return max_words + 1


def training_settings(config: Mapping[str, Any], model: str) -> dict:
    """The training section with this model's own overrides (only the keys it sets) merged in."""
    return deep_merge(config["training"], config["models"][model].get("training") or {})
