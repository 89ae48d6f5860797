"""Several trained models decoding as one system: the mean of their log-probabilities at every step.

:class:`Ensemble` speaks the decoding part of the model contract (:mod:`seq2seq.models.base`: ``encode``,
``init_state``, ``decode_step``), so greedy and beam search run on it unchanged. Its attention is the mean of
the members that attend (a member without attention reports all-zero rows and is left out, so that rows still sum
to 1). Members may be of any family and size; they share the vocabularies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError, Metadata, load_model
from .models.base import Model
from .vocab import Vocabulary


@dataclass
class EnsembleBatch:
    """One member's encoding or decoder state per member, selected together."""

    members: list[Any]

    @property
    def mask(self) -> Tensor:
        """[B,S] True on real source tokens (the members read the same source)."""
        return self.members[0].mask

    def select(self, index: Tensor) -> "EnsembleBatch":
        return EnsembleBatch([member.select(index) for member in self.members])


class Ensemble(nn.Module):
    """Members with the same vocabularies, decoding as one model."""

    label = "ensemble"

    def __init__(self, members: Sequence[Model]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def max_source_length(self) -> int | None:
        limits = [m.max_source_length for m in self.members if m.max_source_length is not None]
        return min(limits) if limits else None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EnsembleBatch:
        return EnsembleBatch([m.encode(src, src_lengths) for m in self.members])

    def init_state(self, enc: EnsembleBatch) -> EnsembleBatch:
        return EnsembleBatch([m.init_state(e) for m, e in zip(self.members, enc.members)])

    def decode_step(self, prev_tokens: Tensor, state: EnsembleBatch, enc: EnsembleBatch
                    ) -> tuple[Tensor, EnsembleBatch, Tensor]:
        """prev_tokens [B] -> (mean log_probs [B,V], the members' states, attention [B,S]: the mean over the
        members that attend, all zeros where none does)."""
        log_probs, states, attentions = [], [], []
        for member, member_state, member_enc in zip(self.members, state.members, enc.members):
            lp, st, att = member.decode_step(prev_tokens, member_state, member_enc)
            log_probs.append(lp)
            states.append(st)
            attentions.append(att.float())
        weights = torch.stack(attentions)  # [M,B,S]
        attending = (weights.sum(dim=-1, keepdim=True) > 0).sum(dim=0)  # [B,1]: members with a non-zero row
        return (torch.stack(log_probs).mean(dim=0), EnsembleBatch(states),
                weights.sum(dim=0) / attending.clamp(min=1))


def load_system(paths: Sequence[str | os.PathLike[str]], device: str | torch.device = "cpu"
                ) -> tuple[nn.Module, Vocabulary, Vocabulary, Metadata]:
    """One checkpoint: its model; several: an :class:`Ensemble` of them, which must share both vocabularies.
    Returns (model or ensemble in eval mode, source vocabulary, target vocabulary, the first member's metadata,
    with ``parameters`` summed over the members)."""
    loaded = [load_model(path, device) for path in paths]
    if not loaded:
        raise ValueError("no checkpoint given")
    model, source_vocab, target_vocab, metadata = loaded[0]
    if len(loaded) == 1:
        return model, source_vocab, target_vocab, metadata
    for path, (_, source, target, _) in zip(paths[1:], loaded[1:]):
        if (source.fingerprint(), target.fingerprint()) != (source_vocab.fingerprint(), target_vocab.fingerprint()):
            raise CheckpointError(f"{path}: other vocabularies than {paths[0]}: an ensemble's members must share "
                                  f"them (train them on the same pair and vocab settings)")
    ensemble = Ensemble([m for m, _, _, _ in loaded]).to(device).eval()
    metadata.parameters = sum(m.parameters or 0 for _, _, _, m in loaded)
    return ensemble, source_vocab, target_vocab, metadata
