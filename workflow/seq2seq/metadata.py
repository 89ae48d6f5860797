"""What made a model, stored in its checkpoint (plain data: no torch, so that the pipeline's start-up can name it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class Metadata:
    """What made a model, for its readers: the pair, the config's model name and normalization, the epoch the
    weights are from (with the history up to it), the training settings, and the longest training source in
    words (seq2seq-translate warns about longer inputs)."""

    pair: str | None = None
    model_name: str | None = None
    normalization: str = "ascii"
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    longest_source_words: int | None = None
    parameters: int | None = None  # trainable parameters
    averaged_epochs: list[int] = field(default_factory=list)  # epochs whose weights were averaged, if any

    @classmethod
    def from_dict(cls, data: dict) -> "Metadata":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
