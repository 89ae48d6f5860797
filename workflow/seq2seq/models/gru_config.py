"""The GRU family's config: plain data, no torch (the pipeline checks configs with it before any job runs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

if TYPE_CHECKING:
    from .gru import GRUSeq2Seq


@dataclass
class GRUConfig:
    """Everything needed to rebuild a :class:`seq2seq.models.gru.GRUSeq2Seq` (stored in checkpoints): the
    vocabulary sizes and one entry of the config's ``models`` section. The defaults are the config schema's (a
    test checks that they agree); the schema checks the types and ranges of a pipeline's config, this class
    what ties keys together."""

    family: ClassVar[str] = "gru"

    source_vocab_size: int
    target_vocab_size: int
    attention: str  # a name in seq2seq.attention.ATTENTIONS
    hidden_size: int = 256
    embedding_size: int | None = None  # None -> hidden_size
    layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    luong_score: str = "general"
    max_length: int | None = None  # source positions (tokens incl. <eos>) of the "tutorial" attention
    tie_embeddings: bool = True  # decoder embedding = output layer [V,H]

    def __post_init__(self) -> None:
        for name in ("source_vocab_size", "target_vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.tie_embeddings and self.embedding_dim != self.hidden_size:
            raise ValueError(f"tie_embeddings needs embedding_size == hidden_size (got {self.embedding_dim} and "
                             f"{self.hidden_size}); set tie_embeddings: false")

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size or self.hidden_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GRUConfig":
        """From a checkpoint's dict, or a config entry plus vocabulary sizes; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown keys {unknown}; expected some of {sorted(names)}")
        return cls(**data)

    def build(self) -> "GRUSeq2Seq":
        """A freshly initialized model of this config (from the torch RNG, as seeded by the caller)."""
        from .gru import GRUSeq2Seq  # here: reading and checking configs needs no torch

        return GRUSeq2Seq(self)
